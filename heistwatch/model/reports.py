"""Ingested reports and their findings: every fact tied to the document and the sentence it came from."""

from __future__ import annotations

from dataclasses import dataclass

from heistwatch.model.objects import Indicator, Source


@dataclass(frozen=True)
class Report:
    """A threat report as ingested: identified by the hash of its bytes, so ingesting it again changes nothing."""

    id: str
    sha256: str
    name: str
    title: str
    format: str
    chars: int
    ingested: str
    source: str


@dataclass(frozen=True)
class Finding:
    """One fact found in a report: an indicator, a mention, a named entity or an ATT&CK technique, with its span.

    `role` is "indicator", "mention" (present but not an indicator), "entity" or "technique"; `reason` says why
    it was classed so; `object_ids` are the knowledge-base objects an entity or technique refers to.
    """

    id: str
    report_id: str
    kind: str
    value: str
    role: str
    reason: str
    start: int
    end: int
    sentence_start: int
    sentence_end: int
    object_ids: tuple[str, ...] = ()
    score: float | None = None


@dataclass(frozen=True)
class ReportBatch:
    """Everything one ingested report writes, in one transaction: its source, report row, findings, indicators."""

    source: Source
    report: Report
    findings: tuple[Finding, ...]
    indicators: tuple[Indicator, ...]
