"""Actor profiles and evidence from the knowledge base: ATT&CK behaviour, names tied by claims, victims."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from heistwatch.attribute.evidence import findings_evidence, read_evidence, sighting_evidence
from heistwatch.attribute.knowledge import Attributor
from heistwatch.attribute.profiles import KnowledgeProfiles, knowledge_profiles, name_item
from heistwatch.errors import InputError
from heistwatch.ingest.analyze import Analyzer, ingest_documents
from heistwatch.ingest.text import document_from_string
from heistwatch.kb import SQLiteStore
from heistwatch.kb.build import BuildReport
from heistwatch.model import Sighting


@pytest.fixture(scope="module")
def profiles(built_kb: BuildReport) -> KnowledgeProfiles:
    return knowledge_profiles(SQLiteStore(built_kb.path))


def _profile(profiles: KnowledgeProfiles, actor: str) -> dict[str, float]:
    return dict(next(p for p in profiles.profiles if p.actor_id == actor).items)


def test_every_attack_group_is_a_candidate_with_its_behaviour(profiles: KnowledgeProfiles) -> None:
    assert len(profiles.profiles) == 172
    lazarus = _profile(profiles, "G0032")
    assert lazarus["T1566.001"] == 1.0
    assert any(i.startswith("S") for i in lazarus)
    kinds = {i.kind for i in profiles.items}
    assert kinds == {"technique", "software"}


def test_claims_tie_names_to_groups_at_their_likelihood(profiles: KnowledgeProfiles) -> None:
    lazarus = _profile(profiles, "G0032")
    assert lazarus[name_item("Lazarus Group")] == 1.0
    # ClearSky: CryptoCore is Lazarus, "likely" (ICD 203 midpoint 0.675); ATT&CK does not say so.
    assert lazarus[name_item("CryptoCore")] == pytest.approx(0.675)
    assert name_item("CryptoCore") not in _profile(profiles, "G0082")
    # Dangerous Password reaches Lazarus only through "same as CryptoCore": one hop, at the product of strengths.
    assert 0 < lazarus[name_item("Dangerous Password")] < lazarus[name_item("CryptoCore")]
    countries = {p.actor_id: p.country for p in profiles.profiles}
    assert countries["G0032"] == countries["G0082"] == "KP"


def test_evidence_file_reads_every_kind(built_kb: BuildReport, tmp_path: Path) -> None:
    path = tmp_path / "e.json"
    rows = [
        {"kind": "technique", "value": "t1566.001"},
        {"kind": "software", "value": "Mimikatz"},
        {"kind": "name", "value": "CryptoCore", "reliability": 0.8, "origin": "clearsky-2020"},
        {"kind": "sector", "value": "Government"},
    ]
    path.write_text(json.dumps({"evidence": rows}))
    evidence = read_evidence(path, SQLiteStore(built_kb.path))
    ids = {(e.kind, e.item_id) for e in evidence}
    assert {("technique", "T1566.001"), ("software", "S0002"), ("name", "name:cryptocore")} <= ids
    assert ("sector", "sector:government") in ids
    assert next(e for e in evidence if e.kind == "name" and e.item_id == "name:cryptocore").origin == "clearsky-2020"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("not json", "cannot read JSON"),
        ('{"evidence": [{"kind": "technique", "value": "T12"}]}', "not an ATT&CK technique id"),
        ('{"evidence": [{"kind": "colour", "value": "red"}]}', "kind"),
        ('{"evidence": [{"kind": "name", "value": "x", "reliability": 3}]}', "reliability"),
        ('{"evidence": [{"kind": "indicator", "value": "nokind"}]}', "kind:value"),
        ('{"items": []}', "expected"),
    ],
)
def test_bad_evidence_names_the_file_and_row(built_kb: BuildReport, tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(InputError, match=problem) as err:
        read_evidence(path, SQLiteStore(built_kb.path))
    assert "bad.json" in str(err.value)


def test_sightings_of_a_reports_indicator_count_once_with_the_report(kb_copy: Path) -> None:
    store = SQLiteStore(kb_copy)
    text = "CryptoCore staged the second stage on hxxps://cloud-docs-share[.]online/a.php in 2026.\n"
    (outcome,) = ingest_documents([document_from_string(text, "md", "r.md")], store, Analyzer(store), now=None)
    assert outcome.report is not None
    from_report = findings_evidence(store.findings(outcome.report.id), store, outcome.report)
    sighting = Sighting(
        "indicator--x", "domain", "cloud-docs-share.online", "a.cloud-docs-share.online", "dns", 1, "query", ""
    )
    from_sighting = sighting_evidence([sighting], store)
    assert {e.item_id for e in from_sighting} == {name_item("CryptoCore")}
    attributor = Attributor(store)
    alone = attributor.attribute(from_report).attribution.candidates[0]
    both = attributor.attribute([*from_report, *from_sighting]).attribution.candidates[0]
    assert (both.actor_id, both.log_lr) == (alone.actor_id, pytest.approx(alone.log_lr))
    store.close()
