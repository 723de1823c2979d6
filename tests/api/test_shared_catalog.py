"""Server processes sharing one catalog: a process finds it current instead of syncing again, unless the knowledge
base, the source levels or the heistwatch version changed since; one process syncs at a time."""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from heistwatch.api.catalog import Catalog, Query
from heistwatch.api.markings import SourceLevels
from heistwatch.kb import SQLiteStore
from heistwatch.model import TLP, ImportBatch, make_indicator
from tests.api.conftest import build_small_kb, marked_domain


@pytest.fixture
def files(tmp_path: Path) -> Iterator[tuple[Path, Path, SourceLevels]]:
    kb = build_small_kb(tmp_path / "kb.sqlite")
    levels = SourceLevels(tmp_path / "state.sqlite")
    first = Catalog(kb, tmp_path / "catalog.sqlite", levels)
    assert first.refresh()
    first.close()
    yield kb, tmp_path / "catalog.sqlite", levels
    levels.close()


def _domains(catalog: Catalog, levels: frozenset[TLP]) -> set[str]:
    page = catalog.page(Query(levels, types=["indicator"]), limit=1000)
    return {json.loads(e.json)["x_heistwatch_indicator"]["value"] for e in page.entries}


def _add_domain(kb: Path, value: str) -> None:
    """A domain indicator committed to the knowledge base, as another writer would."""
    store = SQLiteStore(kb)
    try:
        store.import_batch(ImportBatch(indicators=(make_indicator("domain", value, source="vendor-a"),)))
    finally:
        store.close()


def test_a_second_process_takes_the_synced_catalog_as_current(files: tuple[Path, Path, SourceLevels]) -> None:
    kb, path, levels = files
    second = Catalog(kb, path, levels)
    try:
        assert not second.refresh() and not second.stale()
        assert marked_domain(TLP.GREEN) in _domains(second, frozenset({TLP.GREEN}))
    finally:
        second.close()


def test_a_commit_after_the_sync_is_synced(files: tuple[Path, Path, SourceLevels]) -> None:
    kb, path, levels = files
    _add_domain(kb, "late.example")
    second = Catalog(kb, path, levels)
    try:
        assert second.refresh() and "late.example" in _domains(second, frozenset({TLP.CLEAR}))
    finally:
        second.close()


def test_raised_source_levels_are_never_taken_as_current(files: tuple[Path, Path, SourceLevels]) -> None:
    kb, path, levels = files
    levels.set("vendor-a", TLP.RED)  # changed while no server ran: the catalog's markings are out of date
    second = Catalog(kb, path, levels)
    try:
        assert second.refresh()
        assert not _domains(second, frozenset({TLP.CLEAR, TLP.GREEN, TLP.AMBER}))
    finally:
        second.close()


def test_one_process_syncs_at_a_time(files: tuple[Path, Path, SourceLevels]) -> None:
    kb, path, levels = files
    _add_domain(kb, "busy.example")
    reader = Catalog(kb, path, levels)
    try:
        with path.with_name(f"{path.name}.lock").open("a") as other:
            fcntl.flock(other, fcntl.LOCK_EX)  # another process is syncing
            assert reader.stale() and not reader.refresh(wait=False)
            assert "busy.example" not in _domains(reader, frozenset({TLP.CLEAR}))  # the catalog as it was
            fcntl.flock(other, fcntl.LOCK_UN)
        assert reader.refresh(wait=False) and not reader.stale()
        assert "busy.example" in _domains(reader, frozenset({TLP.CLEAR}))
    finally:
        reader.close()
