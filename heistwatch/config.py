"""Settings the CLI reads: defaults < HEISTWATCH_* environment variables < command-line flags."""

from __future__ import annotations

import os
from pathlib import Path


def default_kb_path() -> Path:
    """Where the knowledge base lives unless told otherwise ($HEISTWATCH_KB, else the XDG data folder)."""
    if os.environ.get("HEISTWATCH_KB"):
        return Path(os.environ["HEISTWATCH_KB"])
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data_home / "heistwatch" / "kb.sqlite"
