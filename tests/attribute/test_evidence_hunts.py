"""Attribution evidence from the new hunts' sightings: rule tags, rule metadata names, TLSH families, lookalikes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from heistwatch.attribute.evidence import SIGMA_LEVEL_RELIABILITY, sighting_evidence
from heistwatch.attribute.profiles import name_item
from heistwatch.hunt.findings import FAMILY_SOURCE, LOOKALIKE_SOURCE, RULE_SOURCE
from heistwatch.kb import SQLiteStore
from heistwatch.kb.seed.attack import SOURCE_KEY as ATTACK
from heistwatch.model import ImportBatch, KBObject, ObjectType, Sighting, Source, derive_id, make_indicator
from tests.conftest import sample_batch

SIGMA = """title: Chain
id: 5b0f2a51-7c1e-4f0a-9a57-2f4c8e1d6b3a
tags:
    - attack.execution
    - attack.t1059.001
    - attack.g0032
    - attack.s0002
level: high
logsource:
    category: process_creation
detection:
    sel:
        Image|endswith: '\\wscript.exe'
    condition: sel
"""


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    """The sample knowledge base, ATT&CK's Lazarus Group (G0032), and a stored Sigma rule."""
    kb = SQLiteStore(tmp_path / "kb.sqlite")
    kb.import_batch(sample_batch())
    lazarus = KBObject(
        id=derive_id("intrusion-set", "t", "g0032"),
        type=ObjectType.INTRUSION_SET,
        name="Lazarus Group",
        source=ATTACK,
        external_id="G0032",
    )
    rule = make_indicator("sigma", "5b0f2a51-7c1e-4f0a-9a57-2f4c8e1d6b3a", source=RULE_SOURCE.key, rule_text=SIGMA)
    kb.import_batch(
        ImportBatch(sources=(Source(ATTACK, "ATT&CK"), RULE_SOURCE), objects=(lazarus,), indicators=(rule,))
    )
    return kb


def _seen(kind: str, value: str, raw: str = "", hunt: str = "sigma") -> Sighting:
    return Sighting(derive_id("indicator", kind, value), kind, value, value, "f", 1, kind, raw, hunt=hunt)


def test_sigma_tags_give_techniques_software_and_groups_weighted_by_level(store: SQLiteStore) -> None:
    seen = _seen("sigma", "5b0f2a51-7c1e-4f0a-9a57-2f4c8e1d6b3a")
    evidence = sighting_evidence([seen, seen], store)  # one rule matched twice counts once
    items = {(e.kind, e.item_id) for e in evidence}
    assert ("technique", "T1059.001") in items and ("software", "S0002") in items
    assert ("name", name_item("Lazarus Group")) in items
    assert not any(e.item_id.lower() == "execution" for e in evidence)  # tactics are not techniques
    assert {e.reliability for e in evidence} == {SIGMA_LEVEL_RELIABILITY["high"]}
    assert {e.origin for e in evidence} == {"sigma:5b0f2a51-7c1e-4f0a-9a57-2f4c8e1d6b3a"}
    assert len(evidence) == len(items)


def test_sigma_rule_not_in_the_store_adds_nothing(store: SQLiteStore) -> None:
    assert sighting_evidence([_seen("sigma", "00000000-0000-0000-0000-000000000000")], store) == []


def test_yara_metadata_names_known_actors_only(store: SQLiteStore) -> None:
    raw = {
        "tags": ["attack_t1204_002"],
        "meta": [["actor", "CryptoCore"], ["malware", "NoSuchFamily"], ["mitre_attack", "T1059.005"], ["score", 70]],
    }
    evidence = sighting_evidence([_seen("yara", "demo:x", json.dumps(raw), hunt="files")], store)
    items = {(e.kind, e.item_id) for e in evidence}
    assert items == {("technique", "T1204.002"), ("technique", "T1059.005"), ("name", name_item("CryptoCore"))}
    assert {e.reliability for e in evidence} == {0.7}


def test_yara_without_score_uses_the_default_reliability(store: SQLiteStore) -> None:
    raw = {"tags": [], "meta": [["malware", "CageyChameleon"]]}
    [evidence] = sighting_evidence([_seen("yara", "demo:y", json.dumps(raw), hunt="files")], store)
    assert (evidence.item_id, evidence.reliability) == (name_item("CageyChameleon"), 0.6)


@pytest.mark.parametrize(("distance", "reliability"), [(0, 0.8), (25, 0.6), (50, 0.4), (100, None), (140, None)])
def test_tlsh_family_reliability_falls_with_distance(
    store: SQLiteStore, distance: int, reliability: float | None
) -> None:
    raw = json.dumps({"family": "CageyChameleon", "distance": distance, "threshold": 50, "sha256": ""})
    evidence = sighting_evidence([_seen("tlsh", "T1" + "A1" * 35, raw, hunt="files")], store)
    if reliability is None:
        assert evidence == []
    else:
        [found] = evidence
        assert (found.kind, found.item_id, found.reliability) == ("name", name_item("CageyChameleon"), reliability)


def test_lookalike_of_the_brand_adds_nothing(store: SQLiteStore) -> None:
    lookalike = make_indicator("domain", "hokuto-exchanqe.com", source=LOOKALIKE_SOURCE.key)
    store.import_batch(ImportBatch(sources=(LOOKALIKE_SOURCE, FAMILY_SOURCE), indicators=(lookalike,)))
    seen = Sighting(
        lookalike.id, "domain", lookalike.value, lookalike.value, "dns.jsonl", 3, "query", "", hunt="domains"
    )
    assert sighting_evidence([seen], store) == []
