"""The investigation report as one document: kill-chain timeline, attribution, alias claims, hunt findings, fund flow.

The same plain data feeds `--json`, the HTML page (`report_html.py`) and the API. Amounts stay integers in base
units and leave `to_dict()` as decimal strings, like the freeze requests. Times are UTC, ISO 8601; a report time
written without a zone is read as UTC.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from heistwatch.attribute.knowledge import Levels
from heistwatch.attribute.model import Candidate, Contribution
from heistwatch.ingest.analyze import Analysis
from heistwatch.ingest.sentences import split_sentences
from heistwatch.kb.resolve import Resolution
from heistwatch.kb.store import KnowledgeStore
from heistwatch.model import Finding, ObjectType, Sighting
from heistwatch.share.attribution import item_name
from heistwatch.trace.case import CaseResult
from heistwatch.trace.ledger import Transfer
from heistwatch.trace.patterns import MIXER_CATEGORIES, find_patterns
from heistwatch.trace.store import Label
from heistwatch.trace.taint import SWAP_CATEGORIES, TraceResult

REPORTED = "Reported events"
HUNT = "Hunt: sightings"
THEFT = "Trace: theft"
STAGES = ("swap (DEX)", "fan-out", "peel chain")  # laundering stages the trace detects, each on its own lane
MIXING = "Trace: mixers and bridges"
CASH_OUT = "Trace: cash-out"
PASS_THROUGH = MIXER_CATEGORIES | {"bridge"}  # services the trace cannot follow through yet: not a cash-out
# Decimals of well-known assets, by (chain, asset); others are shown in base units unless the caller says.
KNOWN_DECIMALS: Mapping[tuple[str, str], int] = {
    ("btc", "BTC"): 8,
    ("eth", "ETH"): 18,
    ("eth", "USDT"): 6,
    ("eth", "USDC"): 6,
    ("eth", "DAI"): 18,
    ("eth", "stETH"): 18,
}
_TIERS = {"id": 0, "model": 1, "model-possible": 2}
_TEXT = 240
_SHOWN_DIGITS = 6
_DATE = re.compile(
    r"(?<![\d-])(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}(?::\d{2})?))?"
    r"(?:\s*\(?\s*(?:UTC|GMT)(?:\s*([+-])(\d{1,2})(?::?(\d{2}))?)?\s*\)?|Z)?"
)
Patterns = dict[str, set[str]]  # find_patterns: pattern name -> transaction ids


@dataclass(frozen=True)
class TimelineEvent:
    """One moment (or span, with `end`) of the case on one lane; `where` points at the evidence."""

    start: str
    lane: str
    stage: str
    title: str
    detail: str = ""
    end: str | None = None
    where: str = ""


@dataclass(frozen=True)
class TechniqueSeen:
    """A technique the report names, under one of its tactics, with how it was found and the sentence."""

    tactic: str
    technique_id: str
    name: str
    tier: str
    sentence: str


@dataclass(frozen=True)
class Timeline:
    """Events in time order on kill-chain lanes (listed in order), and every technique of the report by tactic."""

    lanes: tuple[str, ...]
    events: tuple[TimelineEvent, ...]
    techniques: tuple[TechniqueSeen, ...]

    @property
    def span(self) -> tuple[str, str] | None:
        """The first and the last moment on the timeline (a span's end counts)."""
        if not self.events:
            return None
        return self.events[0].start, max(e.end or e.start for e in self.events)


@dataclass(frozen=True)
class Weighed:
    """One evidence item's share of a candidate's log-likelihood ratio."""

    item: str
    name: str
    weight: float


@dataclass(frozen=True)
class CandidateView:
    """A ranked candidate with its ICD 203 words and, for the leaders, the evidence for and against."""

    actor_id: str
    name: str
    probability: float
    words: str
    log_lr: float
    explained: bool
    raises: tuple[Weighed, ...]
    lowers: tuple[Weighed, ...]
    expected_not_seen: tuple[Weighed, ...]
    same_origin: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class AttributionView:
    """The attribution: candidates, unknown-actor share, analytic confidence, and group/umbrella/country levels."""

    abstained: bool
    reason: str | None
    confidence: str
    unknown_probability: float
    candidates: tuple[CandidateView, ...]
    groups: dict[str, float]
    umbrellas: dict[str, float]
    countries: dict[str, float]
    evidence: int
    ignored: tuple[str, ...]


@dataclass(frozen=True)
class ClaimRow:
    """What one source says: a listing or a claim, with likelihood, date and reference where given."""

    subject: str
    relation: str
    object: str
    likelihood: str | None
    said: str | None
    date: str | None
    reference: str | None
    title: str | None
    note: str | None


@dataclass(frozen=True)
class NameClaims:
    """Everything the sources say about one of the case's names, per source, and where they disagree."""

    name: str
    by_source: dict[str, tuple[ClaimRow, ...]]
    group: dict[str, list[str]]
    umbrella: dict[str, list[str]]
    country: dict[str, list[str]]
    disagreements: tuple[str, ...]


@dataclass(frozen=True)
class HuntRow:
    """One sighting: the indicator, where it was seen (file:line) and the value matched there."""

    kind: str
    value: str
    observed: str
    location: str
    field: str
    count: int
    first_seen: str | None
    last_seen: str | None
    hunt: str
    raw: str


@dataclass(frozen=True)
class FlowRoute:
    """Tainted value arriving at one service in one asset along one sequence of laundering stages, per policy."""

    policy: str
    source: str
    stages: tuple[str, ...]
    service: str
    category: str
    amount: int


@dataclass(frozen=True)
class PolicyTotals:
    """Where one policy's taint in one asset went: seeded, arrived at services, still held, fees, dropped, stopped."""

    policy: str
    seeded: int
    arrived: int
    held: int
    fees: int
    dropped: int
    stopped: int


@dataclass(frozen=True)
class AssetFlow:
    """The routes and totals of one asset (amounts of different assets are never added)."""

    chain: str
    asset: str
    decimals: int | None
    routes: tuple[FlowRoute, ...]
    totals: tuple[PolicyTotals, ...]


@dataclass(frozen=True)
class FreezeRow:
    """One service address to ask for a freeze: amounts per policy, first arrival, first transaction, hops."""

    service: str
    category: str
    address: str
    chain: str
    asset: str
    amounts: dict[str, int]
    first_arrival: str
    first_tx: str
    hops: int


@dataclass(frozen=True)
class FundFlow:
    """The traced theft: policies (primary first), flows per asset, freeze requests, tainted txs per pattern."""

    policies: tuple[str, ...]
    assets: tuple[AssetFlow, ...]
    freeze: tuple[FreezeRow, ...]
    patterns: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, amounts as decimal strings of base units."""
        return {
            "policies": list(self.policies),
            "assets": [_asset_dict(a) for a in self.assets],
            "freeze": [{**asdict(r), "amounts": {p: str(v) for p, v in r.amounts.items()}} for r in self.freeze],
            "patterns": dict(self.patterns),
        }


@dataclass(frozen=True)
class RuleCredit:
    """A detection rule whose matches the case uses; the Detection Rule License asks for its author with each use."""

    rule: str
    author: str
    licence: str = "Detection Rule License (DRL) 1.1"
    reference: str = ""


@dataclass(frozen=True)
class SourceCredit:
    """A data source of the knowledge base behind the report."""

    name: str
    version: str | None
    url: str | None


@dataclass(frozen=True)
class CaseReport:
    """The whole investigation report; `problems` lists inputs left out, each with its location."""

    title: str
    generated: str
    report_title: str | None
    timeline: Timeline
    attribution: AttributionView | None
    claims: tuple[NameClaims, ...]
    hunt: tuple[HuntRow, ...]
    flow: FundFlow | None
    sources: tuple[SourceCredit, ...]
    rules: tuple[RuleCredit, ...]
    problems: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: the same content the HTML page shows."""
        data = asdict(self)
        data["flow"] = self.flow.to_dict() if self.flow else None
        return data


def build_case_report(
    title: str,
    store: KnowledgeStore,
    *,
    analysis: Analysis | None = None,
    levels: Levels | None = None,
    sightings: Sequence[Sighting] = (),
    case: CaseResult | None = None,
    resolutions: Sequence[Resolution] = (),
    rules: Sequence[RuleCredit] = (),
    decimals: Mapping[tuple[str, str], int] | None = None,
    now: datetime | None = None,
) -> CaseReport:
    """Gather what an investigation produced into one report document; any part may be missing."""
    problems: list[str] = []
    known = {**KNOWN_DECIMALS, **(decimals or {})}
    tactics = _tactics(store)
    traced = [(r, find_patterns(r)) for r in (case.result, *case.compared)] if case else []
    events = [
        *(_report_events(analysis, tactics) if analysis else []),
        *_hunt_events(sightings, problems),
        *(_trace_events(case, traced[0][1], known) if case else []),
    ]
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return CaseReport(
        title=title,
        generated=_iso(moment),
        report_title=analysis.batch.report.title if analysis else None,
        timeline=_timeline(events, analysis, tactics),
        attribution=_attribution(levels) if levels else None,
        claims=tuple(_name_claims(r) for r in resolutions),
        hunt=tuple(_hunt_row(s) for s in sightings),
        flow=_fund_flow(case, traced, known) if case else None,
        sources=tuple(SourceCredit(s.name, s.version, s.url) for s in store.sources()),
        rules=tuple(rules),
        problems=tuple(problems),
    )


def format_amount(amount: int, decimals: int | None, asset: str) -> str:
    """An amount in base units as a person reads it ("412.5 BTC", cut at 6 decimals); base units without decimals."""
    if decimals is None:
        return f"{amount:,} {asset} base units"
    whole, frac = divmod(abs(amount), 10**decimals)
    digits = f"{frac:0{decimals}d}"[:_SHOWN_DIGITS].rstrip("0") if decimals else ""
    sign = "-" if amount < 0 else ""
    if frac and not whole and not digits:
        return f"{sign}<0.{'0' * (_SHOWN_DIGITS - 1)}1 {asset}"
    return f"{sign}{whole:,}{'.' + digits if digits else ''} {asset}"


# -- timeline -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tactics:
    """ATT&CK tactic names in kill-chain order, and each technique object's tactic short names."""

    names: dict[str, str]
    order: dict[str, int]
    of_object: dict[str, tuple[str, ...]]


def _tactics(store: KnowledgeStore) -> _Tactics:
    tactics = store.objects(type=ObjectType.TACTIC)
    names = {str(t.attrs.get("shortname")): t.name for t in tactics}
    order = {t.name: int(t.attrs.get("order", 99)) for t in tactics}
    techniques = store.objects(type=ObjectType.ATTACK_PATTERN)
    return _Tactics(names, order, {t.id: tuple(t.attrs.get("tactics", ())) for t in techniques})


def _finding_tactics(finding: Finding, tactics: _Tactics) -> list[str]:
    shorts = {s for oid in finding.object_ids for s in tactics.of_object.get(oid, ())}
    return sorted({tactics.names.get(s, s) for s in shorts}, key=lambda n: tactics.order.get(n, 99))


def _timeline(events: list[TimelineEvent], analysis: Analysis | None, tactics: _Tactics) -> Timeline:
    kill_chain = sorted(tactics.order, key=lambda n: tactics.order.get(n, 99))
    fixed = [REPORTED, *kill_chain, HUNT, THEFT, *(_stage_lane(s) for s in STAGES), MIXING]
    rank = {lane: i for i, lane in enumerate([*fixed, CASH_OUT])}
    ordered = sorted(events, key=lambda e: (_parse_iso(e.start), rank.get(e.lane, len(rank))))
    used = {e.lane for e in ordered}
    lanes = tuple(lane for lane in rank if lane in used)
    return Timeline(lanes, tuple(ordered), _techniques(analysis, tactics) if analysis else ())


def _techniques(analysis: Analysis, tactics: _Tactics) -> tuple[TechniqueSeen, ...]:
    """Each technique once per tactic, from its most certain finding, in kill-chain order."""
    best: dict[tuple[str, str], TechniqueSeen] = {}
    for f in analysis.batch.findings:
        if f.role != "technique":
            continue
        tier, _, name = f.reason.partition(":")
        for tactic in _finding_tactics(f, tactics) or ["(no tactic)"]:
            seen = TechniqueSeen(tactic, f.value, name, tier, _clip(analysis.sentence(f)))
            old = best.get((tactic, f.value))
            if old is None or _TIERS.get(tier, 9) < _TIERS.get(old.tier, 9):
                best[(tactic, f.value)] = seen
    return tuple(sorted(best.values(), key=lambda t: (tactics.order.get(t.tactic, 99), t.technique_id)))


def _report_events(analysis: Analysis, tactics: _Tactics) -> list[TimelineEvent]:
    """One event per dated sentence of the report and tactic of the techniques found in it."""
    text, findings = analysis.document.text, analysis.batch.findings
    events = []
    for start, end in split_sentences(text):
        match = _DATE.search(text, start, end)
        moment = _report_time(match) if match else None
        if moment is None:
            continue
        inside = [f for f in findings if start <= f.start < end and f.role != "mention"]
        found = {t for f in inside for t in _finding_tactics(f, tactics)}
        lanes = sorted(found, key=lambda n: tactics.order.get(n, 99))
        detail = "; ".join(dict.fromkeys(f"{f.kind} {f.value}" for f in inside))
        sentence = _clip(text[start:end].lstrip("-* "))
        for lane in lanes or [REPORTED]:
            events.append(TimelineEvent(_iso(moment), lane, "report", sentence, detail, where=f"report chars {start}"))
    return events


def _report_time(match: re.Match[str]) -> datetime | None:
    day, clock, sign, hours, minutes = match.groups()
    offset = timedelta(hours=int(hours or 0), minutes=int(minutes or 0)) * (-1 if sign == "-" else 1)
    try:
        moment = datetime.fromisoformat(f"{day}T{clock or '00:00'}")
    except ValueError:
        return None  # a date-shaped number that is no date (2026-13-45)
    return moment.replace(tzinfo=timezone(offset)).astimezone(UTC)


def _hunt_events(sightings: Iterable[Sighting], problems: list[str]) -> list[TimelineEvent]:
    events = []
    for s in sightings:
        first, last = _seen_time(s.first_seen), _seen_time(s.last_seen)
        if first is None:
            problems.append(f"{s.file}:{s.line}: sighting of {s.value} has no readable time ({s.first_seen!r})")
            continue
        end = _iso(last) if last and last > first else None
        detail = f"{s.count} line(s); {s.field} = {_clip(s.observed)}"
        events.append(
            TimelineEvent(_iso(first), HUNT, "hunt", f"{s.kind} {s.value}", detail, end, f"{s.file}:{s.line}")
        )
    return events


def _seen_time(value: str | None) -> datetime | None:
    """A log time: ISO 8601 (naive = UTC) or Unix seconds, as Zeek writes them."""
    if not value:
        return None
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return moment.replace(tzinfo=moment.tzinfo or UTC).astimezone(UTC)


def _trace_events(case: CaseResult, patterns: Patterns, decimals: Mapping[tuple[str, str], int]) -> list[TimelineEvent]:
    result = case.result
    return [*_theft_events(result, decimals), *_stage_events(result, patterns), *_service_events(case, decimals)]


def _theft_events(result: TraceResult, decimals: Mapping[tuple[str, str], int]) -> list[TimelineEvent]:
    """The seed transfers, one event per theft transaction."""
    by_tx: dict[str, list[int]] = defaultdict(list)
    for pos, hop in result.hops.items():
        if hop == 0 and pos not in result.parents and not result.graph.transfer(pos).dst.startswith("tx:"):
            by_tx[result.graph.transfer(pos).tx].append(pos)
    events = []
    for tx, positions in by_tx.items():
        moved = [result.graph.transfer(p) for p in positions]
        amount = sum(t.amount for t in moved)
        asset = (moved[0].chain, moved[0].asset)
        source = _source(result, moved[0])
        title = f"theft: {format_amount(amount, decimals.get(asset), asset[1])} from {source}"
        events.append(TimelineEvent(_iso_ts(min(t.ts for t in moved)), THEFT, "trace", title, "", where=tx))
    return events


def _stage_events(result: TraceResult, patterns: Patterns) -> list[TimelineEvent]:
    """Each laundering stage as a span from its first to its last tainted transaction."""
    spans: dict[str, list[int]] = defaultdict(list)
    txs: dict[str, set[str]] = defaultdict(set)
    stages = _stage_of_tx(patterns)
    for pos in result.tainted:
        t = result.graph.transfer(pos)
        stage = _stage(t.src, t.tx, result.graph.labels, stages)
        if stage:
            spans[stage].append(t.ts)
            txs[stage].add(t.tx)
    return [
        TimelineEvent(
            _iso_ts(min(ts)),
            _stage_lane(stage),
            "trace",
            stage,
            f"{len(txs[stage])} tainted transaction(s)",
            _iso_ts(max(ts)) if max(ts) > min(ts) else None,
        )
        for stage, ts in spans.items()
    ]


def _service_events(case: CaseResult, decimals: Mapping[tuple[str, str], int]) -> list[TimelineEvent]:
    """The first arrival at each service reached, and the last cash-out (a service that is not a mixer or bridge)."""
    first: dict[str, tuple[int, str, str]] = {}
    amounts: dict[str, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
    for a in case.alerts:
        if a.service not in first or a.first_arrival < first[a.service][0]:
            first[a.service] = (a.first_arrival, a.category, a.first_tx)
        amounts[a.service][(a.chain, a.asset)] += a.amount
    events = []
    for service, (ts, category, tx) in first.items():
        lane = MIXING if category in PASS_THROUGH else CASH_OUT
        held = ", ".join(format_amount(v, decimals.get(k), k[1]) for k, v in amounts[service].items())
        events.append(
            TimelineEvent(_iso_ts(ts), lane, "trace", f"first arrival at {service} ({category})", held, where=tx)
        )
    cash_outs = [a for a in case.result.arrivals if a.label.category not in PASS_THROUGH] or case.result.arrivals
    if cash_outs:
        last = max(cash_outs, key=lambda a: (a.ts, a.position))
        tx = case.result.graph.transfer(last.position).tx
        title = f"last cash-out at {last.label.service} ({last.label.category})"
        amount = format_amount(last.amount, decimals.get(last.asset), last.asset[1])
        events.append(TimelineEvent(_iso_ts(last.ts), CASH_OUT, "trace", title, amount, where=tx))
    return events


# -- attribution and claims -----------------------------------------------------------------------------


def _attribution(levels: Levels) -> AttributionView:
    result = levels.attribution
    return AttributionView(
        abstained=result.abstained,
        reason=result.reason,
        confidence=result.confidence,
        unknown_probability=result.unknown_probability,
        candidates=tuple(_candidate(c, levels.item_names) for c in result.candidates),
        groups=dict(levels.groups),
        umbrellas=dict(levels.umbrellas),
        countries=dict(levels.countries),
        evidence=len(levels.evidence),
        ignored=tuple(result.ignored),
    )


def _candidate(c: Candidate, names: Mapping[str, str]) -> CandidateView:
    ex = c.explanation

    def weighed(items: tuple[Contribution, ...]) -> tuple[Weighed, ...]:
        return tuple(Weighed(i.item_id, item_name(i.item_id, names), round(i.weight, 4)) for i in items)

    return CandidateView(
        actor_id=c.actor_id,
        name=c.name,
        probability=c.probability,
        words=c.words.words,
        log_lr=c.log_lr,
        explained=ex is not None,
        raises=weighed(ex.raises) if ex else (),
        lowers=weighed(ex.lowers) if ex else (),
        expected_not_seen=weighed(ex.expected_not_seen) if ex else (),
        same_origin={k: tuple(v) for k, v in ex.same_origin.items()} if ex else {},
    )


def _name_claims(resolution: Resolution) -> NameClaims:
    by_source: dict[str, list[ClaimRow]] = defaultdict(list)
    for s in resolution.statements:
        row = ClaimRow(s.subject, s.relation, s.object, s.likelihood, s.said, s.date, s.reference, s.title, s.note)
        by_source[s.source_name].append(row)
    return NameClaims(
        name=resolution.query,
        by_source={source: tuple(rows) for source, rows in sorted(by_source.items())},
        group=resolution.group.values,
        umbrella=resolution.umbrella.values,
        country=resolution.country.values,
        disagreements=tuple(resolution.disagreements),
    )


def _hunt_row(s: Sighting) -> HuntRow:
    return HuntRow(
        s.kind, s.value, s.observed, f"{s.file}:{s.line}", s.field, s.count, s.first_seen, s.last_seen, s.hunt, s.raw
    )


# -- fund flow ----------------------------------------------------------------------------------------------


def _fund_flow(
    case: CaseResult, traced: Sequence[tuple[TraceResult, Patterns]], decimals: Mapping[tuple[str, str], int]
) -> FundFlow:
    results = [result for result, _ in traced]
    routes = [route for result, patterns in traced for route in _routes(result, patterns)]
    keys = sorted({(r.chain, r.asset) for r in routes} | {k for result in results for k in result.seeded})
    assets = tuple(
        AssetFlow(
            chain,
            asset,
            decimals.get((chain, asset)),
            tuple(r.route for r in routes if (r.chain, r.asset) == (chain, asset)),
            tuple(_totals(result, (chain, asset)) for result in results),
        )
        for chain, asset in keys
    )
    freeze = tuple(
        FreezeRow(
            a.service,
            a.category,
            a.address,
            a.chain,
            a.asset,
            dict(a.amounts),
            _iso_ts(a.first_arrival),
            a.first_tx,
            a.hops,
        )
        for a in case.alerts
    )
    patterns = {name: len(txs) for name, txs in traced[0][1].items()}
    return FundFlow(tuple(str(r.policy) for r in results), assets, freeze, patterns)


@dataclass(frozen=True)
class _AssetRoute:
    chain: str
    asset: str
    route: FlowRoute


def _routes(result: TraceResult, patterns: Patterns) -> list[_AssetRoute]:
    """Arrivals summed per (asset, source, stages, service) along the path the trace recorded for each."""
    labels, stages_of = result.graph.labels, _stage_of_tx(patterns)
    sums: dict[tuple[tuple[str, str], str, tuple[str, ...], str, str], int] = defaultdict(int)
    for arrival in result.arrivals:
        path = result.path(arrival.position)
        seq = _dedupe(tuple(s for s in (_stage(t.src, t.tx, labels, stages_of) for t in path) if s))
        key = (arrival.asset, _source(result, path[0]), seq, arrival.label.service, arrival.label.category)
        sums[key] += arrival.amount
    return [
        _AssetRoute(asset[0], asset[1], FlowRoute(str(result.policy), source, seq, service, category, amount))
        for (asset, source, seq, service, category), amount in sums.items()
    ]


def _dedupe(stages: tuple[str, ...]) -> tuple[str, ...]:
    """Consecutive repeats of a stage are one stage (a peel chain of twelve steps is one peel chain)."""
    return tuple(s for i, s in enumerate(stages) if i == 0 or stages[i - 1] != s)


def _stage_of_tx(patterns: Patterns) -> dict[str, str]:
    """The stage each tainted transaction belongs to; a peel step that also fans out counts as a peel chain."""
    stages = {tx: STAGES[1] for tx in patterns.get("fan_out", ())}
    stages.update({tx: STAGES[2] for tx in patterns.get("peel_chain", ())})
    return stages


def _stage(src: str, tx: str, labels: Mapping[str, Label], stages: Mapping[str, str]) -> str | None:
    label = labels.get(src)
    if label is not None and label.category in SWAP_CATEGORIES:
        return STAGES[0]
    return stages.get(tx)


def _stage_lane(stage: str) -> str:
    return f"Trace: {stage}"


def _totals(result: TraceResult, asset: tuple[str, str]) -> PolicyTotals:
    return PolicyTotals(
        policy=str(result.policy),
        seeded=result.seeded.get(asset, 0),
        arrived=sum(a.amount for a in result.arrivals if a.asset == asset),
        held=sum(v for (_, a), v in result.holdings.items() if a == asset),
        fees=result.fees.get(asset, 0),
        dropped=result.dropped.get(asset, 0),
        stopped=sum(h.amount for h in result.limit_hits if h.asset == asset),
    )


def _asset_dict(flow: AssetFlow) -> dict[str, Any]:
    return {
        "chain": flow.chain,
        "asset": flow.asset,
        "decimals": flow.decimals,
        "routes": [{**asdict(r), "stages": list(r.stages), "amount": str(r.amount)} for r in flow.routes],
        "totals": [{k: v if k == "policy" else str(v) for k, v in asdict(t).items()} for t in flow.totals],
    }


# -- small helpers of this module ---------------------------------------------------------------------------


def _source(result: TraceResult, seed: Transfer) -> str:
    """Who a seed transfer took the coins from: its sender, or for a UTXO transaction the first input's owner."""
    graph, src = result.graph, seed.src
    if src.startswith("tx:"):
        inputs = [graph.transfer(p).src for p in graph.positions_of(seed.tx) if graph.transfer(p).dst == src]
        src = inputs[0] if inputs else src
    return _name(src, graph.labels)


def _name(address: str, labels: Mapping[str, Label]) -> str:
    label = labels.get(address)
    return label.service if label else address if len(address) <= 14 else f"{address[:10]}…{address[-4:]}"


def _clip(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _TEXT else flat[: _TEXT - 1] + "…"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_ts(ts: int) -> str:
    return _iso(datetime.fromtimestamp(ts, UTC))


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)
