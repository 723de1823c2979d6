"""The contract every KnowledgeStore backend must keep: SQLite (in memory and on file) and PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from heistwatch.errors import StoreError
from heistwatch.kb import KnowledgeStore, SQLiteStore
from heistwatch.kb.postgres import PostgresStore
from heistwatch.model import (
    Claim,
    ImportBatch,
    ObjectType,
    Relation,
    Sighting,
    derive_id,
    name_key,
)
from tests.conftest import report_batch, sample_batch
from tests.kb.pg import pg_dsn, postgres_server  # noqa: F401  (fixtures)


@pytest.fixture(params=["sqlite-memory", "sqlite-file", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KnowledgeStore]:
    backend: KnowledgeStore
    if request.param == "postgres":
        backend = PostgresStore(request.getfixturevalue("pg_dsn"))
    else:
        backend = SQLiteStore(":memory:" if request.param == "sqlite-memory" else tmp_path / "kb.sqlite")
    yield backend
    backend.close()


def _snapshot(store: KnowledgeStore) -> tuple[object, ...]:
    return (store.sources(), store.objects(), store.claims(), store.relationships(), store.indicators(), store.names())


def test_import_then_read_back_every_record(store: KnowledgeStore) -> None:
    batch = sample_batch()
    store.import_batch(batch)
    assert {o.id: o for o in store.objects()} == {o.id: o for o in batch.objects}
    assert sorted(store.claims(), key=lambda c: c.id) == sorted(batch.claims, key=lambda c: c.id)
    assert sorted(store.relationships(), key=lambda r: r.id) == sorted(batch.relationships, key=lambda r: r.id)
    assert store.indicators() == list(batch.indicators)
    assert {s.key for s in store.sources()} == {"vendor-a", "publisher-b"}


def test_import_is_idempotent(store: KnowledgeStore) -> None:
    store.import_batch(sample_batch())
    first = _snapshot(store)
    store.import_batch(sample_batch())
    assert _snapshot(store) == first


def test_dangling_claim_rolls_back_the_whole_batch(store: KnowledgeStore) -> None:
    store.import_batch(sample_batch())
    before = _snapshot(store)
    actor = sample_batch().objects[0]
    renamed = dataclasses.replace(actor, name="Renamed")
    bad = Claim(
        id=derive_id("relationship", "bad"),
        subject_id=actor.id,
        relation=Relation.SAME_AS,
        object_id="intrusion-set--00000000-0000-4000-8000-000000000000",
        source="vendor-a",
    )
    with pytest.raises(StoreError, match="unknown object"):
        store.import_batch(ImportBatch(objects=(renamed,), claims=(bad,)))
    assert _snapshot(store) == before


def test_unknown_source_is_refused_and_nothing_written(store: KnowledgeStore) -> None:
    orphan = dataclasses.replace(sample_batch().objects[0], source="nobody")
    with pytest.raises(StoreError):
        store.import_batch(ImportBatch(objects=(orphan,)))
    assert store.objects() == []


def test_names_follow_aliases_and_are_replaced_on_reimport(store: KnowledgeStore) -> None:
    batch = sample_batch()
    store.import_batch(batch)
    hits = store.lookup(name_key("leery  TURTLE"))
    assert [(h.name, h.primary, h.object_type) for h in hits] == [("Leery Turtle", False, ObjectType.INTRUSION_SET)]
    actor = dataclasses.replace(batch.objects[0], aliases=("CryptoMimic",))
    store.import_batch(ImportBatch(objects=(actor,)))
    assert store.lookup("leeryturtle") == []
    assert [h.name for h in store.lookup("cryptomimic")] == ["CryptoMimic"]


def test_filters(store: KnowledgeStore) -> None:
    batch = sample_batch()
    store.import_batch(batch)
    actor = batch.objects[0]
    assert [o.name for o in store.objects(type=ObjectType.MALWARE)] == ["CageyChameleon"]
    assert {o.name for o in store.objects(source="publisher-b")} == {"Lazarus Group", "KP"}
    assert store.get(actor.id) == actor
    assert store.get("intrusion-set--nope") is None
    assert {r.type for r in store.relationships(from_ids=[actor.id])} == {"uses"}
    assert [r.type for r in store.relationships(to_ids=[actor.id])] == ["indicates"]
    assert len(store.relationships(type="uses")) == 2
    assert [i.value for i in store.indicators(kind="domain", value="evil.example")] == ["evil.example"]
    assert store.indicators(kind="domain", value="Evil.Example.") == []
    assert {c.id for c in store.claims(about=[actor.id])} == {batch.claims[0].id}


def test_stats_count_per_source(store: KnowledgeStore) -> None:
    store.import_batch(sample_batch())
    stats = {s.source.key: s for s in store.stats()}
    assert dict(stats["vendor-a"].objects) == {"intrusion-set": 1, "attack-pattern": 1, "malware": 1}
    assert (stats["vendor-a"].relationships, stats["vendor-a"].indicators) == (3, 1)
    assert (stats["publisher-b"].claims, stats["publisher-b"].relationships) == (2, 0)


def test_report_read_back_and_re_ingest_keeps_first_time_and_replaces_findings(store: KnowledgeStore) -> None:
    first = store.import_report(report_batch("2026-01-01T00:00:00Z", ("a.example", "b.example")))
    assert store.reports() == [first]
    assert [f.value for f in store.findings(first.id)] == ["a.example", "b.example"]
    assert store.findings(first.id)[0].object_ids == ("x--1",)
    again = store.import_report(report_batch("2026-02-02T00:00:00Z", ("b.example",)))
    assert again.ingested == "2026-01-01T00:00:00Z"
    assert [f.value for f in store.findings(first.id)] == ["b.example"]
    assert [i.value for i in store.indicators(kind="domain")] == ["b.example"]


def _sighting(line: int, count: int = 1) -> Sighting:
    return Sighting(
        "indicator--1", "domain", "a.example", "A.EXAMPLE.", "proxy.jsonl", line, "host", "{}", None, None, count
    )


def test_sightings_are_stored_once_per_place_and_updated_when_seen_again(store: KnowledgeStore) -> None:
    assert store.record_sightings([_sighting(3), _sighting(7)], "2026-01-01T00:00:00Z") == 2
    assert store.record_sightings([_sighting(3, count=5)], "2026-02-01T00:00:00Z") == 0
    assert [(s.line, s.count) for s in store.sightings()] == [(3, 5), (7, 1)]
    assert store.sightings(kind="domain", value="a.example")[0] == _sighting(3, count=5)
    assert store.sightings(kind="ipv4") == []


def test_text_is_ordered_bytewise_and_empty_filters_match_nothing(store: KnowledgeStore) -> None:
    batch = sample_batch()
    spelled = [dataclasses.replace(batch.objects[1], id=f"x--{s}", name=s) for s in ("é", "a", "Z", "B", "ä")]
    store.import_batch(dataclasses.replace(batch, objects=(*batch.objects, *spelled)))
    assert [o.id for o in store.objects(source="publisher-b") if o.id.startswith("x--")] == [
        "x--B",
        "x--Z",
        "x--a",
        "x--ä",
        "x--é",
    ]
    rows = [(n.key, n.object_id, n.name) for n in store.names()]
    assert rows == sorted(rows)  # Python orders str by code point, which is UTF-8 byte order
    assert store.objects(ids=[]) == []
    assert store.claims(about=[]) == []
    assert store.relationships(from_ids=[], type="uses") == []


def test_a_record_twice_in_one_write_is_stored_once(store: KnowledgeStore) -> None:
    batch = sample_batch()
    actor = batch.objects[0]
    twice = (dataclasses.replace(actor, name="Zeta"), dataclasses.replace(actor, name="Alpha"))
    store.import_batch(dataclasses.replace(batch, objects=(*batch.objects[1:], *twice)))
    assert [o.name for o in store.objects(ids=[actor.id])] == ["Zeta"]  # the last in sorted order, as SQLite's
    assert store.record_sightings([_sighting(3), _sighting(3, count=9)], "2026-01-01T00:00:00Z") == 1
    assert [s.count for s in store.sightings()] == [9]
