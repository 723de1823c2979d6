"""Indicator feeds: rows as CSV and JSON, streamed, actors tied through reports and links, TLP ceiling enforced."""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TextIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heistwatch.errors import NotFoundError
from heistwatch.kb import KnowledgeStore, SQLiteStore
from heistwatch.kb.build import BuildReport
from heistwatch.model import (
    TLP,
    Finding,
    KBObject,
    ObjectType,
    Relationship,
    Report,
    ReportBatch,
    Source,
    derive_id,
    make_indicator,
    name_key,
)
from heistwatch.model.objects import ImportBatch
from heistwatch.share.feeds import (
    FEED_FIELDS,
    FeedEntry,
    actor_records,
    select_indicators,
    tlp_allows,
    write_csv_feed,
    write_json_feed,
)

# A report written for these tests: every sentence carries facts whose spans the findings below point at.
CASE_TEXT = (
    "Lazarus Group mailed lures from hr@blockwave.example with Job_Description.pdf.lnk attached. "
    "The dropper reached evil-cdn.example, 203.0.113.7 and https://evil-cdn.example/a/b.php?id=1*2 over HTTPS. "
    "Dropped files hashed 5d41402abc4b2a76b9719d911017c592 and "
    "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824. "
    "Funds went to bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq and 0x52908400098527886e0f7030069857d2e4169ee7. "
    "The RED-only server 198.51.100.9 and the AMBER network 2001:db8:10::/48 were shared in confidence. "
    "Spearphishing attachments (T1566.001) exploited CVE-2023-1234. "
    "There is no code overlap with AppleJeus. "
    "Further reading: https://www.clearskysec.com/cryptocore/ on the vendor's blog."
)
CASE_SOURCE = "report-case-test"
# (kind, value as written, TLP, confidence, first seen, last seen)
CASE_INDICATORS = (
    ("email", "hr@blockwave.example", TLP.CLEAR, 80, "2021-01-02T00:00:00Z", "2021-02-03T00:00:00Z"),
    ("filename", "Job_Description.pdf.lnk", TLP.CLEAR, None, None, None),
    ("domain", "evil-cdn.example", TLP.GREEN, 90, "2020-06-01T00:00:00Z", None),
    ("ipv4", "203.0.113.7", TLP.CLEAR, None, None, None),
    ("url", "https://evil-cdn.example/a/b.php?id=1*2", TLP.CLEAR, None, None, None),
    ("md5", "5d41402abc4b2a76b9719d911017c592", TLP.CLEAR, None, None, None),
    ("sha256", "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", TLP.AMBER, 60, None, None),
    ("btc", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", TLP.CLEAR, None, None, None),
    ("eth", "0x52908400098527886e0f7030069857d2e4169ee7", TLP.CLEAR, None, None, None),
    ("ipv4", "198.51.100.9", TLP.RED, None, None, None),
    ("ipv6", "2001:db8:10::/48", TLP.AMBER, None, None, None),
)
RED_VALUE = "198.51.100.9"


def _sentence(text: str, start: int) -> tuple[int, int]:
    begin = text.rfind(". ", 0, start)
    end = text.find(". ", start)
    return (0 if begin < 0 else begin + 2), (len(text) if end < 0 else end + 1)


def _finding(report_id: str, kind: str, value: str, role: str, reason: str, ids: tuple[str, ...] = ()) -> Finding:
    start = CASE_TEXT.index(value)
    sentence = _sentence(CASE_TEXT, start)
    return Finding(
        id=derive_id("finding", report_id, kind, value, role),
        report_id=report_id,
        kind=kind,
        value=value,
        role=role,
        reason=reason,
        start=start,
        end=start + len(value),
        sentence_start=sentence[0],
        sentence_end=sentence[1],
        object_ids=ids,
    )


def _ids(store: KnowledgeStore, name: str, kind: ObjectType) -> tuple[str, ...]:
    return tuple(sorted({e.object_id for e in store.lookup(name_key(name)) if e.object_type is kind}))


def add_case_report(store: KnowledgeStore) -> Report:
    """Store the test report: indicators of every kind and TLP, a named actor, a denied one, a technique."""
    report = Report(
        id=derive_id("report", "case-test"),
        sha256="c" * 64,
        name="case.txt",
        title="Case test report",
        format="txt",
        chars=len(CASE_TEXT),
        ingested="2026-01-02T03:04:05Z",
        source=CASE_SOURCE,
    )
    indicators = tuple(
        make_indicator(
            kind,
            value,
            source=CASE_SOURCE,
            tlp=tlp,
            confidence=confidence,
            first_seen=first,
            last_seen=last,
            reference="https://vendor.example/case",
            description=CASE_TEXT[slice(*_sentence(CASE_TEXT, CASE_TEXT.index(value)))],
        )
        for kind, value, tlp, confidence, first, last in CASE_INDICATORS
    )
    technique = [
        o.id
        for o in store.objects(type=ObjectType.ATTACK_PATTERN)
        if o.external_id == "T1566.001" and o.source == "mitre-attack"
    ]
    actor = ObjectType.INTRUSION_SET
    findings = (
        _finding(report.id, "intrusion-set", "Lazarus Group", "entity", "name:t", _ids(store, "Lazarus Group", actor)),
        _finding(report.id, "intrusion-set", "AppleJeus", "entity", "name:t;negated", _ids(store, "AppleJeus", actor)),
        _finding(report.id, "attack-pattern", "T1566.001", "technique", "id:T1566.001", tuple(technique)),
        _finding(report.id, "cve", "CVE-2023-1234", "indicator", "pattern"),
        _finding(report.id, "url", "https://www.clearskysec.com/cryptocore/", "mention", "warninglist:vendor blog"),
        *(_finding(report.id, kind, value, "indicator", "pattern") for kind, value, *_ in CASE_INDICATORS),
    )
    findings = tuple(sorted(findings, key=lambda f: f.start))
    return store.import_report(ReportBatch(Source(key=CASE_SOURCE, name="Case test"), report, findings, indicators))


@pytest.fixture(scope="module")
def case_kb(built_kb: BuildReport, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the built knowledge base with the test report ingested."""
    path = Path(shutil.copy(built_kb.path, tmp_path_factory.mktemp("feeds") / "kb.sqlite"))
    store = SQLiteStore(path)
    add_case_report(store)
    store.close()
    return path


@pytest.fixture
def case_store(case_kb: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(case_kb)
    yield store
    store.close()


def test_tlp_order() -> None:
    assert tlp_allows(TLP.AMBER, TLP.AMBER) and tlp_allows(TLP.CLEAR, TLP.AMBER)
    assert not tlp_allows(TLP.AMBER_STRICT, TLP.AMBER) and not tlp_allows(TLP.RED, TLP.AMBER_STRICT)


def test_report_indicators_carry_the_actors_it_names_not_those_it_denies(case_store: SQLiteStore) -> None:
    entries = list(select_indicators(case_store, report="c" * 64))
    assert len(entries) == len(CASE_INDICATORS)
    assert {e.actors for e in entries} == {("Lazarus Group",)}  # AppleJeus is denied in the text


def test_tlp_ceiling_drops_what_is_above_it(case_store: SQLiteStore) -> None:
    values = {e.indicator.value for e in select_indicators(case_store, report="c" * 64, tlp_max=TLP.RED)}
    assert RED_VALUE in values
    amber = {e.indicator.value for e in select_indicators(case_store, report="c" * 64, tlp_max=TLP.AMBER)}
    assert RED_VALUE not in amber and "2001:db8:10::/48" in amber
    clear = list(select_indicators(case_store, report="c" * 64, tlp_max=TLP.CLEAR))
    assert {e.indicator.tlp for e in clear} == {TLP.CLEAR}


def test_actor_selection_follows_names_not_galaxy_synonyms(case_store: SQLiteStore) -> None:
    lazarus = {e.indicator.value for e in select_indicators(case_store, actor="lazarus group")}
    assert "evil-cdn.example" in lazarus
    # The MISP galaxy lists APT38 as a Lazarus synonym; a claim is not a merge, so APT38 selects its own records.
    assert "misp-galaxy:threat-actor" not in {r.source for r in actor_records(case_store, "APT38")}
    assert not list(select_indicators(case_store, actor="APT38"))
    with pytest.raises(NotFoundError):
        select_indicators(case_store, actor="No Such Actor 42")  # raised before the first row is read
    with pytest.raises(NotFoundError):
        select_indicators(case_store, report="report--nope")


def test_indicates_links_tie_indicators_to_actors() -> None:
    store = SQLiteStore(":memory:")
    source = Source(key="vendor", name="Vendor")
    actor_id = derive_id("intrusion-set", "x")
    actor = KBObject(id=actor_id, type=ObjectType.INTRUSION_SET, name="Secret Actor", source="vendor", tlp=TLP.RED)
    indicator = make_indicator("domain", "linked.example", source="vendor")
    link = Relationship(derive_id("relationship", "l"), "indicates", indicator.id, actor_id, "vendor")
    store.import_batch(ImportBatch(sources=(source,), objects=(actor,), relationships=(link,), indicators=(indicator,)))
    assert [e.actors for e in select_indicators(store)] == [("Secret Actor",)]
    # The actor is RED: under an AMBER ceiling the indicator is exported without the actor's name.
    assert [e.actors for e in select_indicators(store, tlp_max=TLP.AMBER)] == [()]
    with pytest.raises(NotFoundError):
        select_indicators(store, actor="Secret Actor", tlp_max=TLP.AMBER)


def test_csv_and_json_feeds_hold_every_field(case_store: SQLiteStore) -> None:
    entries = list(select_indicators(case_store, report="c" * 64))
    text = io.StringIO()
    assert write_csv_feed(entries, text) == len(entries)
    rows = list(csv.DictReader(io.StringIO(text.getvalue())))
    assert tuple(rows[0]) == FEED_FIELDS
    domain = next(r for r in rows if r["kind"] == "domain")
    assert domain == {
        "kind": "domain",
        "value": "evil-cdn.example",
        "first_seen": "2020-06-01T00:00:00Z",
        "last_seen": "",
        "confidence": "90",
        "actors": "Lazarus Group",
        "tlp": "TLP:GREEN",
        "source": CASE_SOURCE,
        "reference": "https://vendor.example/case",
    }
    data = io.StringIO()
    assert write_json_feed(entries, data) == len(entries)
    parsed = json.loads(data.getvalue())
    assert parsed["fields"] == list(FEED_FIELDS)
    assert [(r["kind"], r["value"]) for r in parsed["indicators"]] == [(r["kind"], r["value"]) for r in rows]
    assert next(r for r in parsed["indicators"] if r["kind"] == "domain")["actors"] == ["Lazarus Group"]


class _Recorder(io.StringIO):
    """A text sink that remembers the largest single write."""

    largest = 0
    writes = 0

    def write(self, s: str) -> int:
        self.largest = max(self.largest, len(s))
        self.writes += 1
        return 0  # the text is not kept: a million rows must not pile up here either


def _many(n: int) -> Iterator[FeedEntry]:
    for k in range(n):
        yield FeedEntry(make_indicator("ipv4", f"10.{k >> 16 & 255}.{k >> 8 & 255}.{k & 255}", source="s"), ("A",))


@pytest.mark.parametrize("write", [write_csv_feed, write_json_feed])
def test_feeds_stream_row_by_row(write: Callable[[Iterable[FeedEntry], TextIO], int]) -> None:
    sink = _Recorder()
    assert write(_many(20_000), sink) == 20_000
    assert sink.writes >= 20_000 and sink.largest < 300


@settings(max_examples=60)
@given(name=st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), min_size=1, max_size=40))
def test_csv_feed_keeps_any_filename(name: str) -> None:
    indicator = make_indicator("filename", name + "x", source='s,"q"', tlp=TLP.AMBER_STRICT)
    text = io.StringIO()
    write_csv_feed([FeedEntry(indicator, ('Actor "A", B',))], text)
    (row,) = csv.DictReader(io.StringIO(text.getvalue()))
    assert (row["value"], row["source"], row["actors"], row["tlp"]) == (
        indicator.value,
        's,"q"',
        'Actor "A", B',
        "TLP:AMBER+STRICT",
    )


def test_feed_of_all_indicators_in_a_store_with_none() -> None:
    store = SQLiteStore(":memory:")
    text = io.StringIO()
    assert write_json_feed(select_indicators(store), text) == 0
    assert json.loads(text.getvalue())["indicators"] == []
