"""Sentence splitting: abbreviations, dotted tokens, bullets, tables, paragraphs; spans are sound for any input."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from heistwatch.ingest.sentences import split_sentences


def _sentences(text: str) -> list[str]:
    return [text[start:end] for start, end in split_sentences(text)]


def test_splits_plain_sentences() -> None:
    assert _sentences("First one. Second one! Third? Fourth") == ["First one.", "Second one!", "Third?", "Fourth"]


def test_abbreviations_do_not_end_sentences() -> None:
    text = "Tools, e.g. PowerShell, i.e. Windows ones, see Fig. 3 and No. 5 in the U.S. Treasury note. Next."
    assert _sentences(text) == [text[:-6], "Next."]


def test_dotted_tokens_do_not_end_sentences() -> None:
    text = "It fetched evil.com/a.ps1 and ran Quiz1.exe v1.2.3 from 10.0.0.1. Then it slept."
    assert _sentences(text) == ["It fetched evil.com/a.ps1 and ran Quiz1.exe v1.2.3 from 10.0.0.1.", "Then it slept."]


def test_lower_case_continuation_is_not_a_boundary() -> None:
    assert _sentences("Files, etc. are copied. Done.") == ["Files, etc. are copied.", "Done."]


def test_sentences_cross_line_breaks_but_not_blank_lines() -> None:
    text = "The loader\nruns at boot.\n\nNew paragraph without a stop\n\nLast"
    assert _sentences(text) == ["The loader\nruns at boot.", "New paragraph without a stop", "Last"]


def test_bullets_headings_and_table_rows_are_units() -> None:
    text = (
        "# Heading\nIntro text\n- first item\n  wrapped on.\n- second. Two parts.\n| a. B | c |\n|---|---|\n1. numbered"
    )
    assert _sentences(text) == [
        "# Heading",
        "Intro text",
        "- first item\n  wrapped on.",
        "- second.",
        "Two parts.",
        "| a. B | c |",
        "|---|---|",
        "1. numbered",
    ]


def test_empty_and_blank_text() -> None:
    assert split_sentences("") == []
    assert split_sentences(" \n\n\t ") == []


def test_large_text_splits_every_sentence() -> None:
    text = "The actor used e.g. PowerShell to fetch evil.com/x.ps1. It ran!\n- bullet\n| row |\n\n" * 60_000
    assert len(split_sentences(text)) == 4 * 60_000


@given(st.text(alphabet=st.sampled_from(list("ab .!?\n\t-|#e.g1()\"'")) | st.characters(), max_size=300))
def test_spans_are_ordered_disjoint_trimmed_and_in_bounds(text: str) -> None:
    previous_end = 0
    for start, end in split_sentences(text):
        assert previous_end <= start < end <= len(text)
        assert not text[start].isspace() and not text[end - 1].isspace()
        previous_end = end
