"""PostgreSQL specifics: migrations, a schema matching SQLite's, opening by URL, copying a built knowledge base."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from heistwatch.errors import StoreError
from heistwatch.kb import SQLiteStore
from heistwatch.kb.build import BuildReport
from heistwatch.kb.open import describe_target, open_store, parse_target
from heistwatch.kb.postgres import PostgresStore, copy_knowledge_base
from heistwatch.kb.postgres import _migrations as pg_migrations
from heistwatch.kb.sqlite import _migrations as sqlite_migrations
from heistwatch.model import ImportBatch, Sighting
from tests.conftest import report_batch, sample_batch
from tests.kb.pg import pg_dsn, postgres_server, with_schema  # noqa: F401  (fixtures)


@pytest.fixture
def pg(pg_dsn: str) -> Iterator[PostgresStore]:  # noqa: F811  (the imported fixture)
    store = PostgresStore(pg_dsn)
    yield store
    store.close()


def _columns_sqlite(path: Path) -> dict[str, list[str]]:
    db = sqlite3.connect(path)
    try:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: [row[1] for row in db.execute(f'PRAGMA table_info("{t}")')] for t in tables}
    finally:
        db.close()


def _columns_pg(store: PostgresStore) -> dict[str, list[str]]:
    rows = store._db.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name <> 'schema_version' ORDER BY table_name, ordinal_position"
    ).fetchall()
    found: dict[str, list[str]] = {}
    for table, column in rows:
        found.setdefault(table, []).append(column)
    return found


def test_migrations_are_numbered_like_sqlites_and_give_the_same_tables_and_columns(
    pg: PostgresStore, tmp_path: Path
) -> None:
    assert [v for v, _ in pg_migrations()] == [v for v, _ in sqlite_migrations()]
    assert pg.schema_version == pg_migrations()[-1][0]
    SQLiteStore(tmp_path / "kb.sqlite").close()
    assert _columns_pg(pg) == _columns_sqlite(tmp_path / "kb.sqlite")


def test_every_text_column_orders_bytewise(pg: PostgresStore) -> None:
    collations = pg._db.execute(
        "SELECT table_name, column_name, collation_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND data_type = 'text'"
    ).fetchall()
    assert collations and all(c == "C" for _, _, c in collations), [r for r in collations if r[2] != "C"]


def test_order_is_bytewise_in_a_database_with_a_linguistic_locale(postgres_server: str) -> None:  # noqa: F811
    name = f"test_icu_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'").format(
                sql.Identifier(name)
            )
        )
    try:
        store = PostgresStore(make_conninfo(postgres_server, dbname=name))
        batch = sample_batch()
        spelled = [dataclasses.replace(batch.objects[1], id=f"x--{s}", name=s) for s in ("é", "a", "Z", "B")]
        store.import_batch(dataclasses.replace(batch, objects=(*batch.objects, *spelled)))
        ordered = [o.id for o in store.objects() if o.id.startswith("x--")]
        store.close()
        assert ordered == ["x--B", "x--Z", "x--a", "x--é"]  # en-US would give a, B, é, Z
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_reopening_migrates_nothing_and_a_newer_schema_is_refused(pg: PostgresStore, pg_dsn: str) -> None:  # noqa: F811
    pg.import_batch(sample_batch())
    again = PostgresStore(pg_dsn)
    assert len(again.objects()) == len(sample_batch().objects)
    again.close()
    pg._db.execute("UPDATE schema_version SET version = 999")
    with pytest.raises(StoreError, match="newer"):
        PostgresStore(pg_dsn)


def test_clients_opening_a_new_schema_at_once_migrate_it_once(pg_dsn: str) -> None:  # noqa: F811
    errors: list[Exception] = []
    versions: list[int] = []

    def open_one() -> None:
        try:
            store = PostgresStore(pg_dsn)
            versions.append(store.schema_version)
            store.close()
        except Exception as exc:  # collected: an error in a thread would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert versions == [pg_migrations()[-1][0]] * 4


def test_a_search_path_without_a_schema_and_an_unreachable_server_are_store_errors(postgres_server: str) -> None:  # noqa: F811
    with pytest.raises(StoreError, match="no existing schema"):
        PostgresStore(with_schema(postgres_server, "no_such_schema"))
    with pytest.raises(StoreError, match="cannot connect") as caught:
        PostgresStore("postgresql://someone:s3cret@/nowhere?host=/nonexistent-socket-dir&connect_timeout=2")
    assert "s3cret" not in str(caught.value)
    assert "postgresql://someone@/nonexistent-socket-dir/nowhere" in str(caught.value)


def test_values_are_bound_not_spliced(pg: PostgresStore) -> None:
    pg.import_batch(sample_batch())
    hostile = "x' OR '1'='1'; DROP TABLE objects; --"
    assert pg.lookup(hostile) == []
    assert pg.indicators(kind=hostile) == []
    assert pg.objects(ids=[hostile]) == []
    assert len(pg.objects()) == len(sample_batch().objects)


def test_open_store_picks_the_backend_from_the_target(pg_dsn: str, tmp_path: Path) -> None:  # noqa: F811
    assert parse_target(pg_dsn) == pg_dsn
    assert parse_target("kb.sqlite") == Path("kb.sqlite")
    assert "password" not in describe_target("postgresql://u:password@db.example/kb")
    with pytest.raises(StoreError, match="kb build"):
        open_store(pg_dsn)
    with pytest.raises(StoreError, match="kb build"):
        open_store(tmp_path / "none.sqlite")
    store = open_store(pg_dsn, must_exist=False)
    store.import_batch(sample_batch())
    store.close()
    opened = open_store(parse_target(pg_dsn))
    assert isinstance(opened, PostgresStore)
    assert len(opened.objects()) == len(sample_batch().objects)
    opened.close()
    local = open_store(tmp_path / "kb.sqlite", must_exist=False)
    assert isinstance(local, SQLiteStore)
    local.close()


def test_built_knowledge_base_copies_whole(built_kb: BuildReport, pg: PostgresStore) -> None:
    local = SQLiteStore(built_kb.path)
    try:
        copied = copy_knowledge_base(built_kb.path, pg)
        assert copied["objects"] == len(local.objects()) > 5_000
        assert pg.stats() == local.stats()
        assert pg.names() == local.names()
        assert pg.claims() == local.claims()
        assert pg.relationships() == local.relationships()
        assert pg.objects() == local.objects()
        assert pg.indicators() == local.indicators()
    finally:
        local.close()


def _small_kb(path: Path) -> Path:
    store = SQLiteStore(path)
    store.import_batch(sample_batch())
    store.close()
    return path


def test_copy_again_replaces_seeds_and_keeps_the_servers_reports_and_sightings(
    pg: PostgresStore, tmp_path: Path
) -> None:
    kb = _small_kb(tmp_path / "kb.sqlite")
    copy_knowledge_base(kb, pg)
    pg.import_batch(ImportBatch(objects=(dataclasses.replace(sample_batch().objects[0], name="Changed"),)))
    report = pg.import_report(report_batch("2026-01-01T00:00:00Z", ("a.example",)))
    sighting = Sighting("indicator--1", "domain", "a.example", "a.example", "proxy.jsonl", 3, "host", "{}")
    pg.record_sightings([sighting], "2026-01-02T00:00:00Z")
    copied = copy_knowledge_base(kb, pg)
    assert pg.get(sample_batch().objects[0].id) == sample_batch().objects[0]
    assert pg.reports() == [report]
    assert [f.value for f in pg.findings(report.id)] == ["a.example"]
    assert {i.value for i in pg.indicators(kind="domain")} == {"evil.example", "a.example"}
    assert pg.sightings() == [sighting]
    assert (copied["reports"], copied["sightings"]) == (0, 0)


def test_a_copy_that_fails_changes_nothing(pg: PostgresStore, tmp_path: Path) -> None:
    kb = _small_kb(tmp_path / "kb.sqlite")
    copy_knowledge_base(kb, pg)
    before = (pg.sources(), pg.objects(), pg.claims(), pg.relationships(), pg.names())
    db = sqlite3.connect(kb)
    db.execute("DELETE FROM objects WHERE type = 'malware'")  # a relationship now points at nothing
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="refers to unknown object"):
        copy_knowledge_base(kb, pg)
    assert (pg.sources(), pg.objects(), pg.claims(), pg.relationships(), pg.names()) == before
    with pytest.raises(StoreError, match="no knowledge base file"):
        copy_knowledge_base(tmp_path / "missing.sqlite", pg)
