"""A report through the whole ingest stage: findings on their sentences, stored once, exported as valid STIX."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path

import pytest
from stix2validator import ValidationOptions, validate_parsed_json

from heistwatch.errors import InputError
from heistwatch.ingest.analyze import Analyzer, ingest_documents
from heistwatch.ingest.text import document_from_string
from heistwatch.kb import SQLiteStore
from heistwatch.kb.build import BuildReport
from heistwatch.share.stix_report import report_bundle

NOW = datetime.datetime(2026, 3, 4, 5, 6, 7, tzinfo=datetime.UTC)
SHA = "9f2c4a1e" * 8
REPORT = f"""# Exchange intrusion, spring 2026

The Lazarus Group sent a spearphishing attachment (T1566.001) that fetched hxxps://update-check[.]jobs-cdn[.]com/a.php.
The dropper ran PowerShell to download the second stage.

| SHA-256 | C&C |
|---|---|
| {SHA} | 91.207.60.145 |

The original analysis is at https://www.clearskysec.com/cryptocore/ and was covered by the press.
"""


@pytest.fixture
def store(kb_copy: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(kb_copy)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def analyzer(built_kb: BuildReport) -> Analyzer:
    return Analyzer(SQLiteStore(built_kb.path))


def _snapshot(store: SQLiteStore) -> tuple[object, ...]:
    reports = store.reports()
    return reports, [store.findings(r.id) for r in reports], store.indicators(), store.sources()


def test_findings_sit_on_their_sentences(analyzer: Analyzer) -> None:
    analysis = analyzer.analyze(document_from_string(REPORT, "md", "r.md"), now=NOW)
    findings = analysis.batch.findings
    by_role = {(f.role, f.kind, f.value) for f in findings}
    assert ("indicator", "sha256", SHA) in by_role
    assert ("indicator", "domain", "update-check.jobs-cdn.com") in by_role
    assert ("indicator", "ipv4", "91.207.60.145") in by_role
    assert ("technique", "attack-pattern", "T1566.001") in by_role
    assert not any(f.role == "indicator" and "clearskysec" in f.value for f in findings)
    lazarus = [f for f in findings if f.role == "entity" and f.value == "Lazarus Group"]
    assert lazarus and lazarus[0].object_ids
    for f in findings:
        assert f.sentence_start <= f.start < f.end <= f.sentence_end
    url = next(f for f in findings if f.kind == "url")
    assert "Lazarus Group" in analysis.sentence(url)
    assert analysis.batch.report.title == "Exchange intrusion, spring 2026"


def test_ingesting_twice_changes_nothing(store: SQLiteStore, analyzer: Analyzer) -> None:
    doc = document_from_string(REPORT, "md", "r.md")
    list(ingest_documents([doc], store, analyzer, now=NOW))
    first = _snapshot(store)
    list(ingest_documents([doc], store, analyzer, now=NOW + datetime.timedelta(days=1)))
    assert _snapshot(store) == first
    assert len(first[0]) == 1


def test_a_bad_file_is_reported_and_the_rest_stored(store: SQLiteStore, analyzer: Analyzer, tmp_path: Path) -> None:
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.7 this is not a pdf")
    good = tmp_path / "good.md"
    good.write_text(REPORT, encoding="utf-8")
    outcomes = list(ingest_documents([bad, good], store, analyzer, now=NOW))
    assert isinstance(outcomes[0].error, InputError) and "broken.pdf" in str(outcomes[0].error)
    assert outcomes[1].report is not None
    assert [r.name for r in store.reports()] == [str(good)]


def test_report_bundle_is_valid_stix_with_spans(store: SQLiteStore, analyzer: Analyzer) -> None:
    doc = document_from_string(REPORT, "md", "r.md")
    (outcome,) = ingest_documents([doc], store, analyzer, now=NOW)
    assert outcome.report is not None
    bundle = report_bundle(store, outcome.report.id, doc.text)
    result = validate_parsed_json(bundle, ValidationOptions(version="2.1"))
    assert [str(e) for e in result.errors] == []
    by_type: dict[str, list[dict[str, object]]] = {}
    for obj in bundle["objects"]:
        by_type.setdefault(obj["type"], []).append(obj)
    (report,) = by_type["report"]
    assert set(report["object_refs"]) >= {i["id"] for i in by_type["indicator"]}  # type: ignore[call-overload]
    sha = next(i for i in by_type["indicator"] if SHA in str(i["pattern"]))
    spans = sha["x_heistwatch_spans"]
    assert isinstance(spans, list) and doc.text[spans[0]["start"] : spans[0]["end"]] == SHA
    indicates = [r for r in by_type["relationship"] if r["relationship_type"] == "indicates"]
    assert indicates, "the URL shares its sentence with the Lazarus Group"
    assert report_bundle(store, outcome.report.id, doc.text) == bundle
