"""An ingested report as a STIX 2.1 bundle: the report, its indicators, and what it names, each with its span.

Every indicator, vulnerability and relationship carries `x_heistwatch_spans`: the document (by SHA-256) and
the character spans and sentences it came from. Relationships are drawn only where the text supports them:
an indicator `indicates`, and an actor or malware `uses` a technique, when they share a sentence; indicators
a sentence leaves unlinked indicate the report's actor when it names exactly one.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from heistwatch.errors import NotFoundError
from heistwatch.kb.store import KnowledgeStore
from heistwatch.model import TLP, Finding, Indicator, KBObject, ObjectType, Report, derive_id
from heistwatch.share.stix import _common, _identity, _indicator_sdo, _marking, _sdo, _timestamp, identity_id

# Which of a name's per-source records stands for it in a bundle: ATT&CK first, then the galaxy, then the rest.
_SOURCE_ORDER = ("mitre-attack", "misp-galaxy")
_SPANS_PER_FACT = 20
_INDICATES = {ObjectType.INTRUSION_SET, ObjectType.CAMPAIGN, ObjectType.MALWARE, ObjectType.TOOL}
_USERS = {ObjectType.INTRUSION_SET, ObjectType.CAMPAIGN, ObjectType.MALWARE}


def report_bundle(
    store: KnowledgeStore, report_id: str, text: str | None = None, *, now: datetime.datetime | None = None
) -> dict[str, Any]:
    """The stored report `report_id` as a bundle; with the document's `text`, spans quote their sentences."""
    report = next((r for r in store.reports() if r.id == report_id), None)
    if report is None:
        raise NotFoundError(f"no ingested report {report_id}")
    stamp = _timestamp(now or datetime.datetime.fromisoformat(report.ingested.replace("Z", "+00:00")))
    findings = store.findings(report_id)
    indicators = {(i.kind, i.value): i for i in store.indicators() if i.source == report.source}
    objects = _representatives(store, findings)

    spans = _Spans(report, text)
    for f in findings:
        spans.add(f)
    out: list[dict[str, Any]] = []
    for indicator in sorted(indicators.values(), key=lambda i: i.id):
        sdo = _indicator_sdo(indicator, stamp)
        sdo["x_heistwatch_spans"] = spans.of(indicator.kind, indicator.value)
        out.append(sdo)
    out += [_vulnerability(f.value, report, stamp, spans) for f in _first_per_value(findings, "cve")]
    out += _relationships(report, findings, indicators, objects, spans, stamp)
    kb_objects = [_sdo(o, stamp) for o in sorted(set(objects.values()), key=lambda o: o.id)]
    refs = sorted({o["id"] for o in out} | {o["id"] for o in kb_objects})
    head = [_report_sdo(report, refs or [identity_id(report.source)], findings, stamp)]
    sources = {report.source} | {o.source for o in objects.values()}
    identities = [_identity(s, stamp) for s in store.sources() if s.key in sources]
    tlps = {TLP.CLEAR} | {o.tlp for o in objects.values()}
    markings = [_marking(t) for t in sorted(tlps, key=list(TLP).index)]
    body = [*markings, *identities, *head, *kb_objects, *out]
    return {"type": "bundle", "id": derive_id("bundle", report.id, stamp), "objects": body}


class _Spans:
    """Where each (kind, value) was written: the document and up to `_SPANS_PER_FACT` spans with sentences."""

    def __init__(self, report: Report, text: str | None) -> None:
        self._report = report
        self._text = text
        self._by_value: defaultdict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)

    def add(self, finding: Finding) -> None:
        spans = self._by_value[(finding.kind, finding.value)]
        if len(spans) < _SPANS_PER_FACT:
            spans.append(self.span(finding))

    def span(self, finding: Finding) -> dict[str, Any]:
        span: dict[str, Any] = {
            "document_sha256": self._report.sha256,
            "start": finding.start,
            "end": finding.end,
            "sentence_start": finding.sentence_start,
            "sentence_end": finding.sentence_end,
        }
        if self._text is not None:
            span["sentence"] = self._text[finding.sentence_start : finding.sentence_end]
        return span

    def of(self, kind: str, value: str) -> list[dict[str, Any]]:
        return self._by_value.get((kind, value), [])


def _representatives(store: KnowledgeStore, findings: Sequence[Finding]) -> dict[str, KBObject]:
    """Finding id -> the one knowledge-base record standing for the entity or technique it names."""
    wanted = {oid for f in findings for oid in f.object_ids}
    by_id = {o.id: o for o in store.objects(ids=wanted)} if wanted else {}
    out: dict[str, KBObject] = {}
    for f in findings:
        candidates = [by_id[i] for i in f.object_ids if i in by_id]
        if candidates:
            out[f.id] = min(candidates, key=_preference)
    return out


def _preference(obj: KBObject) -> tuple[int, str]:
    rank = _SOURCE_ORDER.index(obj.source) if obj.source in _SOURCE_ORDER else len(_SOURCE_ORDER)
    return rank, obj.id


def _first_per_value(findings: Iterable[Finding], kind: str) -> list[Finding]:
    first: dict[str, Finding] = {}
    for f in findings:
        if f.kind == kind:
            first.setdefault(f.value, f)
    return list(first.values())


def _vulnerability(cve: str, report: Report, stamp: str, spans: _Spans) -> dict[str, Any]:
    sdo = _common("vulnerability", derive_id("vulnerability", cve), report.source, stamp, TLP.CLEAR, None)
    sdo.update(name=cve, external_references=[{"source_name": "cve", "external_id": cve}])
    sdo["x_heistwatch_spans"] = spans.of("cve", cve)
    return sdo


def _relationships(
    report: Report,
    findings: Sequence[Finding],
    indicators: dict[tuple[str, str], Indicator],
    objects: dict[str, KBObject],
    spans: _Spans,
    stamp: str,
) -> list[dict[str, Any]]:
    """`indicates` and `uses` between facts sharing a sentence; the sole named actor for the rest."""
    by_sentence: defaultdict[tuple[int, int], list[Finding]] = defaultdict(list)
    for f in findings:
        by_sentence[(f.sentence_start, f.sentence_end)].append(f)
    links: dict[tuple[str, str, str], list[Finding]] = {}
    linked: set[tuple[str, str]] = set()
    for group in by_sentence.values():
        named = [(f, objects[f.id]) for f in group if f.id in objects and f.role == "entity"]
        for f in group:
            if f.role == "indicator" and (f.kind, f.value) in indicators:
                for _, obj in named:
                    if obj.type in _INDICATES:
                        links.setdefault((indicators[(f.kind, f.value)].id, "indicates", obj.id), []).append(f)
                        linked.add((f.kind, f.value))
            if f.role == "technique" and f.id in objects:
                for _, obj in named:
                    if obj.type in _USERS:
                        links.setdefault((obj.id, "uses", objects[f.id].id), []).append(f)
    actors = {o.id for f, o in objects.items() if o.type is ObjectType.INTRUSION_SET}
    if len(actors) == 1:
        (actor,) = actors
        for f in findings:
            key = (f.kind, f.value)
            if f.role == "indicator" and key in indicators and key not in linked:
                links.setdefault((indicators[key].id, "indicates", actor), []).append(f)
    return [
        _relationship(report, source, kind, target, evidence, spans, stamp)
        for (source, kind, target), evidence in sorted(links.items())
    ]


def _relationship(
    report: Report, source: str, kind: str, target: str, evidence: list[Finding], spans: _Spans, stamp: str
) -> dict[str, Any]:
    sro = _common(
        "relationship",
        derive_id("relationship", report.id, source, kind, target),
        report.source,
        stamp,
        TLP.CLEAR,
        None,
    )
    sro.update(relationship_type=kind, source_ref=source, target_ref=target)
    sro["x_heistwatch_spans"] = [spans.span(f) for f in evidence[:_SPANS_PER_FACT]]
    return sro


def _report_sdo(report: Report, refs: list[str], findings: Sequence[Finding], stamp: str) -> dict[str, Any]:
    sdo = _common("report", report.id, report.source, stamp, TLP.CLEAR, None)
    sdo.update(name=report.title, published=stamp, report_types=["threat-report"], object_refs=refs)
    sdo["x_heistwatch_document"] = {
        "name": report.name,
        "sha256": report.sha256,
        "format": report.format,
        "chars": report.chars,
    }
    mentions = [f for f in findings if f.role == "mention"]
    if mentions:
        sdo["x_heistwatch_mentions"] = [
            {"kind": f.kind, "value": f.value, "reason": f.reason, "start": f.start, "end": f.end} for f in mentions
        ]
    return sdo
