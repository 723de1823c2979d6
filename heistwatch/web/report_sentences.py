"""The sentences of a report's findings, recovered from the knowledge base, which keeps no report text.

Ingest stores each indicator with the first sentence that gives it as its description. That sentence is the
text of the span of the first finding of that value, and every other finding in the same span (an actor named,
a technique found) shares it. Findings in sentences that gave no new indicator have no text to show.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from heistwatch.model import Finding, Indicator

Span = tuple[int, int]


def finding_sentences(findings: Iterable[Finding], indicators: Mapping[tuple[str, str], Indicator]) -> dict[str, str]:
    """Finding id -> its sentence, for those the report's own indicators (by (kind, value)) give a sentence for."""
    ordered = sorted(findings, key=lambda f: (f.start, f.end))
    first: dict[tuple[str, str], Span] = {}
    for f in ordered:
        if f.role == "indicator":
            first.setdefault((f.kind, f.value), (f.sentence_start, f.sentence_end))
    texts: dict[Span, str] = {}
    for key, span in first.items():
        indicator = indicators.get(key)
        if indicator is not None and indicator.description and span not in texts:
            texts[span] = " ".join(indicator.description.split())
    return {
        f.id: texts[(f.sentence_start, f.sentence_end)] for f in ordered if (f.sentence_start, f.sentence_end) in texts
    }
