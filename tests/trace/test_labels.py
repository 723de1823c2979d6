"""Label readers on the shared TagPack and OFAC files (skipped when the shared data is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from heistwatch.errors import InputError
from heistwatch.trace import read_ofac_folder, read_ofac_list, read_tagpack_csv
from tests.trace.conftest import SHARED

needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="shared tracing data not present")


@needs_shared
def test_tagpack_services_only() -> None:
    labels = list(read_tagpack_csv(SHARED / "labels" / "graphsense_tags.csv"))
    categories = {lb.category for lb in labels}
    assert {"exchange", "mixing_service"} <= categories
    assert "user" not in categories and "black_list" not in categories
    binance = [lb for lb in labels if lb.address == "1NDyJtNTjmwk5xPNhjgAMu4HDHigtobu1s"]
    assert binance and binance[0].service == "binance" and binance[0].source == "tagpack:binance.yaml"
    assert all(lb.address == lb.address.lower() for lb in labels if lb.address.startswith("0x"))


@needs_shared
def test_ofac_lists() -> None:
    eth = list(read_ofac_list(SHARED / "ofac-sdn" / "sanctioned_addresses_ETH.txt"))
    assert len(eth) == 152 and eth[0].category == "sanctioned" and eth[0].source == "ofac:ETH"
    lines = sum(
        1 for p in (SHARED / "ofac-sdn").glob("sanctioned_addresses_*.txt") for line in p.open() if line.strip()
    )
    assert sum(1 for _ in read_ofac_folder(SHARED / "ofac-sdn")) == lines > 600


def test_tagpack_header_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("address,label\nx,y\n")
    with pytest.raises(InputError, match="missing columns"):
        list(read_tagpack_csv(path))
