"""The API over a knowledge base on PostgreSQL: the file's tests on a server, writes through the API and by other
clients seen by later reads and by TAXII once the catalog syncs, and the errors that name the server.

The tests imported below run here against this module's `api`, `small` and `catalog` fixtures, which serve the
same small knowledge base from a fresh PostgreSQL schema instead of a file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from heistwatch.api.app import create_app, sync_catalog
from heistwatch.api.catalog import Catalog, Match, Query
from heistwatch.api.markings import SourceLevels
from heistwatch.api.taxii import COLLECTIONS, TAXII_MEDIA_TYPE
from heistwatch.errors import StoreError
from heistwatch.kb.postgres import PostgresStore
from heistwatch.model import TLP, ImportBatch, make_indicator
from tests.api.conftest import Api, fill_small_kb, make_api
from tests.api.test_api import (  # noqa: F401  (tests run here on PostgreSQL)
    domains,
    test_a_hidden_actor_is_not_found,
    test_admin_raises_a_source_level,
    test_bad_report_is_a_4xx_and_changes_nothing,
    test_indicators_shown_by_clearance,
    test_ingested_report_keeps_its_marking_and_is_audited,
    test_malformed_stix_is_a_named_400_and_changes_nothing,
    test_marking_above_own_clearance_is_refused,
    test_paging_with_a_cursor_visits_each_indicator_once,
    test_relationship_is_held_at_the_level_of_what_it_ties,
    test_sql_injection_in_search_is_just_text,
    test_stix_import_cannot_mark_above_or_overwrite_beyond_clearance,
    test_stix_import_is_stored_visible_and_audited,
)
from tests.api.test_catalog_sync import (  # noqa: F401
    Ticking,
    entries,
    test_catalog_holds_the_stix_export_object_for_object,
    test_only_what_changed_gets_a_new_version,
    test_taxii_pages_stay_stable_while_objects_are_added,
)
from tests.api.test_search import (  # noqa: F401
    test_exact_finds_only_the_whole_value,
    test_paging_visits_each_match_once,
    test_prefix_follows_clearance,
    test_search_paging_is_stable_while_indicators_are_added,
)
from tests.api.test_taxii import (  # noqa: F401
    Served,
    test_added_after_returns_only_what_came_later,
    test_collections_follow_clearance,
    test_filters_and_single_objects,
    test_objects_are_valid_stix,
    test_one_level_collection_holds_only_that_level,
    test_pages_never_carry_what_the_user_may_not_read,
)
from tests.kb.pg import new_schema, pg_dsn, postgres_server  # noqa: F401  (fixtures)

EVERYTHING = frozenset(TLP)
EXACT = Match.EXACT
ALL = next(c.id for c in COLLECTIONS if c.key == "all")


@pytest.fixture
def small_pg(pg_dsn: str) -> str:  # noqa: F811  (the imported fixture)
    fill_small_kb(PostgresStore(pg_dsn))
    return pg_dsn


@pytest.fixture
def api(tmp_path: Path, small_pg: str) -> Iterator[Api]:
    made = make_api(tmp_path, small_pg)
    with made.client:
        yield made


@pytest.fixture(scope="module")
def small(postgres_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:  # noqa: F811
    with new_schema(postgres_server) as dsn:
        fill_small_kb(PostgresStore(dsn))
        with Served(dsn, tmp_path_factory.mktemp("taxii-pg")) as served:
            yield served


@pytest.fixture
def catalog(tmp_path: Path, small_pg: str) -> Iterator[Catalog]:
    made = Catalog(small_pg, tmp_path / "catalog.sqlite", SourceLevels(tmp_path / "state.sqlite"), clock=Ticking())
    made.refresh()
    yield made
    made.close()


def taxii_names(api: Api, user: str) -> set[str]:
    """The names of the indicators `user` pulls from the all-levels TAXII collection."""
    headers = {**api.headers(user), "Accept": TAXII_MEDIA_TYPE}
    response = api.client.get(f"/taxii2/api/collections/{ALL}/objects/", params={"limit": "1000"}, headers=headers)
    assert response.status_code == 200, response.text
    return {o["name"] for o in response.json()["objects"] if o["type"] == "indicator"}


def test_a_write_through_the_api_lands_on_the_server_and_in_taxii(api: Api) -> None:
    text = "The lure fetched its second stage from api-pg-written[.]com."
    body = {"name": "pg.txt", "text": text, "tlp": "amber"}
    response = api.client.post("/api/reports", json=body, headers=api.headers("analyst"))
    assert response.status_code == 201, response.text
    other = PostgresStore(str(api.kb))  # another client of the same database
    try:
        assert [i.tlp for i in other.indicators(value="api-pg-written.com")] == [TLP.AMBER]
    finally:
        other.close()
    assert "api-pg-written.com" in domains(api, "amber-reader") and "api-pg-written.com" in taxii_names(api, "analyst")
    assert "api-pg-written.com" not in domains(api, "reader") | taxii_names(api, "reader")


def test_a_change_by_another_client_is_picked_up_by_the_next_request(api: Api) -> None:
    assert "late-client.example" not in taxii_names(api, "reader")
    other = PostgresStore(str(api.kb))
    try:
        other.import_batch(
            ImportBatch(indicators=(make_indicator("domain", "late-client.example", source="vendor-a"),))
        )
    finally:
        other.close()
    assert "late-client.example" in taxii_names(api, "reader") and "late-client.example" in domains(api, "reader")


def test_a_second_process_finds_the_catalog_current_and_leaves_no_mirror(tmp_path: Path, small_pg: str) -> None:
    levels = SourceLevels(tmp_path / "state.sqlite")
    first = Catalog(small_pg, tmp_path / "catalog.sqlite", levels)
    second = Catalog(small_pg, tmp_path / "catalog.sqlite", levels)
    try:
        assert first.refresh() and not second.refresh()  # same fingerprint: no second sync
        assert not second.stale() and not first.stale()
        assert [p.name for p in tmp_path.iterdir() if "mirror" in p.name] == []
        added = make_indicator("domain", "x.example", source="vendor-a")
        writer = PostgresStore(small_pg)
        try:
            writer.import_batch(ImportBatch(indicators=(added,)))
        finally:
            writer.close()
        assert first.stale() and second.stale()
        assert first.refresh() and not second.refresh()
        held, _ = second.search_indicators(EVERYTHING, text="x.example", kind=None, limit=5, after=None, match=EXACT)
        assert [e.id for e in held] == [added.id]
    finally:
        first.close()
        second.close()


def test_a_rolled_back_write_leaves_the_catalog_current(catalog: Catalog) -> None:
    before = entries(catalog)
    writer = PostgresStore(str(catalog.kb))
    try:
        dangling = make_indicator("domain", "never.example", source="nobody-registered")
        with pytest.raises(StoreError):
            writer.import_batch(ImportBatch(indicators=(dangling,)))
    finally:
        writer.close()
    assert not catalog.stale() and not catalog.refresh() and entries(catalog) == before
    assert catalog.page(Query(EVERYTHING, types=["indicator"]), limit=100).entries


def test_a_server_without_a_knowledge_base_is_refused_by_name(tmp_path: Path, pg_dsn: str) -> None:  # noqa: F811
    with pytest.raises(StoreError, match="no knowledge base here yet") as empty:
        create_app(pg_dsn, tmp_path / "tokens.sqlite")
    assert "postgresql://" in str(empty.value)
    unreachable = "postgresql://someone:s3cret@/nowhere?host=/nonexistent-socket-dir&connect_timeout=2"
    with pytest.raises(StoreError, match="cannot connect") as down:
        sync_catalog(unreachable, tmp_path / "tokens.sqlite")
    assert "someone@" in str(down.value) and "s3cret" not in str(down.value)


def test_lost_connections_are_reopened(api: Api, postgres_server: str) -> None:  # noqa: F811
    state = api.app.state.heistwatch
    catalog_store = state.catalog._source._connected()
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (catalog_store._db.info.backend_pid,))
    with pytest.raises(StoreError, match="postgresql://"):
        state.catalog.stale()  # the request that finds the connection gone answers 503, naming the server
    assert not state.catalog.stale() and "evil.example" in domains(api, "reader")
    kb_store = state.kb.get()
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (kb_store._db.info.backend_pid,))
    with pytest.raises(psycopg.OperationalError):
        kb_store.sources()
    assert state.kb.get() is not kb_store and state.kb.get().sources()
