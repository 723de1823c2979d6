"""Named actors and malware in text: whole words, spelling-independent keys, and case rules for common words."""

from __future__ import annotations

import pytest

from heistwatch.ingest.entities import EntityMatcher
from heistwatch.model import NameEntry, ObjectType, name_key


def _entry(name: str, kind: ObjectType = ObjectType.INTRUSION_SET, oid: str = "") -> NameEntry:
    return NameEntry(name_key(name), name, oid or f"x--{name_key(name)}", kind, "test", True)


MATCHER = EntityMatcher(
    [
        _entry("Lazarus Group"),
        _entry("Lazarus"),
        _entry("APT38"),
        _entry("Silence"),
        _entry("Donot"),
        _entry("Hive", ObjectType.MALWARE),
        _entry("Net", ObjectType.TOOL),
        _entry("AppleJeus", ObjectType.MALWARE),
        _entry("Operation In(ter)ception", ObjectType.CAMPAIGN),
        _entry("Spearphishing Attachment", ObjectType.ATTACK_PATTERN),
    ]
)


def _names(text: str) -> list[str]:
    return [m.name for m in MATCHER.find(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Lazarus Group used AppleJeus.", ["Lazarus Group", "AppleJeus"]),
        ("Tracked as APT 38 and apt-38 by others.", ["APT 38", "apt-38"]),
        ("attributed to Lazarus with medium-high likelihood", ["Lazarus"]),
        ("the silence was broken by Silence in the morning", []),
        ("the Silence group stole from banks", ["Silence"]),
        ("Hive ransomware encrypted the share", ["Hive"]),
        ("Do not open the attachment.", []),
        ("Net use was seen; the Net utility mapped shares", ["Net"]),
        ("the campaign Operation In(ter)ception targeted staff", ["Operation In(ter)ception"]),
        ("Operation\nIn(ter)ception", []),
        ("Spearphishing Attachment is a technique, not an actor", []),
        ("LazarusGroupware and xAppleJeus are other words", []),
    ],
)
def test_case_and_word_rules(text: str, expected: list[str]) -> None:
    assert _names(text) == expected


def test_spans_point_at_the_text_and_excluded_spans_are_skipped() -> None:
    text = "Lazarus used https://lazarus.example/AppleJeus.zip and AppleJeus."
    url = (text.index("https"), text.index(".zip") + 4)
    found = MATCHER.find(text, exclude=[url, (url[0] + 8, url[0] + 22)])
    assert [(m.name, text[m.start : m.end]) for m in found] == [("Lazarus", "Lazarus"), ("AppleJeus", "AppleJeus")]
    assert found[1].start > url[1]
    assert found[0].types == (ObjectType.INTRUSION_SET,)
