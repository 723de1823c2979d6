"""Name resolution on the built knowledge base: the case's names, per source, and where sources disagree."""

from __future__ import annotations

import pytest

from heistwatch.errors import NotFoundError
from heistwatch.kb import NameIndex, Resolver, SQLiteStore

DONE_WHEN = ["Dangerous Password", "CryptoCore", "CryptoMimic", "Leery Turtle", "Sapphire Sleet", "APT38", "Andariel"]


@pytest.fixture
def resolver(kb_store: SQLiteStore) -> Resolver:
    return Resolver(kb_store)


@pytest.mark.parametrize("name", DONE_WHEN)
def test_case_names_have_claims_per_source_with_references(resolver: Resolver, name: str) -> None:
    res = resolver.resolve(name)
    data = res.to_dict()
    assert data["statements"], name
    assert all(st["source"] for st in data["statements"])
    assert any(st["reference"] and st["reference"].startswith("http") for st in data["statements"])
    assert data["group"]["values"] or data["umbrella"]["values"] or data["aliases"]


def test_spelling_does_not_matter(resolver: Resolver) -> None:
    ids = [{m["id"] for m in resolver.resolve(n).matches} for n in ("APT38", "APT 38", "apt-38", "Apt38")]
    assert all(i == ids[0] for i in ids) and ids[0]
    assert any(m["external_id"] == "G0032" for m in resolver.resolve("Lazarus group").matches)
    assert any(m["external_id"] == "G0032" for m in resolver.resolve("LAZARUS").matches)


def test_attack_splits_apt38_from_lazarus_where_the_galaxy_lumps_them(resolver: Resolver) -> None:
    res = resolver.resolve("APT38")
    assert res.group.agreement == "disagree"
    assert "mitre-attack" in res.group.values["APT38 (G0082)"]
    assert "misp-galaxy:threat-actor" in res.group.values["Lazarus Group (G0032)"]
    assert any(d.startswith("group:") for d in res.disagreements)


def test_cryptocore_reaches_lazarus_only_through_its_publisher(resolver: Resolver) -> None:
    res = resolver.resolve("CryptoCore")
    lazarus = {**res.group.values, **res.umbrella.values}.get("Lazarus Group (G0032)", [])
    assert "clearsky-cyber-security" in lazarus
    assert "mitre-attack" not in lazarus
    clearsky = [s for s in res.statements if s.source == "clearsky-cyber-security" and "Lazarus" in s.object]
    assert any(s.likelihood == "likely" and s.said == "medium-high likelihood" for s in clearsky)


def test_actor_view_lists_techniques_and_software(resolver: Resolver) -> None:
    res = resolver.resolve("APT38")
    assert any(u.external_id and u.external_id.startswith("T1") and "mitre-attack" in u.sources for u in res.techniques)
    assert any(u.external_id and u.external_id.startswith("S") for u in res.software)
    assert resolver.resolve("KP").country.values  # a country anchor resolves too


def test_unknown_name_is_not_found(resolver: Resolver) -> None:
    with pytest.raises(NotFoundError):
        resolver.resolve("Definitely Not An Actor 123")


def test_dictionary_is_exposed_for_ingest(kb_store: SQLiteStore) -> None:
    index = NameIndex.from_store(kb_store)
    assert len(index) > 5_000
    assert {e.source for e in index.lookup("Bluenoroff")} >= {"mitre-attack", "misp-galaxy:threat-actor"}
