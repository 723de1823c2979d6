"""Service labels from GraphSense TagPack-style CSV and the OFAC SDN address lists."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from heistwatch.errors import InputError
from heistwatch.trace.ledger import normal_address
from heistwatch.trace.store import Label

# Categories whose addresses belong to a service that absorbs taint (users, abuse tags and blacklists do not).
SERVICE_CATEGORIES = frozenset(
    {
        "bridge",
        "coinjoin",
        "defi",
        "defi_bridge",
        "defi_dex",
        "defi_lending",
        "exchange",
        "gambling",
        "market",
        "miner",
        "mixing_service",
        "otc",
        "service",
        "wallet_service",
    }
)
_TAGPACK_COLUMNS = {"network", "address", "label", "category", "actor", "tagpack"}


def read_tagpack_csv(path: Path, categories: frozenset[str] = SERVICE_CATEGORIES) -> Iterator[Label]:
    """Labels for the rows of a TagPack CSV whose category is in `categories`; service = actor, else label."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = _TAGPACK_COLUMNS - set(reader.fieldnames or ())
        if missing:
            raise InputError(str(path), f"not a TagPack CSV: missing columns {sorted(missing)}")
        for line, row in enumerate(reader, start=2):
            if not row["address"]:
                raise InputError(f"{path}:{line}", "empty address")
            if row["category"] in categories:
                service = row["actor"] or row["label"]
                yield Label(normal_address(row["address"]), service, row["category"], f"tagpack:{row['tagpack']}")


def read_ofac_list(path: Path) -> Iterator[Label]:
    """Labels for one `sanctioned_addresses_<ASSET>.txt` list: one address a line."""
    asset = path.stem.rsplit("_", 1)[-1]
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield Label(normal_address(line.strip()), "OFAC SDN", "sanctioned", f"ofac:{asset}")


def read_ofac_folder(folder: Path) -> Iterator[Label]:
    """Labels for every OFAC list in `folder`."""
    for path in sorted(folder.glob("sanctioned_addresses_*.txt")):
        yield from read_ofac_list(path)


def read_labels(path: Path) -> Iterator[Label]:
    """Labels from a TagPack CSV, an OFAC list (.txt), or a folder of OFAC lists."""
    if path.is_dir():
        return read_ofac_folder(path)
    return read_ofac_list(path) if path.suffix == ".txt" else read_tagpack_csv(path)
