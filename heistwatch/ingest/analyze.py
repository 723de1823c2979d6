"""One report in, its findings out: indicators, mentions, named entities and ATT&CK techniques, each on its sentence.

The analyzer is built once per run from the knowledge base (name dictionary, ATT&CK technique ids) and the
technique tagger, then applied to each document; storing is the caller's single `import_report` call, so a
document that fails leaves nothing behind.
"""

from __future__ import annotations

import bisect
import datetime
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heistwatch.errors import InputError
from heistwatch.ingest.entities import EntityMatcher, EntityMention
from heistwatch.ingest.extract import Found, extract_indicators
from heistwatch.ingest.sentences import split_sentences
from heistwatch.ingest.techniques import TechniqueHit, TechniqueTagger
from heistwatch.ingest.text import FORMATS, Document, extract_text
from heistwatch.kb.store import KnowledgeStore
from heistwatch.model import Finding, Indicator, ObjectType, Report, ReportBatch, Source, derive_id, make_indicator
from heistwatch.model.indicators import KINDS as STORED_KINDS

TITLE_CHARS = 160
NEGATED = "negated"  # marks a name the sentence denies ("no overlap with AppleJeus"): not evidence for it
_NEGATION = re.compile(r"\b(?:not|no|never|without|neither|nor|unrelated|rule[sd]? out)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Analysis:
    """A document and what it yields for the knowledge base."""

    document: Document
    batch: ReportBatch

    def sentence(self, finding: Finding) -> str:
        """The sentence a finding sits in."""
        return self.document.text[finding.sentence_start : finding.sentence_end]

    def finding_dicts(self) -> list[dict[str, Any]]:
        """Every finding as plain JSON-ready data, with its sentence."""
        return [
            {**vars(f), "object_ids": list(f.object_ids), "sentence": self.sentence(f)} for f in self.batch.findings
        ]


class Analyzer:
    """Turns documents into report batches using the knowledge base's names and ATT&CK techniques."""

    def __init__(self, store: KnowledgeStore, tagger: TechniqueTagger | None = None) -> None:
        """Load the name dictionary and technique ids from `store`; the tagger defaults to the packaged model."""
        self.matcher = EntityMatcher(store.names())
        self.tagger = tagger or TechniqueTagger.load()
        self.techniques: dict[str, list[str]] = {}
        for obj in store.objects(type=ObjectType.ATTACK_PATTERN):
            if obj.external_id:
                self.techniques.setdefault(obj.external_id, []).append(obj.id)

    def analyze(self, document: Document, *, now: datetime.datetime | None = None) -> Analysis:
        """Every finding of one document, as the batch that stores it."""
        moment = now or datetime.datetime.now(datetime.UTC)
        sentences = _Sentences(split_sentences(document.text))
        report, source = _report(document, moment)
        found = extract_indicators(document)
        entities = self.matcher.find(document.text, exclude=[(f.start, f.end) for f in found])
        hits = self.tagger.tag(document.text, sentences.spans)
        findings = [
            *(_indicator_finding(report, f, sentences) for f in found if f.kind != "attack_technique"),
            *(_entity_finding(report, e, sentences, document.text) for e in entities),
            *(self._technique_finding(report, h, sentences) for h in _techniques(found, hits)),
        ]
        findings.sort(key=lambda f: (f.start, f.end, f.kind, f.value))
        indicators = _indicators(found, source.key, document, sentences)
        return Analysis(document, ReportBatch(source, report, tuple(_unique(findings)), indicators))

    def _technique_finding(self, report: Report, hit: TechniqueHit, sentences: _Sentences) -> Finding:
        return _finding(
            report,
            "attack-pattern",
            hit.technique_id,
            "technique",
            f"{hit.via}:{hit.name}",
            hit.start,
            hit.end,
            sentences,
            tuple(self.techniques.get(hit.technique_id, ())),
            round(hit.score, 4),
        )


class _Sentences:
    """Sentence spans with a lookup from an offset to the sentence around it."""

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        self.spans = spans
        self._starts = [s for s, _ in spans]

    def around(self, start: int, end: int) -> tuple[int, int]:
        """The sentence holding [start, end), or the span itself where it lies between sentences."""
        i = bisect.bisect_right(self._starts, start) - 1
        if i >= 0 and self.spans[i][1] >= end:
            return self.spans[i]
        return start, end


def _report(document: Document, moment: datetime.datetime) -> tuple[Report, Source]:
    title = _title(document)
    source = Source(key=f"report-{document.sha256[:16]}", name=title, url=None)
    report = Report(
        id=derive_id("report", document.sha256),
        sha256=document.sha256,
        name=document.name,
        title=title,
        format=document.format,
        chars=len(document.text),
        ingested=moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        source=source.key,
    )
    return report, source


def _title(document: Document) -> str:
    """The first non-empty line without markup, or the file name."""
    for line in document.text.splitlines():
        text = line.strip().lstrip("#=*> ").strip()
        if len(text) >= 3:
            return text[:TITLE_CHARS]
    return Path(document.name).name


def _finding(
    report: Report,
    kind: str,
    value: str,
    role: str,
    reason: str,
    start: int,
    end: int,
    sentences: _Sentences,
    object_ids: tuple[str, ...] = (),
    score: float | None = None,
) -> Finding:
    s_start, s_end = sentences.around(start, end)
    return Finding(
        id=derive_id("finding", report.sha256, kind, value, str(start)),
        report_id=report.id,
        kind=kind,
        value=value,
        role=role,
        reason=reason,
        start=start,
        end=end,
        sentence_start=s_start,
        sentence_end=s_end,
        object_ids=object_ids,
        score=score,
    )


def _indicator_finding(report: Report, found: Found, sentences: _Sentences) -> Finding:
    return _finding(report, found.kind, found.value, found.role, found.reason, found.start, found.end, sentences)


def _entity_finding(report: Report, mention: EntityMention, sentences: _Sentences, text: str) -> Finding:
    sources = sorted({e.source for e in mention.entries})
    sentence_start, _ = sentences.around(mention.start, mention.end)
    negated = _NEGATION.search(text, sentence_start, mention.start) is not None
    return _finding(
        report,
        mention.types[0].value,
        mention.name,
        "entity",
        "name:" + ",".join(sources) + (f";{NEGATED}" if negated else ""),
        mention.start,
        mention.end,
        sentences,
        mention.object_ids,
    )


def _techniques(found: Sequence[Found], hits: Sequence[TechniqueHit]) -> list[TechniqueHit]:
    """The tagger's hits plus explicit ids the extractor found that the tagger did not."""
    seen = {(h.technique_id, h.start) for h in hits}
    explicit = [
        TechniqueHit(f.value, "", f.start, f.end, 1.0, "id")
        for f in found
        if f.kind == "attack_technique" and (f.value, f.start) not in seen
    ]
    return [*hits, *explicit]


def _indicators(
    found: Sequence[Found], source: str, document: Document, sentences: _Sentences
) -> tuple[Indicator, ...]:
    """Indicators to keep in the knowledge base (one per value), described by the first sentence naming them."""
    out: dict[str, Indicator] = {}
    for f in found:
        if f.role != "indicator" or f.kind not in STORED_KINDS:
            continue
        start, end = sentences.around(f.start, f.end)
        try:
            indicator = make_indicator(f.kind, f.value, source=source, description=document.text[start:end][:500])
        except ValueError:
            continue  # the extractor's spelling is not one the store can pattern-match (kept as a finding)
        out.setdefault(indicator.id, indicator)
    return tuple(out.values())


def _unique(findings: Iterable[Finding]) -> Iterator[Finding]:
    seen: set[str] = set()
    for finding in findings:
        if finding.id not in seen:
            seen.add(finding.id)
            yield finding


def document_paths(paths: Iterable[Path]) -> Iterator[Path]:
    """The files named, and the report files (known suffixes) under the folders named, in sorted order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FORMATS)
        else:
            yield path


@dataclass(frozen=True)
class Outcome:
    """One input's result: the stored report and its analysis, or the error that stopped it."""

    path: str
    analysis: Analysis | None = None
    report: Report | None = None
    error: InputError | None = None


def ingest_documents(
    documents: Iterable[Path | Document], store: KnowledgeStore, analyzer: Analyzer, *, now: datetime.datetime | None
) -> Iterator[Outcome]:
    """Analyze and store each document in its own transaction; a bad one yields its error and the rest go on."""
    for item in documents:
        name = str(item) if isinstance(item, Path) else item.name
        try:
            document = extract_text(item) if isinstance(item, Path) else item
            analysis = analyzer.analyze(document, now=now)
        except InputError as err:
            yield Outcome(name, error=err)
            continue
        yield Outcome(name, analysis, store.import_report(analysis.batch))
