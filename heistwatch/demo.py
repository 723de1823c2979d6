"""The end-to-end demo investigation on the embedded store (grows stage by stage).

Today: build the knowledge base from the packaged open data, resolve the case's names across sources, ingest
the incident report written for the demo, hunt its indicators in simulated exchange telemetry (planted among
ordinary traffic, with decoys), attribute the case's evidence (the report's findings and what the
exchange's responders observed), trace the theft on a simulated ledger (ground truth by construction) to the
services that can freeze the coins, and write the resolutions, the findings, the attribution with its
explanation, the freeze requests and two STIX 2.1 bundles (the case's actors and claims; the report), each
checked by stix2-validator.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from stix2validator import ValidationOptions, validate_parsed_json

from heistwatch.attribute.evidence import findings_evidence, read_evidence, sighting_evidence
from heistwatch.attribute.knowledge import Attributor, Levels
from heistwatch.hunt import IndicatorSet, hunt_logs
from heistwatch.hunt.demo_hunts import DemoHunts, hunt_demo_extras
from heistwatch.hunt.telemetry import Planted, generate_telemetry
from heistwatch.ingest.analyze import Analysis, Analyzer
from heistwatch.ingest.text import document_from_bytes
from heistwatch.kb import BuildReport, Resolution, Resolver, SQLiteStore, build_knowledge_base
from heistwatch.kb.seed.attack import attack_version
from heistwatch.model import Sighting
from heistwatch.share.attribution import attribution_dict, render_attribution
from heistwatch.share.misp import event_json, report_event
from heistwatch.share.navigator import overlap_layer
from heistwatch.share.report import build_case_report
from heistwatch.share.report_html import render_report_html
from heistwatch.share.rules import rule_groups, sigma_pack, yara_pack
from heistwatch.share.stix import export_bundle
from heistwatch.share.stix_report import report_bundle
from heistwatch.share.stix_sightings import sightings_bundle
from heistwatch.share.text import render_resolution
from heistwatch.trace import (
    CaseResult,
    TransferStore,
    find_patterns,
    freeze_request_csv,
    freeze_request_json,
    simulate,
    trace_case,
)
from heistwatch.trace.evaluate import Scores, score_case
from heistwatch.trace.simulate import DECIMALS

# The names vendors use for the case's cluster and its relatives (DESIGN.md).
CASE_NAMES = (
    "CryptoCore",
    "CryptoMimic",
    "Dangerous Password",
    "Leery Turtle",
    "SnatchCrypto",
    "BlueNoroff",
    "APT38",
    "Sapphire Sleet",
    "TraderTraitor",
    "AppleJeus",
    "Lazarus Group",
    "Andariel",
)
CASE = "heistwatch demo: hot-wallet theft at a fictional exchange"
CASE_ORGANISATION = "the fictional exchange of the demo"
REPORT_FILE = "incident-report.md"
EVIDENCE_FILE = "evidence.json"
LEDGER_SEED = 20260320  # the simulated theft's seed: the same ledger every run
THEFT_START = 1_773_974_460  # 2026-03-20 02:41 UTC, the first withdrawal in the incident report


@dataclass(frozen=True)
class IngestSummary:
    """What the demo's incident report yielded."""

    title: str
    indicators: dict[str, int]
    mentions: int
    named: list[str]
    techniques: list[str]


@dataclass(frozen=True)
class HuntSummary:
    """The exchange's simulated telemetry hunted for the knowledge base's indicators, against what was planted."""

    lines: int
    sightings: int
    planted: int
    found_exactly: int
    over_reported: list[str]
    missed: list[str]


@dataclass(frozen=True)
class TraceSummary:
    """The simulated theft traced: what was found, and how it compares with the simulator's truth."""

    transfers: int
    alerts: int
    services: list[str]
    seconds: float
    scores: Scores


@dataclass(frozen=True)
class DemoResult:
    """Where the demo wrote its outputs and what it found."""

    out: Path
    build: BuildReport
    files: dict[str, Path]
    disagreements: dict[str, list[str]]
    ingest: IngestSummary
    attribution: Levels
    hunt: HuntSummary
    hunts: DemoHunts
    trace: TraceSummary
    stix_errors: dict[str, list[str]]

    @property
    def stix_valid(self) -> bool:
        """Whether every bundle the demo wrote validates."""
        return not any(self.stix_errors.values())


def run_demo(out: Path) -> DemoResult:
    """Run the investigation into `out` (created if needed)."""
    out.mkdir(parents=True, exist_ok=True)
    build = build_knowledge_base(out / "kb.sqlite")
    store = SQLiteStore(build.path)
    try:
        files: dict[str, Path] = {"knowledge base": build.path}
        errors: dict[str, list[str]] = {}
        resolutions = _resolve_case(store, out, files, errors)
        analysis = _ingest_report(store, out, files, errors)
        hunted, sightings, planted = _hunt_telemetry(store, analysis, out, files, errors)
        extras = hunt_demo_extras(store, out, planted, seed=LEDGER_SEED)
        sightings = (*sightings, *extras.sightings)
        levels = _attribute_case(store, analysis, sightings, out, files)
        _share_case(store, analysis, levels, out, files)
        traced, case = _trace_theft(out, files)
        report = build_case_report(
            CASE,
            store,
            analysis=analysis,
            levels=levels,
            sightings=sightings,
            case=case,
            resolutions=resolutions,
            decimals=DECIMALS,
        )
        files["report (HTML)"] = _write(out / "report.html", render_report_html(report))
        files["report (JSON)"] = _write(out / "report.json", json.dumps(report.to_dict(), indent=1))
        disagreements = {r.query: r.disagreements for r in resolutions}
        return DemoResult(out, build, files, disagreements, _summary(analysis), levels, hunted, extras, traced, errors)
    finally:
        store.close()


def _resolve_case(
    store: SQLiteStore, out: Path, files: dict[str, Path], errors: dict[str, list[str]]
) -> list[Resolution]:
    """Resolve the case's names across sources; write them and the case's bundle."""
    resolver = Resolver(store)
    names = {s.key: s.name for s in store.sources()}
    resolutions = [resolver.resolve(name) for name in CASE_NAMES]
    files["names (text)"] = _write(
        out / "case-names.txt", "\n\n".join(render_resolution(r, names) for r in resolutions) + "\n"
    )
    files["names (JSON)"] = _write(out / "case-names.json", json.dumps([r.to_dict() for r in resolutions], indent=2))
    case_ids = {m["id"] for r in resolutions for m in r.matches}
    case_ids |= {end for c in store.claims(about=case_ids) for end in (c.subject_id, c.object_id)}
    bundle = export_bundle(store, ids=case_ids)
    files["case STIX bundle"] = _write(out / "case.stix.json", json.dumps(bundle, indent=1))
    errors["case STIX bundle"] = _validate(bundle)
    return resolutions


def _ingest_report(store: SQLiteStore, out: Path, files: dict[str, Path], errors: dict[str, list[str]]) -> Analysis:
    """Ingest the packaged incident report; write its findings and its bundle."""
    packaged = resources.files("heistwatch") / "data" / "demo" / REPORT_FILE
    document = document_from_bytes(packaged.read_bytes(), "md", REPORT_FILE)
    analysis = Analyzer(store).analyze(document)
    report = store.import_report(analysis.batch)
    findings = json.dumps(analysis.finding_dicts(), indent=1)
    files["report findings (JSON)"] = _write(out / "report-findings.json", findings)
    bundle = report_bundle(store, report.id, document.text)
    files["report STIX bundle"] = _write(out / "report.stix.json", json.dumps(bundle, indent=1))
    errors["report STIX bundle"] = _validate(bundle)
    return analysis


def _attribute_case(
    store: SQLiteStore, analysis: Analysis, sightings: Sequence[Sighting], out: Path, files: dict[str, Path]
) -> Levels:
    """Attribute the report's findings, the responders' evidence file and the hunt's sightings; write the result."""
    packaged = resources.files("heistwatch") / "data" / "demo" / EVIDENCE_FILE
    with resources.as_file(packaged) as path:
        observed = read_evidence(path, store)
    report = analysis.batch.report
    sighted = sighting_evidence(sightings, store)
    evidence = [*findings_evidence(analysis.batch.findings, store, report), *observed, *sighted]
    attributor = Attributor(store)
    levels = attributor.attribute(evidence, top=5)
    files["attribution (text)"] = _write(out / "attribution.txt", render_attribution(levels))
    files["attribution (JSON)"] = _write(out / "attribution.json", json.dumps(attribution_dict(levels), indent=1))
    layer = overlap_layer(levels, attributor.profiles.profiles, attack_version())
    files["Navigator layer"] = _write(out / "case.navigator.json", json.dumps(layer, indent=1))
    return levels


def _share_case(store: SQLiteStore, analysis: Analysis, levels: Levels, out: Path, files: dict[str, Path]) -> None:
    """Write the case as a MISP event and as YARA and Sigma rule packs for the exchange's own tools."""
    report = analysis.batch.report.id
    event = report_event(store, report, analysis.document.text, attribution=levels)
    files["MISP event"] = _write(out / "case.misp.json", event_json(event))
    groups = rule_groups(store, report=report)
    today = datetime.now(UTC).date()
    files["YARA rules"] = _write(out / "case.rules.yar", yara_pack(groups, date=today).text)
    files["Sigma rules"] = _write(out / "case.rules.sigma.yml", sigma_pack(groups, date=today).text)


def _hunt_telemetry(
    store: SQLiteStore, analysis: Analysis, out: Path, files: dict[str, Path], errors: dict[str, list[str]]
) -> tuple[HuntSummary, tuple[Sighting, ...], Planted]:
    """Plant the report's indicators in simulated logs, hunt them, store the sightings, compare with the truth."""
    planted: dict[str, list[str]] = {}
    for indicator in analysis.batch.indicators:
        if indicator.kind in ("domain", "url", "ipv4", "sha256"):
            planted.setdefault(indicator.kind, []).append(indicator.value)
    logs, truth = generate_telemetry(out / "telemetry", planted, seed=LEDGER_SEED)
    report = hunt_logs(logs, IndicatorSet.from_indicators(store.indicators()), workers=2)
    counts: Counter[str] = Counter()
    for sighting in report.sightings:
        counts[sighting.value] += sighting.count
    store.record_sightings(report.sightings, datetime.now(UTC).isoformat(timespec="seconds"))
    sightings = [{**vars(s)} for s in report.sightings]
    files["telemetry (logs)"] = out / "telemetry"
    files["hunt sightings (JSON)"] = _write(out / "sightings.json", json.dumps(sightings, indent=1))
    bundle = sightings_bundle(store, report.sightings, CASE_ORGANISATION)
    files["hunt sightings (STIX)"] = _write(out / "sightings.stix.json", json.dumps(bundle, indent=1))
    errors["hunt sightings (STIX)"] = _validate(bundle)
    summary = HuntSummary(
        lines=report.lines,
        sightings=len(report.sightings),
        planted=len(truth.hits),
        found_exactly=sum(1 for value, n in truth.hits.items() if counts[value] == n),
        over_reported=sorted(v for v, n in counts.items() if n > truth.hits.get(v, 0)),
        missed=sorted(v for v, n in truth.hits.items() if counts[v] < n),
    )
    return summary, report.sightings, truth


def _trace_theft(out: Path, files: dict[str, Path]) -> tuple[TraceSummary, CaseResult]:
    """Simulate the hot-wallet theft inside honest traffic, trace it (FIFO), write the freeze requests."""
    world = simulate("small", seed=LEDGER_SEED, start=THEFT_START)
    (out / "ledger.duckdb").unlink(missing_ok=True)  # a second run into the same folder starts a new ledger
    ledger = TransferStore(out / "ledger.duckdb")
    try:
        ledger.ingest(world.transfers)
        ledger.add_labels(world.labels)
        ledger.build_indexes()
        started = time.perf_counter()
        case = trace_case(ledger, world.seeds)
        seconds = time.perf_counter() - started
    finally:
        ledger.close()
    files["ledger (DuckDB)"] = out / "ledger.duckdb"
    files["freeze requests (JSON)"] = _write(out / "freeze-requests.json", freeze_request_json(case.alerts, CASE))
    files["freeze requests (CSV)"] = _write(out / "freeze-requests.csv", freeze_request_csv(case.alerts))
    services = [label.address for label in world.labels]
    scores = score_case(world.truth, case.alerts, find_patterns(case.result), services)
    summary = TraceSummary(
        transfers=len(world.transfers),
        alerts=len(case.alerts),
        services=sorted({a.service for a in case.alerts}),
        seconds=seconds,
        scores=scores,
    )
    return summary, case


def _summary(analysis: Analysis) -> IngestSummary:
    findings = analysis.batch.findings
    return IngestSummary(
        title=analysis.batch.report.title,
        indicators=dict(sorted(Counter(f.kind for f in findings if f.role == "indicator").items())),
        mentions=sum(f.role == "mention" for f in findings),
        named=sorted({f.value for f in findings if f.role == "entity"}),
        techniques=sorted({f.value for f in findings if f.role == "technique"}),
    )


def _write(path: Path, text: str) -> Path:
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
    return path


def _validate(bundle: dict[str, Any]) -> list[str]:
    result = validate_parsed_json(bundle, ValidationOptions(version="2.1"))
    return [str(e) for e in result.errors]
