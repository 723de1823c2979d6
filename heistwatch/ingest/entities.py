"""Actors, campaigns, malware and tools named in a text, matched against the knowledge base's name dictionary.

Names are compared by the same spelling-independent key as name resolution ("APT 38" = "apt38"), over whole
words only. Case rules keep ordinary words from becoming actors: a name that is a common English word
(by `wordfreq`'s frequency list, which ships with the package) counts only when written capitalized and next
to a word that marks a name ("the Silence group", "Hive ransomware"), and a lower-case word never matches a
capitalized name.
"""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from wordfreq import zipf_frequency

from heistwatch.model import NameEntry, ObjectType

ENTITY_TYPES = frozenset({ObjectType.INTRUSION_SET, ObjectType.CAMPAIGN, ObjectType.MALWARE, ObjectType.TOOL})
MAX_WORDS = 6
COMMON_ZIPF = 3.5  # about once per 300,000 English words: "silence", "hive", "equation" are above; "lazarus" is not
_WORD = re.compile(r"[^\W_]+")
_CUES = frozenset(
    [
        "group",
        "gang",
        "team",
        "apt",
        "actor",
        "actors",
        "threat",
        "campaign",
        "operation",
        "malware",
        "backdoor",
        "rat",
        "trojan",
        "loader",
        "dropper",
        "implant",
        "ransomware",
        "wiper",
        "stealer",
        "infostealer",
        "downloader",
        "family",
        "variant",
        "tool",
        "utility",
        "framework",
        "aka",
        "tracked",
    ]
)
_CUE_DISTANCE = 3


@dataclass(frozen=True)
class EntityMention:
    """A knowledge-base name found in the text: every object carrying that name, and where it was written."""

    name: str
    start: int
    end: int
    entries: tuple[NameEntry, ...]

    @property
    def object_ids(self) -> tuple[str, ...]:
        """The ids of the objects (one per source) that carry the name."""
        return tuple(dict.fromkeys(e.object_id for e in self.entries))

    @property
    def types(self) -> tuple[ObjectType, ...]:
        """The kinds of object the name denotes, most specific first (an actor before a tool)."""
        order = list(ObjectType)
        return tuple(sorted({e.object_type for e in self.entries}, key=order.index))


@lru_cache(maxsize=65536)
def _is_common(word: str) -> bool:
    return zipf_frequency(word, "en") >= COMMON_ZIPF


class EntityMatcher:
    """Finds dictionary names in text in one left-to-right pass over its words."""

    def __init__(self, entries: Iterable[NameEntry]) -> None:
        """Index the names of actors, campaigns, malware and tools; keys shorter than three characters are skipped."""
        by_key: defaultdict[str, list[NameEntry]] = defaultdict(list)
        for entry in entries:
            if entry.object_type in ENTITY_TYPES and len(entry.key) >= 3 and not entry.key.isdigit():
                by_key[entry.key].append(entry)
        self._entries = {key: tuple(found) for key, found in by_key.items()}
        self._spellings = {key: {e.name for e in found} for key, found in self._entries.items()}
        self._breaks = {key: _word_breaks(key, self._spellings[key]) for key in self._entries}
        self._prefixes = {key[:i] for key in self._entries for i in range(1, len(key) + 1)}

    def __len__(self) -> int:
        return len(self._entries)

    def find(self, text: str, *, exclude: Sequence[tuple[int, int]] = ()) -> list[EntityMention]:
        """Every name in `text`, longest match first at each word, skipping the `exclude` spans (indicators)."""
        skip = _Spans(exclude)
        words = [m for m in _WORD.finditer(text) if not skip.covers(m.start(), m.end())]
        keys = [m.group().casefold() for m in words]
        found: list[EntityMention] = []
        i = 0
        while i < len(words):
            match = self._longest(text, words, keys, i)
            if match is None:
                i += 1
                continue
            found.append(match[0])
            i = match[1]
        return found

    def _longest(
        self, text: str, words: list[re.Match[str]], keys: list[str], i: int
    ) -> tuple[EntityMention, int] | None:
        best: tuple[EntityMention, int] | None = None
        key = ""
        for j in range(i, min(i + MAX_WORDS, len(words))):
            if j > i and _separated(text, words[j - 1].end(), words[j].start()):
                break  # names do not span line breaks, list markers or sentences
            key += keys[j]
            if key not in self._prefixes:
                break
            if (
                key in self._entries
                and self._split_as_named(keys, i, j, key)
                and self._accept(text, words, keys, i, j, key)
            ):
                mention = EntityMention(
                    text[words[i].start() : words[j].end()], words[i].start(), words[j].end(), self._entries[key]
                )
                best = (mention, j + 1)
        return best

    def _split_as_named(self, keys: list[str], i: int, j: int, key: str) -> bool:
        """Words break where some spelling of the name breaks ("APT 38" for "APT38"; not "Do not" for "Donot")."""
        breaks, at = set(), 0
        for k in keys[i:j]:
            at += len(k)
            breaks.add(at)
        return breaks <= self._breaks[key]

    def _accept(self, text: str, words: list[re.Match[str]], keys: list[str], i: int, j: int, key: str) -> bool:
        """Case rules: a word as the dictionary spells it or capitalized; a common word only beside a cue."""
        written = text[words[i].start() : words[j].end()]
        if key.isalpha() and written not in self._spellings[key] and not written[0].isupper():
            return False  # a lower-case word is not a name, unless the name is spelled so; "apt38" has digits
        if i != j or not keys[i].isalpha() or not _is_common(keys[i]):
            return True
        near = keys[max(0, i - _CUE_DISTANCE) : i] + keys[j + 1 : j + 1 + _CUE_DISTANCE]
        return written[0].isupper() and any(k in _CUES for k in near)


def _separated(text: str, end: int, start: int) -> bool:
    """Whether the gap between two words is more than a space or a hyphen (a line break, a list marker, a stop)."""
    gap = text[end:start]
    return len(gap) > 3 or "\n" in gap or any(ch in gap for ch in ".,;:|")


def _word_breaks(key: str, spellings: Iterable[str]) -> set[int]:
    """Offsets in `key` where a spelling of the name has a separator, or letters meet digits."""
    breaks = {i for i in range(1, len(key)) if key[i - 1].isdigit() != key[i].isdigit()}
    for spelling in spellings:
        at = 0
        for word in _WORD.findall(spelling):
            at += len(word.casefold())
            breaks.add(at)
    return breaks


class _Spans:
    """Spans merged where they overlap (a domain inside its URL), with a binary-search containment test."""

    def __init__(self, spans: Sequence[tuple[int, int]]) -> None:
        merged: list[tuple[int, int]] = []
        for start, end in sorted(spans):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        self._spans = merged
        self._starts = [s for s, _ in merged]

    def covers(self, start: int, end: int) -> bool:
        i = bisect.bisect_right(self._starts, start) - 1
        return i >= 0 and self._spans[i][1] >= end
