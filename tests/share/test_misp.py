"""MISP events: PyMISP loads them back with the same values, types, tags; TLP ceilings hold; galaxy tags are real."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymisp import MISPEvent
from pymispgalaxies.api import Clusters

from heistwatch.attribute.knowledge import Levels
from heistwatch.attribute.model import Attribution, Candidate, Evidence
from heistwatch.errors import NotFoundError
from heistwatch.kb import SQLiteStore
from heistwatch.model import TLP, Likelihood, normalize_indicator
from heistwatch.share.feeds import WITHHELD
from heistwatch.share.misp import MISP_TYPES, actor_event, event_json, report_event
from tests.share.test_feeds import CASE_INDICATORS, CASE_TEXT, RED_VALUE, case_kb  # noqa: F401  (fixture)

REPORT = "c" * 64


@pytest.fixture
def store(case_kb: Path) -> Iterator[SQLiteStore]:  # noqa: F811
    opened = SQLiteStore(case_kb)
    yield opened
    opened.close()


def _attributes(event: MISPEvent) -> dict[str, dict[str, Any]]:
    """Value -> what MISP keeps of its attribute (objects' attributes included, with the object's name)."""
    rows = [(None, a) for a in event.attributes] + [(o.name, a) for o in event.objects for a in o.attributes]
    return {
        a.value: {
            "object": name,
            "type": a.type,
            "category": a.category,
            "to_ids": bool(a.to_ids),
            "comment": getattr(a, "comment", None),
            "tags": sorted(t.name for t in a.tags),
            "first_seen": getattr(a, "first_seen", None),
            "last_seen": getattr(a, "last_seen", None),
            "uuid": a.uuid,
        }
        for name, a in rows
    }


def _reloaded(event: MISPEvent) -> MISPEvent:
    loaded = MISPEvent()
    loaded.load(json.loads(event_json(event)))
    return loaded


def test_report_event_round_trips_through_pymisp(store: SQLiteStore) -> None:
    event = report_event(store, REPORT, CASE_TEXT, tlp_max=TLP.RED)
    loaded = _reloaded(event)
    assert _attributes(loaded) == _attributes(event)
    assert sorted(t.name for t in loaded.tags) == sorted(t.name for t in event.tags)
    assert (loaded.uuid, loaded.info, loaded.date) == (event.uuid, "Case test report", datetime.date(2026, 1, 2))
    # Every indicator is there with its MISP type, its TLP, confidence and first/last seen.
    attributes = _attributes(loaded)
    for kind, value, tlp, confidence, first, last in CASE_INDICATORS:
        got = attributes[normalize_indicator(kind, value)]
        assert got["to_ids"] is True
        assert f"tlp:{tlp.value}" in got["tags"]
        assert (f'heistwatch:confidence="{confidence}"' in got["tags"]) is (confidence is not None)
        if kind in MISP_TYPES:
            assert (got["type"], got["category"]) == MISP_TYPES[kind]
        if first:
            assert got["first_seen"] == datetime.datetime.fromisoformat(first.replace("Z", "+00:00"))
        if last:
            assert got["last_seen"] == datetime.datetime.fromisoformat(last.replace("Z", "+00:00"))
        assert value in got["comment"] or normalize_indicator(kind, value) in got["comment"]


def test_types_fit_misp_categories_and_eth_is_a_coin_address(store: SQLiteStore) -> None:
    event = report_event(store, REPORT, CASE_TEXT, tlp_max=TLP.RED)
    allowed = event.describe_types["category_type_mappings"]
    for row in _attributes(event).values():
        if row["object"] is None:
            assert row["type"] in allowed[row["category"]], row
    (coin,) = event.objects
    assert coin.name == "coin-address"
    assert {a.object_relation: a.value for a in coin.attributes} == {
        "address-crypto": "0x52908400098527886e0f7030069857d2e4169ee7",
        "symbol": "ETH",
    }


def test_mentions_and_cves_are_context_not_detections(store: SQLiteStore) -> None:
    attributes = _attributes(report_event(store, REPORT, CASE_TEXT))
    mention = attributes["https://www.clearskysec.com/cryptocore/"]
    assert mention["to_ids"] is False and mention["comment"].startswith("mention (warninglist:vendor blog)")
    cve = attributes["CVE-2023-1234"]
    assert (cve["type"], cve["to_ids"]) == ("vulnerability", False)
    assert "Spearphishing attachments" in cve["comment"]


def test_actors_and_techniques_are_real_galaxy_clusters(store: SQLiteStore) -> None:
    tags = [t.name for t in report_event(store, REPORT, CASE_TEXT).tags]
    galaxy = [t for t in tags if t.startswith("misp-galaxy:")]
    assert 'misp-galaxy:threat-actor="Lazarus Group"' in galaxy
    assert 'misp-galaxy:mitre-attack-pattern="Spearphishing Attachment - T1566.001"' in galaxy
    assert not any("AppleJeus" in t for t in tags)  # the report denies AppleJeus
    clusters = Clusters()
    for tag in galaxy:
        name, _, value = tag.removeprefix("misp-galaxy:").partition("=")
        cluster = clusters.get(name)
        assert cluster is not None and value.strip('"') in cluster, tag


def test_tlp_ceiling_keeps_marked_values_out(store: SQLiteStore) -> None:
    red = event_json(report_event(store, REPORT, CASE_TEXT, tlp_max=TLP.RED))
    assert RED_VALUE in red and '"tlp:red"' in red
    amber = report_event(store, REPORT, CASE_TEXT, tlp_max=TLP.AMBER)
    assert RED_VALUE not in event_json(amber)
    assert {t.name for t in amber.tags} >= {"tlp:amber"} and "tlp:red" not in {t.name for t in amber.tags}
    clear = report_event(store, REPORT, CASE_TEXT, tlp_max=TLP.CLEAR)
    assert all("tlp:clear" in row["tags"] for row in _attributes(clear).values() if row["to_ids"])
    assert "evil-cdn.example" not in _attributes(clear)  # TLP:GREEN
    # A sentence quoting a withheld value is blacked out where it names it (offsets kept).
    url = _attributes(clear)["https://evil-cdn.example/a/b.php?id=1*2"]
    assert "reached \u2588\u2588\u2588\u2588" in url["comment"] and RED_VALUE not in event_json(clear)
    no_text = report_event(store, REPORT, None, tlp_max=TLP.AMBER)
    assert _attributes(no_text)["2001:db8:10::/48"]["comment"] == WITHHELD  # its sentence names the RED server
    assert int(clear.distribution) == 3 and int(amber.distribution) == 0


def test_attribution_becomes_an_event_report_and_candidates(store: SQLiteStore) -> None:
    candidates = (
        Candidate("G0032", "Lazarus Group", 0.62, 2.1, Likelihood.LIKELY),
        Candidate("G0082", "APT38", 0.21, 1.0, Likelihood.UNLIKELY),
    )
    result = Attribution(candidates, {"G0032": 0.62, "G0082": 0.21}, 0.17, "moderate", False, None)
    levels = Levels(
        result, {"Lazarus Group (G0032)": 0.62}, {}, {"KP": 0.83}, (Evidence("T1566.001", "technique", "r"),), {}
    )
    loaded = _reloaded(report_event(store, REPORT, CASE_TEXT, attribution=levels))
    (report,) = loaded.event_reports
    assert "Lazarus Group" in report.content and "62.0%" in report.content
    actors = {a.value: a for a in loaded.attributes if a.type == "threat-actor"}
    assert "62.0%" in actors["Lazarus Group"].comment and actors["Lazarus Group"].to_ids is False
    assert 'estimative-language:likelihood-probability="unlikely"' in {t.name for t in actors["APT38"].tags}


def test_actor_event_holds_its_indicators_galaxies_and_techniques(store: SQLiteStore) -> None:
    now = datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC)
    event = _reloaded(actor_event(store, "Lazarus Group", tlp_max=TLP.AMBER, now=now))
    values = {a.value for a in event.attributes} | {a.value for o in event.objects for a in o.attributes}
    assert "evil-cdn.example" in values and RED_VALUE not in values
    tags = {t.name for t in event.tags}
    assert {
        'misp-galaxy:threat-actor="Lazarus Group"',
        'misp-galaxy:mitre-intrusion-set="Lazarus Group - G0032"',
    } <= tags
    assert sum(t.startswith("misp-galaxy:mitre-attack-pattern=") for t in tags) > 20  # ATT&CK's `uses`
    apt38 = {t.name for t in actor_event(store, "APT38", now=now).tags}
    assert 'misp-galaxy:mitre-intrusion-set="APT38 - G0082"' in apt38
    assert 'misp-galaxy:threat-actor="Lazarus Group"' not in apt38  # the galaxy's synonym is a claim, not a merge


def test_same_input_same_event(store: SQLiteStore) -> None:
    assert event_json(report_event(store, REPORT, CASE_TEXT)) == event_json(report_event(store, REPORT, CASE_TEXT))


def test_unknown_report_or_actor(store: SQLiteStore) -> None:
    with pytest.raises(NotFoundError):
        report_event(store, "report--none")
    with pytest.raises(NotFoundError):
        actor_event(store, "No Such Actor 42")
