"""Rule packs: YARA rules compile with yara-x and match the files they name; Sigma rules load with pySigma."""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yara_x
from hypothesis import given, settings
from hypothesis import strategies as st
from sigma.collection import SigmaCollection
from sigma.rule import SigmaRule
from sigma.types import SigmaCIDRExpression, SigmaString, SpecialChars
from sigma.validators.base import SigmaValidationIssue
from sigma.validators.core import validators

from heistwatch.kb import SQLiteStore
from heistwatch.model import TLP, Indicator, make_indicator
from heistwatch.share.rules import UNATTRIBUTED, rule_groups, sigma_escape, sigma_pack, yara_pack
from tests.share.test_feeds import RED_VALUE, case_kb  # noqa: F401  (fixture)

DAY = datetime.date(2026, 1, 2)
PAYLOADS = [b"first dropper", b"second dropper", b"third dropper", b"fourth", b"fifth"]


def _hashes(kind: str, actor_tlp: TLP = TLP.CLEAR) -> list[Indicator]:
    return [
        make_indicator(kind, hashlib.new(kind, p).hexdigest(), source="vendor", tlp=actor_tlp, reference="https://r.example")
        for p in PAYLOADS
    ]  # fmt: skip


def _scan(rules: yara_x.Rules, data: bytes) -> list[str]:
    return sorted(r.identifier for r in yara_x.Scanner(rules).scan(data).matching_rules)


def test_yara_pack_compiles_and_matches_exactly_the_listed_files() -> None:
    groups = {"Lazarus Group": _hashes("sha256") + _hashes("md5"), "Other": _hashes("sha1")[:1]}
    pack = yara_pack(groups, date=DAY, max_values=2)
    rules = yara_x.compile(pack.text)
    assert (pack.rules, pack.values) == (3 + 3 + 1, 11)
    assert len(_scan(rules, PAYLOADS[0])) == 3  # its sha256 and md5 rules, and the sha1 rule of "Other"
    assert len(_scan(rules, PAYLOADS[4])) == 2
    assert _scan(rules, b"an ordinary file") == []
    (match,) = [r for r in yara_x.Scanner(rules).scan(PAYLOADS[2]).matching_rules if "sha256" in r.identifier]
    meta = dict(match.metadata)
    assert meta["actor"] == "Lazarus Group" and meta["date"] == "2026-01-02" and meta["source"] == "vendor"
    assert meta["reference"] == "https://r.example" and meta["tlp"] == "TLP:CLEAR"


def test_yara_rules_respect_the_value_limit() -> None:
    pack = yara_pack({"A": _hashes("sha256")}, date=DAY, max_values=2)
    assert pack.text.count("hash.sha256(0, filesize)") == 5
    for rule in pack.text.split("rule ")[1:]:
        assert rule.count("hash.sha256") <= 2
    assert yara_pack({}, date=DAY).rules == 0 and yara_x.compile(yara_pack({}, date=DAY).text) is not None


@settings(max_examples=50, deadline=None)
@given(actor=st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=30))
def test_any_actor_name_compiles_and_survives_in_meta(actor: str) -> None:
    rules = yara_x.compile(yara_pack({actor: _hashes("md5")[:1]}, date=DAY).text)
    (match,) = yara_x.Scanner(rules).scan(PAYLOADS[0]).matching_rules
    value = dict(match.metadata)["actor"]  # yara-x returns a string with \x escapes as bytes
    assert (value.decode() if isinstance(value, bytes) else value) == actor


def _sigma_rules(text: str) -> list[SigmaRule]:
    collection = SigmaCollection.from_yaml(text)
    assert collection.errors == []
    return [r for r in collection.rules if isinstance(r, SigmaRule)]


def _modifiers(item: object) -> str:
    names = (m.__name__.removeprefix("Sigma").removesuffix("Modifier").lower() for m in getattr(item, "modifiers", []))
    return "".join("|" + n for n in names)


def _literal(value: SigmaString) -> str:
    """The characters a Sigma string matches, with each wildcard written <*> or <?>."""
    return "".join(
        p if isinstance(p, str) else f"<{'*' if p is SpecialChars.WILDCARD_MULTI else '?'}>" for p in value.s
    )


def _plain_values(rule: SigmaRule) -> dict[str, list[str]]:
    """Field with modifiers -> the literal values the rule matches, as pySigma parsed them."""
    out: dict[str, list[str]] = {}
    for detection in rule.detection.detections.values():
        for item in detection.detection_items:
            parsed = getattr(item, "value", [])
            values = [v.cidr if isinstance(v, SigmaCIDRExpression) else _literal(v) for v in parsed]
            out.setdefault(f"{getattr(item, 'field', '')}{_modifiers(item)}", []).extend(values)
    return out


SIGMA_INDICATORS = [
    make_indicator("domain", "evil.example", source="v", tlp=TLP.AMBER_STRICT),
    make_indicator("url", "https://evil.example/a/b.php?id=1*2&x=\\y", source="v", reference="https://r.example/1"),
    make_indicator("url", "http://evil.example/plain", source="v"),
    make_indicator("ipv4", "203.0.113.7", source="v"),
    make_indicator("ipv4", "198.51.100.0/24", source="v"),
    make_indicator("ipv6", "2001:db8::1", source="v"),
    make_indicator("sha256", "0" * 64, source="v"),  # not for Sigma
]


def test_sigma_pack_loads_with_taxonomy_fields_and_literal_values() -> None:
    pack = sigma_pack({"Lazarus Group": SIGMA_INDICATORS}, date=DAY)
    rules = {r.logsource.category: r for r in _sigma_rules(pack.text)}
    assert set(rules) == {"dns_query", "network_connection", "proxy"}
    # pySigma applies the modifiers: `endswith` becomes a leading wildcard, `startswith` a trailing one; the
    # URLs' own `*`, `?` and `\\` stay literal characters.
    assert _plain_values(rules["dns_query"]) == {
        "QueryName": ["evil.example"],
        "QueryName|endswith": ["<*>.evil.example"],
    }
    assert _plain_values(rules["network_connection"]) == {
        "DestinationIp": ["203.0.113.7", "2001:db8::1"],
        "DestinationIp|cidr": ["198.51.100.0/24"],
    }
    assert _plain_values(rules["proxy"]) == {
        "c-uri": ["http://evil.example/plain", "https://evil.example/a/b.php?id=1*2&x=\\y"],
        "c-uri|startswith": ["http://evil.example/plain?<*>"],
    }
    assert rules["dns_query"].logsource.product == "windows" and rules["proxy"].logsource.product is None
    assert [str(t) for t in rules["dns_query"].tags] == ["detection.emerging-threats", "tlp.amber-strict"]
    assert rules["proxy"].references == ["https://r.example/1"] and rules["proxy"].date == DAY
    assert pack.values == 2 + 3 + 3 and pack.rules == 3


# One file, not SigmaHQ's tree; TLP 2.0 labels, not 1.0; a URL's `?` is escaped on purpose (a literal query
# mark); the ATT&CK and D3FEND tag checks download their data.
_SKIPPED_VALIDATORS = ("duplicate_filename", "tlpv1_tag", "escaped_wildcard", "attacktag", "d3_fendtag")


def test_sigma_pack_passes_pysigma_validators() -> None:
    text = sigma_pack({"A": SIGMA_INDICATORS, "B": SIGMA_INDICATORS}, date=DAY).text
    issues: list[SigmaValidationIssue] = []
    for name, validator in validators.items():
        if name.startswith("filename") or name in _SKIPPED_VALIDATORS:
            continue
        check = validator()  # one instance sees every rule, so uniqueness checks compare them
        for rule in _sigma_rules(text):
            issues += check.validate(rule)
        issues += check.finalize()
    assert [type(i).__name__ for i in issues] == []


def test_sigma_rules_split_at_the_value_limit() -> None:
    domains = [make_indicator("domain", f"d{n}.example", source="v") for n in range(7)]
    rules = _sigma_rules(sigma_pack({"A": domains}, date=DAY, max_values=4).text)
    assert len(rules) == 4
    assert all(sum(len(v) for v in _plain_values(r).values()) <= 4 for r in rules)
    assert len({r.id for r in rules}) == 4 and len({r.title for r in rules}) == 4
    with pytest.raises(ValueError):
        sigma_pack({"A": domains}, date=DAY, max_values=1)


def test_sigma_escape_is_literal() -> None:
    assert sigma_escape("a*b?c\\d") == "a\\*b\\?c\\\\d"


@pytest.fixture
def store(case_kb: Path) -> Iterator[SQLiteStore]:  # noqa: F811
    opened = SQLiteStore(case_kb)
    yield opened
    opened.close()


def test_rule_groups_follow_actors_and_the_tlp_ceiling(store: SQLiteStore) -> None:
    groups = rule_groups(store, tlp_max=TLP.AMBER)
    assert "Lazarus Group" in groups and UNATTRIBUTED not in groups
    assert RED_VALUE not in {i.value for i in groups["Lazarus Group"]}
    assert RED_VALUE in {i.value for i in rule_groups(store, actor="Lazarus Group", tlp_max=TLP.RED)["Lazarus Group"]}
    assert list(rule_groups(store, actor="lazarus group")) == ["Lazarus Group"]
    pack = yara_pack(groups, date=DAY)
    assert yara_x.compile(pack.text) is not None and pack.values == 2  # the report's MD5 and (AMBER) SHA-256
    assert _sigma_rules(sigma_pack(groups, date=DAY).text)
