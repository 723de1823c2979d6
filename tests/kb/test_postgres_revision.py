"""What the API's catalog needs of a PostgreSQL knowledge base: a revision every committed write changes, and a
SQLite mirror of one snapshot, written in bounded memory."""

from __future__ import annotations

import sqlite3
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from heistwatch.errors import StoreError
from heistwatch.kb.postgres import PostgresStore, mirror_knowledge_base
from heistwatch.model import ImportBatch, Sighting, make_indicator
from tests.conftest import report_batch, sample_batch
from tests.kb.pg import pg_dsn, postgres_server  # noqa: F401  (fixtures)

TABLES = ("sources", "objects", "claims", "relationships", "indicators")


@pytest.fixture
def pg(pg_dsn: str) -> Iterator[PostgresStore]:  # noqa: F811  (the imported fixture)
    store = PostgresStore(pg_dsn)
    yield store
    store.close()


def _sighting(value: str) -> Sighting:
    indicator = make_indicator("domain", value, source="vendor-a")
    return Sighting(indicator.id, "domain", value, value, "dns.log", 1, "query", value)


def test_every_committed_write_changes_the_revision_and_reads_and_rollbacks_do_not(pg: PostgresStore) -> None:
    seen = [pg.revision()]
    pg.import_batch(sample_batch())
    seen.append(pg.revision())
    pg.import_report(report_batch("2026-01-01T00:00:00Z", ("a.example",)))
    seen.append(pg.revision())
    pg.record_sightings([_sighting("a.example")], "2026-01-02T00:00:00Z")
    seen.append(pg.revision())
    assert len(set(seen)) == len(seen)
    pg.objects(), pg.indicators(), pg.stats()
    with pytest.raises(StoreError):
        pg.import_batch(ImportBatch(indicators=(make_indicator("domain", "x.example", source="nobody"),)))
    assert pg.revision() == seen[-1]


def test_another_client_sees_the_revision_change_when_the_write_commits(pg: PostgresStore, pg_dsn: str) -> None:  # noqa: F811
    other = PostgresStore(pg_dsn)
    try:
        before = pg.revision()
        other.import_batch(sample_batch())
        assert pg.revision() != before
    finally:
        other.close()


def test_tracking_is_installed_once_and_again_where_it_was_lost(pg: PostgresStore, pg_dsn: str) -> None:  # noqa: F811
    count = (
        "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
        " WHERE t.tgname = 'heistwatch_revise' AND c.relnamespace = current_schema()::regnamespace"
    )
    installed = pg._db.execute(count).fetchone()
    PostgresStore(pg_dsn).close()
    assert installed == (9,) and pg._db.execute(count).fetchone() == installed
    touch = "UPDATE indicators SET description = description"
    pg._db.execute("DROP TRIGGER heistwatch_revise ON indicators")
    before = pg.revision()
    pg._db.execute(touch)
    assert pg.revision() == before  # the lost trigger: a write goes unseen
    PostgresStore(pg_dsn).close()
    pg._db.execute(touch)
    assert pg.revision() != before


def test_concurrent_writers_queue_without_failing(pg: PostgresStore, pg_dsn: str) -> None:  # noqa: F811
    pg.import_batch(sample_batch())
    errors: list[Exception] = []

    def write(offset: int) -> None:
        store = PostgresStore(pg_dsn)
        try:
            for round_ in range(5):
                values = [f"host{(offset + round_ + i) % 7}.example" for i in range(7)]
                indicators = tuple(make_indicator("domain", v, source="vendor-a") for v in values)
                store.import_batch(ImportBatch(indicators=indicators))
        except Exception as exc:  # collected: an error in a thread would otherwise vanish
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def _rows(path: Path, table: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(path)
    try:
        return sorted(db.execute(f"SELECT * FROM {table}").fetchall())
    finally:
        db.close()


def test_the_mirror_holds_the_chosen_tables_row_for_row(pg: PostgresStore, tmp_path: Path) -> None:
    pg.import_batch(sample_batch())
    pg.import_report(report_batch("2026-01-01T00:00:00Z", ("a.example",)))
    mirror = tmp_path / "mirror.sqlite"
    mirror.write_bytes(b"an older mirror is replaced")
    mirror_knowledge_base(pg, mirror, TABLES)
    for table in TABLES:
        columns = ", ".join(f'"{row[1]}"' for row in sqlite3.connect(mirror).execute(f"PRAGMA table_info({table})"))
        expected = sorted(pg._db.execute(f"SELECT {columns} FROM {table}").fetchall())
        assert _rows(mirror, table) == expected and expected, table
    assert _rows(mirror, "reports") == [] and _rows(mirror, "findings") == []


def test_mirror_memory_stays_flat_as_the_knowledge_base_grows(pg_dsn: str, tmp_path: Path) -> None:  # noqa: F811
    peaks = {}
    store = PostgresStore(pg_dsn)
    try:
        store.import_batch(ImportBatch(sources=sample_batch().sources))
        for count in (2_000, 20_000):
            batch = tuple(make_indicator("domain", f"host{i}.example", source="vendor-a") for i in range(count))
            store.import_batch(ImportBatch(indicators=batch))
            tracemalloc.start()
            try:
                mirror_knowledge_base(store, tmp_path / "mirror.sqlite", TABLES)
                peaks[count] = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert len(_rows(tmp_path / "mirror.sqlite", "indicators")) == count
    finally:
        store.close()
    # ten times the rows: the peak grows by far less (one chunk at a time); all rows held at once would take ten times
    assert peaks[20_000] < 3 * peaks[2_000], peaks
