"""The small API knowledge base with a hostile actor name, the app over it, and a small case built by the real code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import heistwatch.web.pages  # noqa: F401  (the UI's routes, registered by create_app)
from heistwatch.kb import SQLiteStore
from heistwatch.model import ImportBatch, KBObject, ObjectType, Sighting, Source, derive_id
from heistwatch.share.report import CaseReport, build_case_report
from heistwatch.trace import Seed, trace_case
from tests.api.conftest import Api, build_small_kb, make_api
from tests.trace.conftest import eth, graph_of

HOSTILE = "<img src=x onerror=alert(1)>"
T0 = int(datetime(2026, 3, 20, 2, 41, tzinfo=UTC).timestamp())


def hostile_actor_id() -> str:
    return derive_id("intrusion-set", "t", "hostile")


def build_web_kb(path: Path) -> Path:
    """The API tests' small knowledge base plus an actor whose name is markup."""
    build_small_kb(path)
    store = SQLiteStore(path)
    try:
        actor = KBObject(
            id=hostile_actor_id(), type=ObjectType.INTRUSION_SET, name=HOSTILE, source="mallory", aliases=(HOSTILE,)
        )
        store.import_batch(ImportBatch(sources=(Source(key="mallory", name="Mallory"),), objects=(actor,)))
    finally:
        store.close()
    return path


def small_case(kb: Path) -> CaseReport:
    """A case from the real report builder: a theft fanned out to two services, and a sighting holding markup."""
    transfers = [
        eth("t0", T0, "hot", "a", 1_000),
        eth("f1", T0 + 10, "a", "b1", 300),
        eth("f2", T0 + 20, "a", "b2", 300),
        eth("f3", T0 + 30, "a", "b3", 400),
        eth("d1", T0 + 100, "b1", "svc1", 300),
        eth("d2", T0 + 200, "b2", "svc2", 300),
        eth("d3", T0 + 300, "b3", "svc1", 400),
    ]
    case = trace_case(graph_of(transfers, services=("svc1", "svc2")), [Seed("t0")])
    sighting = Sighting(
        "indicator--1", "domain", "evil.example", "EVIL.EXAMPLE.", "logs/dns.jsonl", 42, "query",
        '{"query": "' + HOSTILE + '"}', "2026-03-16T01:03:00Z", "2026-03-17T05:00:00Z", 3,
    )  # fmt: skip
    store = SQLiteStore(kb)
    try:
        return build_case_report(
            "Case " + HOSTILE,
            store,
            sightings=[sighting],
            case=case,
            decimals={("eth", "ETH"): 0},
            now=datetime(2026, 4, 1, tzinfo=UTC),
        )
    finally:
        store.close()


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Api]:
    made = make_api(tmp_path, build_web_kb(tmp_path / "kb.sqlite"))
    with made.client:
        yield made


@pytest.fixture
def case_json(tmp_path: Path) -> str:
    """A case report as `heistwatch demo` writes report.json."""
    return json.dumps(small_case(build_web_kb(tmp_path / "case-kb.sqlite")).to_dict(), indent=1)
