"""Every hunt's findings as knowledge-base records: sightings of indicators, and the indicators a hunt brings.

Log, file-hash and mail hits are sightings of indicators already in the knowledge base. The other hunts bring
their own indicator with each finding: a YARA or Sigma rule that matched becomes a "yara" / "sigma" indicator (its
text the pattern, its author and file in the description, as the Detection Rule License asks) under the source
"hunt-rules"; the nearest known sample of a TLSH family match becomes a "tlsh" indicator under "hunt-families";
a lookalike domain becomes a domain indicator under "lookalike-hunt". Their ids come from (source, kind, value), so
storing them again only updates them, and nothing another source stored is touched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from heistwatch.errors import InputError
from heistwatch.hunt.domains import DomainReport
from heistwatch.hunt.files import FileFinding, FileHuntReport
from heistwatch.hunt.lures import MailHuntReport, mail_sightings
from heistwatch.hunt.sigma import RuleInfo, SigmaMatch, SigmaReport
from heistwatch.hunt.yara_scan import RuleMatch, rule_files
from heistwatch.kb.sqlite import SQLiteStore
from heistwatch.kb.store import KnowledgeStore
from heistwatch.model import ImportBatch, Indicator, Sighting, Source, make_indicator
from heistwatch.share.stix_sightings import sighted_indicators, sightings_bundle

RULE_SOURCE = Source(key="hunt-rules", name="Detection rules the exchange hunted with")
FAMILY_SOURCE = Source(key="hunt-families", name="Known samples of the exchange's TLSH family index")
LOOKALIKE_SOURCE = Source(key="lookalike-hunt", name="Lookalike domains of the exchange's brands, found by hunting")
_RULE_HEAD = re.compile(r"^[ \t]*(?:(?:private|global)\s+)*rule\s+([A-Za-z_][A-Za-z0-9_]*)\b", re.MULTILINE)
_IMPORT = re.compile(r'^[ \t]*import\s+"[^"\n]+"[ \t]*$', re.MULTILINE)
_TIME_KEYS = ("ts", "timestamp", "@timestamp", "time", "UtcTime", "EventTime")


@dataclass(frozen=True)
class HuntFindings:
    """What one hunt adds to the knowledge base: its own indicators (with their sources) and its sightings."""

    sources: tuple[Source, ...] = ()
    indicators: tuple[Indicator, ...] = ()
    sightings: tuple[Sighting, ...] = ()


@dataclass(frozen=True)
class RuleText:
    """One YARA rule's source text (with its file's imports, so it compiles alone) and the file it is in."""

    text: str
    file: str


def record_findings(store: KnowledgeStore, findings: HuntFindings, recorded: str) -> int:
    """Store the hunt's indicators, then its sightings, each in one transaction; returns the new sightings' count.

    The indicators go first: a failure after them leaves rules and lookalikes stored without sightings (a state
    the next hunt completes), never a sighting of an indicator that is not there.
    """
    if findings.indicators:
        store.import_batch(ImportBatch(sources=findings.sources, indicators=findings.indicators))
    return store.record_sightings(findings.sightings, recorded)


def _merge(parts: Iterable[HuntFindings]) -> HuntFindings:
    items = list(parts)
    return HuntFindings(
        sources=tuple(dict.fromkeys(s for f in items for s in f.sources)),
        indicators=tuple({i.id: i for f in items for i in f.indicators}.values()),
        sightings=tuple(s for f in items for s in f.sightings),
    )


# -- files ------------------------------------------------------------------------------------------------


def yara_rule_texts(paths: Iterable[Path]) -> dict[tuple[str, str], RuleText]:
    """(namespace, rule name) -> the rule's text, for every rule in the files `compile_rules` reads from `paths`."""
    out: dict[tuple[str, str], RuleText] = {}
    used: set[str] = set()
    for number, path in enumerate(rule_files(paths)):
        namespace = path.stem if path.stem not in used else f"{path.stem}_{number}"  # as compile_rules names them
        used.add(namespace)
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(str(path), f"cannot read the rule file: {exc}") from None
        for name, text in split_yara_rules(source).items():
            out[(namespace, name)] = RuleText(text, str(path))
    return out


def split_yara_rules(source: str) -> dict[str, str]:
    """Each rule of a YARA file by name, as written, preceded by the file's `import` lines."""
    imports = "".join(m.group(0).strip() + "\n" for m in _IMPORT.finditer(source))
    return {
        m.group(1): imports + source[m.start() : _rule_end(source, m.end())].strip() + "\n"
        for m in _RULE_HEAD.finditer(source)
    }


def _rule_end(text: str, start: int) -> int:
    """The offset just past the brace that closes the rule body opened after `start` (strings, comments skipped)."""
    depth, pos = 0, start
    while pos < len(text):
        char = text[pos]
        if char == '"':
            pos += 1
            while pos < len(text) and text[pos] != '"':
                pos += 2 if text[pos] == "\\" else 1
        elif text.startswith("//", pos):
            pos = text.find("\n", pos) if "\n" in text[pos:] else len(text)
        elif text.startswith("/*", pos):
            end = text.find("*/", pos + 2)
            pos = len(text) if end < 0 else end + 1
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return pos + 1
        pos += 1
    return len(text)


def yara_indicator(match: RuleMatch, rule: RuleText) -> Indicator:
    """A matched YARA rule as a knowledge-base indicator: value `namespace:rule`, the rule's text as its pattern."""
    about = match.meta_value("description")
    reference = match.meta_value("reference")
    return make_indicator(
        "yara",
        f"{match.namespace}:{match.rule}",
        source=RULE_SOURCE.key,
        rule_text=rule.text,
        reference=str(reference) if reference else None,
        description=f"YARA rule {match.rule} by {match.author} ({rule.file})" + (f": {about}" if about else ""),
    )


def file_findings(report: FileHuntReport, rules: Mapping[tuple[str, str], RuleText]) -> HuntFindings:
    """Sightings of hash indicators, of the YARA rules that matched and of the nearest samples of TLSH families.

    `rules` comes from `yara_rule_texts` over the rule paths the hunt compiled; InputError when a matched rule
    is not among them.
    """
    own_tlsh = {s.file: s.tlsh for s in report.scanned}
    parts = [_file_finding(f, rules, own_tlsh.get(f.file)) for f in report.findings]
    return _merge(parts)


def _file_finding(
    finding: FileFinding, rules: Mapping[tuple[str, str], RuleText], own_tlsh: str | None
) -> HuntFindings:
    if finding.sighting is not None:
        return HuntFindings(sightings=(replace(finding.sighting, hunt="files"),))
    if finding.rule is not None:
        match = finding.rule
        text = rules.get((match.namespace, match.rule))
        if text is None:
            raise InputError(f"{match.namespace}:{match.rule}", "matched, but no rule file given holds its text")
        indicator = yara_indicator(match, text)
        raw = {"tags": list(match.tags), "meta": [list(pair) for pair in match.meta]}
        seen = _sighting(indicator, finding.sha256, finding.file, 0, "yara", json.dumps(raw), hunt="files")
        return HuntFindings((RULE_SOURCE,), (indicator,), (seen,))
    neighbour = finding.neighbour
    if neighbour is None or own_tlsh is None:
        return HuntFindings()
    sample = f" (SHA-256 {neighbour.sha256})" if neighbour.sha256 else ""
    indicator = make_indicator(
        "tlsh", neighbour.tlsh, source=FAMILY_SOURCE.key, description=f"TLSH of a {neighbour.family} sample{sample}"
    )
    raw = {
        "family": neighbour.family,
        "distance": neighbour.distance,
        "threshold": neighbour.threshold,
        "sha256": neighbour.sha256,
    }
    seen = _sighting(indicator, own_tlsh, finding.file, 0, "tlsh", json.dumps(raw), hunt="files")
    return HuntFindings((FAMILY_SOURCE,), (indicator,), (seen,))


def _sighting(indicator: Indicator, observed: str, file: str, line: int, field: str, raw: str, hunt: str) -> Sighting:
    return Sighting(indicator.id, indicator.kind, indicator.value, observed, file, line, field, raw, hunt=hunt)


# -- mail, domains ----------------------------------------------------------------------------------------


def mail_findings(report: MailHuntReport) -> HuntFindings:
    """Sightings of the knowledge base's indicators in mail (lure scores stay in the hunt's own output)."""
    return HuntFindings(sightings=tuple(mail_sightings(report)))


def domain_findings(report: DomainReport) -> HuntFindings:
    """Each lookalike as a domain indicator (technique, score and brand described) and its sighting."""
    indicators: dict[str, Indicator] = {}
    sightings: list[Sighting] = []
    for s in report.sightings:
        look = s.lookalike
        indicator = make_indicator(
            "domain",
            look.domain,
            source=LOOKALIKE_SOURCE.key,
            confidence=round(look.score * 100),
            description=(
                f"{look.technique} lookalike of {look.target} ({look.role}), score {look.score:.2f}: {look.detail}"
            ),
        )
        indicators[indicator.id] = indicator
        sightings.append(
            Sighting(
                indicator.id,
                "domain",
                indicator.value,
                s.host,
                s.file,
                s.line,
                s.field,
                " ".join(s.hosts),
                s.first_seen,
                s.last_seen,
                s.count,
                hunt="domains",
            )
        )
    return HuntFindings((LOOKALIKE_SOURCE,) if indicators else (), tuple(indicators.values()), tuple(sightings))


# -- sigma ------------------------------------------------------------------------------------------------


def sigma_rule_text(info: RuleInfo) -> str:
    """The YAML document of one rule, from its first line to the next document marker."""
    try:
        lines = Path(info.file).read_text(encoding="utf-8").splitlines(keepends=True)
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(info.file, f"cannot read the rule file: {exc}") from None
    out: list[str] = []
    for line in lines[max(info.line - 1, 0) :]:
        if line.rstrip() == "---" and out:
            break
        out.append(line)
    return "".join(out)


def sigma_indicator(info: RuleInfo, text: str) -> Indicator:
    """A matched Sigma rule as a knowledge-base indicator: value its id, its YAML as the pattern."""
    return make_indicator(
        "sigma",
        info.id or f"{Path(info.file).name}:{info.line}",
        source=RULE_SOURCE.key,
        rule_text=text,
        description=f"Sigma rule {info.title!r} by {info.author or 'unknown author'} ({info.file}:{info.line}),"
        f" level {info.level or 'unset'}",
    )


def sigma_findings(report: SigmaReport) -> HuntFindings:
    """Each matched rule as a "sigma" indicator and each matched record as its sighting (file:line, the record)."""
    indicators: dict[RuleInfo, Indicator] = {}
    sightings = []
    for match in report.matches:
        if match.rule not in indicators:
            indicators[match.rule] = sigma_indicator(match.rule, sigma_rule_text(match.rule))
        sightings.append(_sigma_sighting(indicators[match.rule], match))
    unique = tuple({i.id: i for i in indicators.values()}.values())
    return HuntFindings((RULE_SOURCE,) if unique else (), unique, tuple(sightings))


def _sigma_sighting(indicator: Indicator, match: SigmaMatch) -> Sighting:
    seen = _record_time(match.record)
    return Sighting(
        indicator.id,
        "sigma",
        indicator.value,
        match.rule.title,
        match.file,
        match.line,
        "sigma",
        json.dumps(match.record, ensure_ascii=False, default=str),
        seen,
        seen,
        hunt="sigma",
    )


def _record_time(record: Any) -> str | None:
    if not isinstance(record, dict):
        return None
    return next((str(record[k]) for k in _TIME_KEYS if isinstance(record.get(k), str | int | float)), None)


def findings_bundle(store: KnowledgeStore, findings: HuntFindings, organisation: str) -> dict[str, Any]:
    """The sightings as a STIX 2.1 bundle with their indicators, the hunt's own ones whether stored or not."""
    scratch = SQLiteStore(":memory:")
    try:
        own = {i.id for i in findings.indicators}
        known = tuple(sighted_indicators(store, [s for s in findings.sightings if s.indicator_id not in own]))
        scratch.import_batch(
            ImportBatch(
                sources=tuple({s.key: s for s in (*store.sources(), *findings.sources)}.values()),
                indicators=(*known, *findings.indicators),
            )
        )
        return sightings_bundle(scratch, findings.sightings, organisation)
    finally:
        scratch.close()
