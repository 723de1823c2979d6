"""Every hunt's findings as sightings and indicators: conversions, storage, STIX, and the indicator consumers."""

from __future__ import annotations

import datetime
import hashlib
import io
import json
from pathlib import Path

import pytest
import tlsh  # type: ignore[import-not-found]
from stix2validator import ValidationOptions, validate_parsed_json

from heistwatch.hunt.demo_hunts import demo_rules
from heistwatch.hunt.domains import hunt_domains
from heistwatch.hunt.files import hunt_files
from heistwatch.hunt.findings import (
    FAMILY_SOURCE,
    LOOKALIKE_SOURCE,
    RULE_SOURCE,
    HuntFindings,
    domain_findings,
    file_findings,
    findings_bundle,
    record_findings,
    sigma_findings,
    split_yara_rules,
    yara_rule_texts,
)
from heistwatch.hunt.fuzzy import FamilyIndex, KnownHash
from heistwatch.hunt.lookalike import LookalikeFinder
from heistwatch.hunt.matcher import IndicatorSet
from heistwatch.hunt.sigma import hunt_sigma, load_rules
from heistwatch.hunt.yara_scan import compile_rules
from heistwatch.kb import SQLiteStore
from heistwatch.model import ImportBatch, Relationship, derive_id, make_indicator
from heistwatch.share.feeds import select_indicators, write_csv_feed
from heistwatch.share.misp import actor_event
from heistwatch.share.rules import rule_groups, sigma_pack, yara_pack
from heistwatch.share.stix import _indicator_sdo, bundle_to_batch
from tests.conftest import sample_batch

RULE = """import "pe"

rule demo_dropper : dropper
{
    meta:
        author = "test author"
        description = "braces } in a string and { in a comment"
        actor = "CryptoCore"
    strings:
        $a = "heistwatch-planted-marker" // a comment with } brace
        $h = { 4D 5A }
        /* a block comment } */
    condition:
        $a and ($h or true)
}

private rule other { condition: false }
"""
SIGMA_LOG = [
    {
        "ts": "2026-03-16T01:02:00Z",
        "image": "C:\\Windows\\System32\\wscript.exe",
        "parent_image": "C:\\Windows\\explorer.exe",
        "command_line": "wscript.exe //B C:\\Users\\a\\AppData\\Roaming\\x.vbs",
        "user": "a",
    },
    {
        "ts": "2026-03-16T01:03:00Z",
        "image": "C:\\Windows\\System32\\notepad.exe",
        "parent_image": "C:\\Windows\\explorer.exe",
        "command_line": "notepad.exe",
        "user": "a",
    },
]


def _validate(bundle: dict[str, object]) -> list[str]:
    return [str(e) for e in validate_parsed_json(bundle, ValidationOptions(version="2.1")).errors]


def _yara_hunt(tmp_path: Path) -> tuple[Path, HuntFindings]:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "demo.yar").write_text(RULE, encoding="utf-8")
    files = tmp_path / "files"
    files.mkdir()
    (files / "bad.bin").write_bytes(b"MZ\x90\x00 heistwatch-planted-marker")
    (files / "good.txt").write_bytes(b"nothing here")
    report = hunt_files([files], rules=compile_rules([rules]), fuzzy=False, workers=1)
    return rules, file_findings(report, yara_rule_texts([rules]))


def test_split_yara_rules_keeps_imports_and_whole_bodies() -> None:
    rules = split_yara_rules(RULE)
    assert set(rules) == {"demo_dropper", "other"}
    assert rules["demo_dropper"].startswith('import "pe"\nrule demo_dropper')
    assert rules["demo_dropper"].rstrip().endswith("($h or true)\n}")
    assert "private rule other" not in rules["demo_dropper"]
    assert rules["other"].strip().endswith("private rule other { condition: false }")


def test_yara_match_is_a_sighting_of_its_rule(tmp_path: Path) -> None:
    _, found = _yara_hunt(tmp_path)
    assert found.sources == (RULE_SOURCE,)
    [indicator] = found.indicators
    assert (indicator.kind, indicator.value, indicator.source) == ("yara", "demo:demo_dropper", "hunt-rules")
    assert indicator.pattern.startswith('import "pe"') and "test author" in indicator.description
    [seen] = found.sightings
    assert (seen.hunt, seen.kind, seen.indicator_id) == ("files", "yara", indicator.id)
    assert seen.file.endswith("bad.bin")
    assert json.loads(seen.raw)["meta"][2] == ["actor", "CryptoCore"]


def test_tlsh_family_match_is_a_sighting_of_the_known_sample(tmp_path: Path) -> None:
    sample = bytes(range(256)) * 40 + b"family code"
    variant = sample[:-11] + b"family edit"
    (tmp_path / "variant.bin").write_bytes(variant)
    index = FamilyIndex.from_known([KnownHash("AppleJeus", tlsh.hash(sample), "ab" * 32)])
    report = hunt_files([tmp_path], index=index, workers=1)
    found = file_findings(report, {})
    [indicator] = found.indicators
    assert (indicator.kind, indicator.source) == ("tlsh", FAMILY_SOURCE.key)
    assert indicator.value == tlsh.hash(sample).upper() and "AppleJeus" in indicator.description
    [seen] = found.sightings
    assert seen.observed == tlsh.hash(variant) and seen.hunt == "files"
    raw = json.loads(seen.raw)
    assert raw["family"] == "AppleJeus" and raw["distance"] == tlsh.diff(tlsh.hash(sample), tlsh.hash(variant))


def test_hash_hits_become_file_sightings(tmp_path: Path) -> None:
    (tmp_path / "x.bin").write_bytes(b"known bad bytes")
    digest = hashlib.sha256(b"known bad bytes").hexdigest()
    indicator = make_indicator("sha256", digest, source="vendor-a")
    found = file_findings(hunt_files([tmp_path], indicators=[indicator], fuzzy=False, workers=1), {})
    [seen] = found.sightings
    assert (seen.hunt, seen.indicator_id, found.indicators) == ("files", indicator.id, ())


def test_lookalikes_become_domain_indicators_and_sightings(tmp_path: Path) -> None:
    log = tmp_path / "dns.jsonl"
    rows = [{"ts": "2026-03-01T00:00:00Z", "query": q} for q in ("hokuto-exchanqe.com", "www.hokuto-exchange.com")]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    report = hunt_domains([log], LookalikeFinder(("hokuto-exchange.com",)), workers=1)
    found = domain_findings(report)
    [indicator] = found.indicators
    assert (indicator.kind, indicator.value, indicator.source) == ("domain", "hokuto-exchanqe.com", "lookalike-hunt")
    assert "hokuto-exchange.com" in indicator.description and "score" in indicator.description
    [seen] = found.sightings
    assert (seen.hunt, seen.line, seen.file) == ("domains", 1, str(log))
    assert found.sources == (LOOKALIKE_SOURCE,)


def test_sigma_match_is_a_sighting_of_its_rule_with_file_and_line(tmp_path: Path) -> None:
    log = tmp_path / "process.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in SIGMA_LOG), encoding="utf-8")
    found = sigma_findings(hunt_sigma(load_rules([demo_rules()]), [log]))
    [indicator] = found.indicators
    assert (indicator.kind, indicator.value) == ("sigma", "5b0f2a51-7c1e-4f0a-9a57-2f4c8e1d6b3a")
    assert indicator.pattern.startswith("title: Script Host Chain") and "attack.t1059.005" in indicator.pattern
    [seen] = found.sightings
    assert (seen.hunt, seen.file, seen.line, seen.first_seen) == ("sigma", str(log), 1, "2026-03-16T01:02:00Z")
    assert json.loads(seen.raw)["user"] == "a"


def test_recording_keeps_what_is_stored_and_is_idempotent(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "kb.sqlite")
    store.import_batch(sample_batch())
    before = {i.id: i for i in store.indicators()}
    _, found = _yara_hunt(tmp_path)
    assert record_findings(store, found, "2026-03-20T00:00:00+00:00") == 1
    assert record_findings(store, found, "2026-03-21T00:00:00+00:00") == 0
    after = {i.id: i for i in store.indicators()}
    assert {k: after[k] for k in before} == before
    assert [i.kind for i in after.values() if i.id not in before] == ["yara"]
    [stored] = store.sightings(kind="yara")
    assert stored == found.sightings[0]
    store.close()


def test_bundle_has_rule_indicators_stored_or_not(tmp_path: Path) -> None:
    _, found = _yara_hunt(tmp_path)
    store = SQLiteStore(":memory:")  # nothing recorded: the bundle still carries the hunt's own indicators
    bundle = findings_bundle(store, found, "our exchange")
    assert _validate(bundle) == []
    [sdo] = [o for o in bundle["objects"] if o["type"] == "indicator"]
    assert sdo["pattern_type"] == "yara" and sdo["pattern"].startswith('import "pe"')
    assert [o["sighting_of_ref"] for o in bundle["objects"] if o["type"] == "sighting"] == [sdo["id"]]
    batch, _ = bundle_to_batch(bundle, "b.json")
    assert [(i.kind, i.value) for i in batch.indicators] == [("yara", "demo:demo_dropper")]


def test_sigma_and_tlsh_indicators_validate_as_stix() -> None:
    stamp = "2026-03-20T00:00:00.000Z"
    sigma = make_indicator("sigma", "5b0f2a51-7c1e-4f0a-9a57-2f4c8e1d6b3a", source="s", rule_text="title: x\n")
    digest = make_indicator("tlsh", "T1" + "A1" * 35, source="s")
    assert _indicator_sdo(sigma, stamp)["pattern_type"] == "sigma"
    assert _indicator_sdo(digest, stamp)["pattern_type"] == "stix"
    objects = [_indicator_sdo(i, stamp) for i in (sigma, digest)]
    for obj in objects:
        obj.pop("created_by_ref")
        obj.pop("object_marking_refs")
    assert _validate({"type": "bundle", "id": derive_id("bundle", "t"), "objects": objects}) == []


def test_log_matcher_ignores_kinds_it_cannot_match() -> None:
    rows = [
        make_indicator("yara", "demo:x", source="s", rule_text="rule x { condition: true }"),
        make_indicator("sigma", "abc", source="s", rule_text="title: x"),
        make_indicator("tlsh", "T1" + "A1" * 35, source="s"),
    ]
    indicators = IndicatorSet.from_indicators(rows)
    assert (indicators.size, indicators.kinds()) == (0, frozenset())
    both = IndicatorSet.from_indicators([*rows, make_indicator("domain", "evil.example", source="s")])
    assert both.size == 1 and both.kinds() == {"domain"}


@pytest.fixture
def store_with_rule(tmp_path: Path) -> SQLiteStore:
    """The sample knowledge base plus a YARA rule and a TLSH sample that indicate CryptoCore."""
    store = SQLiteStore(tmp_path / "kb.sqlite")
    batch = sample_batch()
    store.import_batch(batch)
    actor = next(o for o in batch.objects if o.name == "CryptoCore")
    rule = make_indicator("yara", "demo:demo_dropper", source="hunt-rules", rule_text=RULE)
    sample = make_indicator("tlsh", "T1" + "A1" * 35, source="hunt-families")
    links = tuple(
        Relationship(derive_id("relationship", "t", i.id), "indicates", i.id, actor.id, "vendor-a")
        for i in (rule, sample)
    )
    sources = (*batch.sources, RULE_SOURCE, FAMILY_SOURCE)
    store.import_batch(ImportBatch(sources=sources, indicators=(rule, sample), relationships=links))
    return store


def test_feeds_rule_packs_and_misp_take_rule_indicators(store_with_rule: SQLiteStore) -> None:
    entries = list(select_indicators(store_with_rule, actor="CryptoCore"))
    assert {e.indicator.kind for e in entries} >= {"yara", "tlsh"}
    out = io.StringIO()
    assert write_csv_feed(entries, out) == len(entries)
    assert "demo:demo_dropper" in out.getvalue()
    groups = rule_groups(store_with_rule)
    today = datetime.date(2026, 3, 20)
    assert "demo_dropper" not in yara_pack(groups, date=today).text  # hash rules only; the rule itself is shared as is
    assert "demo_dropper" not in sigma_pack(groups, date=today).text
    event = actor_event(store_with_rule, "CryptoCore")
    assert "demo:demo_dropper" not in [a.value for a in event.attributes]
    assert "evil.example" in [a.value for a in event.attributes]
