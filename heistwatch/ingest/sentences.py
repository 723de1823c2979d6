"""Split report text into sentence spans.

Rule-based and linear in the text's length: blank lines end a paragraph; bullet lines, numbered items,
headings, quotes and table rows are units of their own; inside a unit a sentence ends at `.`, `!` or `?`
followed by whitespace and a word that can start a sentence. Dots inside tokens (`evil.com`, `Quiz1.exe`,
`1.2.3`) are never boundaries, and abbreviations such as "e.g." or "Fig." do not end a sentence.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = ["split_sentences"]

Span = tuple[int, int]

_LINE = re.compile(r"[^\n]*\n?")
# Bullets (-, *, +, the Unicode bullets and the en dash), numbered items, table rows, headings, quotes.
_BLOCK_START = re.compile(r"[ \t]*(?:[-*+\u2022\u25aa\u25e6\u2023\u2013]\s|\d{1,3}[.)]\s|[a-z]\)\s|\||#{1,6}\s|>)")
_TABLE_ROW = re.compile(r"[ \t]*\|")
# A token (to tell abbreviations apart; inner dots only) and the sentence-final punctuation after it; possessive
# quantifiers keep runs of dots from making the scan quadratic.
_END = re.compile(
    r"(?<![\w.&'-])(?P<token>(?:[\w&'-]|\.(?=[\w&'-]))*+)(?P<stop>[.!?\u2026]++)[\"')\]\u00bb\u201d\u2019]*+(?=\s)"
)
_NEXT_WORD = re.compile(r"\s+(\S)")
_INITIALS = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]$")
# Never end a sentence after these, whatever follows ("e.g. PowerShell", "Fig. 3", "No. 5").
_ABBREVIATIONS = frozenset(
    [
        "e.g",
        "eg",
        "i.e",
        "ie",
        "fig",
        "figs",
        "cf",
        "vs",
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "no",
        "nos",
        "approx",
        "incl",
        "ca",
        "al",
        "eq",
        "ref",
        "refs",
        "sec",
        "vol",
        "pp",
        "p",
        "ver",
        "v",
    ]
)


def split_sentences(text: str) -> list[Span]:
    """Character spans `(start, end)` of the sentences in `text`, in order, trimmed of surrounding whitespace."""
    spans: list[Span] = []
    for start, end, splittable in _units(text):
        pieces = _split_unit(text, start, end) if splittable else [(start, end)]
        spans.extend(span for span in (_trim(text, s, e) for s, e in pieces) if span is not None)
    return spans


def _units(text: str) -> Iterator[tuple[int, int, bool]]:
    """Paragraphs and one-line units (bullets, headings, table rows) as `(start, end, splittable)`."""
    start = end = -1
    for match in _LINE.finditer(text):
        line_start, line_end = match.span()
        if line_start == line_end:
            break
        line = match.group()
        in_bullet = start >= 0 and _BLOCK_START.match(text, start) is not None
        if not line.strip() or _BLOCK_START.match(line) or (in_bullet and line[:1] not in " \t"):
            if start >= 0:
                yield start, end, True
            start = end = -1
            if _TABLE_ROW.match(line):
                yield line_start, line_end, False
                continue
            if not line.strip():
                continue
        if start < 0:
            start = line_start
        end = line_end
    if start >= 0:
        yield start, end, True


def _split_unit(text: str, start: int, end: int) -> list[Span]:
    """Sentence pieces of one paragraph or bullet."""
    pieces: list[Span] = []
    for match in _END.finditer(text, start, end):
        if _is_boundary(text, match, end):
            pieces.append((start, match.end()))
            start = match.end()
    pieces.append((start, end))
    return pieces


def _is_boundary(text: str, match: re.Match[str], end: int) -> bool:
    """Whether sentence-final punctuation really ends a sentence (not an abbreviation, nor before lower case)."""
    following = _NEXT_WORD.match(text, match.end(), end)
    if following is None or following.group(1).islower():
        return False
    if match.group("stop") != ".":
        return True
    word = match.group("token").lower()
    return not (word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()) or _INITIALS.match(word))


def _trim(text: str, start: int, end: int) -> Span | None:
    """The span without its leading and trailing whitespace; None when nothing is left."""
    piece = text[start:end]
    stripped = piece.strip()
    if not stripped:
        return None
    start += len(piece) - len(piece.lstrip())
    return start, start + len(stripped)
