"""The catalog's sync: the same objects as the STIX export, new versions only for what changed, flat memory, and
TAXII paging (keyset) that stays stable while objects are added."""

from __future__ import annotations

import datetime
import json
import sqlite3
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from heistwatch.api.catalog import Catalog, Query
from heistwatch.api.markings import SourceLevels
from heistwatch.api.taxii import COLLECTIONS
from heistwatch.kb import SQLiteStore
from heistwatch.kb.open import open_store
from heistwatch.model import TLP, ImportBatch, make_indicator
from heistwatch.share.stix import export_bundle
from tests.api.conftest import Api, build_small_kb
from tests.conftest import sample_batch

EVERYTHING = frozenset(TLP)


class Ticking:
    """A clock that moves one second a call, so every sync has its own date."""

    def __init__(self) -> None:
        self.now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)

    def __call__(self) -> datetime.datetime:
        self.now += datetime.timedelta(seconds=1)
        return self.now


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    kb = build_small_kb(tmp_path / "kb.sqlite")
    made = Catalog(kb, tmp_path / "catalog.sqlite", SourceLevels(tmp_path / "state.sqlite"), clock=Ticking())
    made.refresh()
    yield made
    made.close()


def entries(catalog: Catalog) -> dict[str, dict[str, Any]]:
    """Every object the catalog holds: id -> its JSON."""
    page = catalog.page(Query(EVERYTHING), limit=100_000)
    return {e.id: json.loads(e.json) for e in page.entries}


def _undated(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in {"created", "modified", "object_marking_refs"}}


def test_catalog_holds_the_stix_export_object_for_object(catalog: Catalog) -> None:
    store = open_store(catalog.kb)
    try:
        stamp = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)  # the export's dates stand in for the catalog's
        exported = {o["id"]: o for o in export_bundle(store, now=stamp)["objects"]}
    finally:
        store.close()
    held = entries(catalog)
    assert held.keys() == exported.keys()
    for oid, obj in exported.items():
        assert _undated(held[oid]) == _undated(obj), oid
        if obj["type"] == "marking-definition":
            assert held[oid] == obj


def test_only_what_changed_gets_a_new_version(catalog: Catalog) -> None:
    before = entries(catalog)
    store = open_store(catalog.kb)
    try:
        changed = make_indicator("domain", "evil.example", source="vendor-a", confidence=99)
        store.import_batch(ImportBatch(indicators=(changed,)))
    finally:
        store.close()
    assert catalog.refresh()
    after = entries(catalog)
    moved = {oid for oid in before if before[oid].get("modified") != after[oid].get("modified")}
    assert moved == {changed.id}
    assert after[changed.id]["confidence"] == 99 and after[changed.id]["created"] == before[changed.id]["created"]
    assert not catalog.refresh() and catalog.refresh(force=True) and entries(catalog) == after


def test_a_record_removed_from_the_knowledge_base_leaves_the_catalog(catalog: Catalog) -> None:
    db = sqlite3.connect(catalog.kb)  # the store has no delete; a rebuilt knowledge base drops rows like this
    with db:
        (gone,) = db.execute("SELECT id FROM indicators WHERE value = 'evil.example'").fetchone()
        db.execute("DELETE FROM indicators WHERE id = ?", (gone,))
    db.close()
    catalog.refresh()
    assert gone not in entries(catalog)
    assert catalog.search_indicators(EVERYTHING, text="evil", kind=None, limit=10, after=None)[0] == []


def test_sync_memory_stays_flat_as_the_knowledge_base_grows(tmp_path: Path) -> None:
    peaks = {}
    for count in (2_000, 20_000):
        kb = tmp_path / f"kb-{count}.sqlite"
        store = SQLiteStore(kb, bulk=True)
        try:
            batch = tuple(make_indicator("domain", f"host{i}.example", source="vendor-a") for i in range(count))
            store.import_batch(ImportBatch(sources=sample_batch().sources, indicators=batch))
        finally:
            store.close()
        catalog = Catalog(kb, tmp_path / f"catalog-{count}.sqlite", SourceLevels(tmp_path / "state.sqlite"))
        tracemalloc.start()
        try:
            catalog.refresh()
            peaks[count] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            catalog.close()
    # ten times the indicators: Python's peak grows by far less (one chunk of objects at a time); all of them
    # held at once, as one bundle, would take ten times as much
    assert peaks[20_000] < 3 * peaks[2_000], peaks


def test_taxii_pages_stay_stable_while_objects_are_added(api: Api) -> None:
    collection = f"/taxii2/api/collections/{next(c.id for c in COLLECTIONS if c.key == 'all')}/objects/"
    headers = {**api.headers("red-reader"), "Accept": "application/taxii+json;version=2.1"}
    first = api.client.get(collection, params={"limit": "3"}, headers=headers).json()
    at_start = {o["id"] for o in api.client.get(collection, headers=headers).json()["objects"]}
    store = open_store(api.kb)
    try:
        added = tuple(make_indicator("domain", f"late{i}.example", source="vendor-a") for i in range(4))
        store.import_batch(ImportBatch(indicators=added))
    finally:
        store.close()
    seen = [o["id"] for o in first["objects"]]
    token = first.get("next")
    while token:
        page = api.client.get(collection, params={"limit": "3", "next": token}, headers=headers).json()
        seen += [o["id"] for o in page.get("objects", [])]
        token = page.get("next")
    assert len(seen) == len(set(seen))  # nothing twice
    assert at_start <= set(seen)  # nothing present at the start skipped
    assert {a.id for a in added} <= set(seen)  # what was added comes after, dated later
