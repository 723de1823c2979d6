"""Rule and TLSH indicator kinds: normalization, patterns, and their STIX pattern type."""

from __future__ import annotations

import pytest

from heistwatch.model import make_indicator, normalize_indicator
from heistwatch.model.indicators import pattern_type, stix_pattern

TLSH = "T1" + "A1" * 35


@pytest.mark.parametrize(
    ("kind", "raw", "normalized"),
    [
        ("tlsh", TLSH.lower(), TLSH),
        ("tlsh", "a1" * 35, TLSH),  # digests written without the version prefix
        ("yara", " apt_nk:Lazarus_Dropper ", "apt_nk:Lazarus_Dropper"),  # YARA names keep their case
        ("sigma", "24C4D154-05A4-4B99-B57D-9B977472443A", "24c4d154-05a4-4b99-b57d-9b977472443a"),
    ],
)
def test_normalize_new_kinds(kind: str, raw: str, normalized: str) -> None:
    assert normalize_indicator(kind, raw) == normalized


@pytest.mark.parametrize(
    ("kind", "raw"),
    [("tlsh", "T1ABC"), ("tlsh", "TNULL"), ("yara", "no_namespace"), ("yara", "ns:1bad"), ("sigma", "two words")],
)
def test_bad_new_kinds_raise(kind: str, raw: str) -> None:
    with pytest.raises(ValueError):
        normalize_indicator(kind, raw)


def test_rule_indicator_pattern_is_its_text() -> None:
    text = "rule x { condition: true }\n"
    ind = make_indicator("yara", "demo:x", source="hunt-rules", rule_text=text)
    assert ind.pattern == text
    assert pattern_type(ind.kind) == "yara"
    assert pattern_type("sigma") == "sigma"
    assert pattern_type("domain") == "stix"


def test_rule_text_required_for_rules_only() -> None:
    with pytest.raises(ValueError, match="required"):
        make_indicator("sigma", "abc", source="s")
    with pytest.raises(ValueError, match="only for rule kinds"):
        make_indicator("domain", "evil.example", source="s", rule_text="x")
    with pytest.raises(ValueError):
        stix_pattern("yara", "demo:x")


def test_tlsh_pattern_uses_the_stix_hash_name() -> None:
    assert make_indicator("tlsh", TLSH, source="s").pattern == f"[file:hashes.TLSH = '{TLSH}']"
