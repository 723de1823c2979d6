"""Building from the packaged data: every source arrives, claims files are checked, failures change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from heistwatch.errors import ClaimsFileError
from heistwatch.kb import SQLiteStore, build_knowledge_base
from heistwatch.kb.build import BuildReport
from heistwatch.kb.seed.claims import load_claims, packaged_claims
from heistwatch.model import ImportBatch, Sighting, Source, make_indicator
from tests.conftest import report_batch

GOOD_CLAIM = """\
topic: test
claims:
  - subject: CryptoCore
    subject_type: intrusion-set
    relation: attributed-to
    object: Lazarus Group
    object_type: intrusion-set
    likelihood: likely
    source: Example Vendor
    date: 2021-03-10
    reference: https://example.org/report
"""


def test_every_source_is_loaded(built_kb: BuildReport) -> None:
    store = SQLiteStore(built_kb.path)
    stats = {s.source.key: s for s in store.stats()}
    store.close()
    attack = stats["mitre-attack"]
    assert attack.source.version == "18.1"
    assert attack.objects["intrusion-set"] > 150 and attack.objects["attack-pattern"] > 600
    assert attack.relationships > 10_000
    for cluster in (
        "threat-actor",
        "microsoft-activity-group",
        "malpedia",
        "tidal-groups",
        "tidal-campaigns",
        "mitre-intrusion-set",
        "mitre-malware",
        "mitre-tool",
    ):
        assert sum(stats[f"misp-galaxy:{cluster}"].objects.values()) > 50, cluster
    assert stats["misp-galaxy:threat-actor"].claims > 100
    assert sum(s.claims for key, s in stats.items() if not key.startswith(("misp", "mitre-attack"))) >= 40


def test_packaged_claims_carry_provenance() -> None:
    batch = load_claims(packaged_claims(), pack_version="test")
    assert len(batch.claims) >= 40
    for claim in batch.claims:
        assert claim.reference and claim.reference.startswith("http")
        assert claim.date and claim.source


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        (GOOD_CLAIM.replace("attributed-to", "is-friends-with"), 5, "is not one of"),
        (GOOD_CLAIM.replace("likely", "pretty sure"), 8, "ICD 203"),
        (GOOD_CLAIM.replace("    date: 2021-03-10\n", ""), 3, "missing 'date'"),
        (GOOD_CLAIM.replace("2021-03-10", "last spring"), 10, "YYYY-MM"),
        (GOOD_CLAIM.replace("https://example.org/report", "file:///etc/passwd"), 11, "http"),
        (GOOD_CLAIM + "    colour: blue\n", 12, "unknown field 'colour'"),
        (GOOD_CLAIM.replace("object_type: intrusion-set", "object_type: country"), 6, "ISO 3166"),
        ("topic: x\nclaims:\n  - subject: [unclosed\n", 4, "not valid YAML"),
        ("just text", 1, "mapping"),
    ],
)
def test_bad_claims_file_names_file_line_and_problem(tmp_path: Path, text: str, line: int, problem: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ClaimsFileError) as caught:
        load_claims([path], pack_version="test")
    assert caught.value.path == str(path)
    assert caught.value.line == line
    assert problem in caught.value.problem


def test_failed_build_leaves_previous_knowledge_base_intact(tmp_path: Path) -> None:
    target = tmp_path / "kb.sqlite"
    good = tmp_path / "good.yaml"
    good.write_text(GOOD_CLAIM, encoding="utf-8")
    build_knowledge_base(target, claims_files=[good])
    store = SQLiteStore(target)
    before = [(s.source.key, s.claims, dict(s.objects)) for s in store.stats()]
    store.close()
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD_CLAIM.replace("likely", "sort of"), encoding="utf-8")
    with pytest.raises(ClaimsFileError):
        build_knowledge_base(target, claims_files=[good, bad])
    store = SQLiteStore(target)
    assert [(s.source.key, s.claims, dict(s.objects)) for s in store.stats()] == before
    store.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "good.yaml", "kb.sqlite"]


def test_rebuild_keeps_ingested_reports(tmp_path: Path) -> None:
    target = tmp_path / "kb.sqlite"
    good = tmp_path / "good.yaml"
    good.write_text(GOOD_CLAIM, encoding="utf-8")
    build_knowledge_base(target, claims_files=[good])
    store = SQLiteStore(target)
    batch = report_batch("2026-01-01T00:00:00Z", ("a.example",))
    store.import_report(batch)
    seen = Sighting("indicator--1", "domain", "a.example", "a.example", "dns.log", 9, "query", "{}")
    store.record_sightings([seen], "2026-01-02T00:00:00Z")
    store.close()
    report = build_knowledge_base(target, claims_files=[good])
    assert report.records["reports-kept"] == 1
    assert report.records["sightings-kept"] == 1
    store = SQLiteStore(target)
    assert store.reports() == [batch.report]
    assert store.findings(batch.report.id) == list(batch.findings)
    assert [i.value for i in store.indicators(kind="domain")] == ["a.example"]
    assert store.sightings() == [seen]
    store.close()


def test_rebuild_over_a_damaged_file_still_builds(tmp_path: Path) -> None:
    target = tmp_path / "kb.sqlite"
    target.write_bytes(b"this is not a database" * 100)
    good = tmp_path / "good.yaml"
    good.write_text(GOOD_CLAIM, encoding="utf-8")
    report = build_knowledge_base(target, claims_files=[good])
    assert report.records["reports-unreadable"] == 1
    store = SQLiteStore(target)
    assert store.stats()
    store.close()


def test_rebuild_keeps_what_other_sources_stored(tmp_path: Path) -> None:
    target = tmp_path / "kb.sqlite"
    good = tmp_path / "good.yaml"
    good.write_text(GOOD_CLAIM, encoding="utf-8")
    build_knowledge_base(target, claims_files=[good])
    lookalike = make_indicator("domain", "hokuto-exchange-login.com", source="lookalike-hunt")
    store = SQLiteStore(target)
    store.import_batch(ImportBatch(sources=(Source("lookalike-hunt", "lookalike hunt"),), indicators=(lookalike,)))
    store.close()
    report = build_knowledge_base(target, claims_files=[good])
    assert report.records["sources-kept"] == 1
    store = SQLiteStore(target)
    assert store.indicators(kind="domain") == [lookalike]
    store.close()
