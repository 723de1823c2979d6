"""Bridge links: the payout on another chain that continues a tainted deposit into a cross-chain bridge.

**Linking.** A deposit into one of a bridge's labelled addresses is matched with the payouts that the same bridge
service (same label service name) makes on another chain within `window` seconds after it, whose value, converted
with the caller's price table, is within `tolerance` of the deposit's. A candidate's quality is its amount
closeness times its time closeness; its confidence is that quality times its share among the deposit's candidates
and times its share among the deposits the payout could answer, so one clear candidate scores high and several
split it. A deposit id found in both legs (a memo, a nonce: `BridgeRules.deposit_id`, for readers that decode
one) decides alone.

**Crossing.** Tracing continues past a link at or above `min_confidence`: the payout is a new seed on its chain,
traced under each policy of the case (one policy per trace, as in taint.py) with what is left of that policy's
limits (hops and seconds count from the first seed of the case). The seed taints the payout in full, so the
amounts past a bridge are scaled by the share of the deposit that was tainted under that policy (exact under
haircut and poison, pro rata under FIFO); an alert past a bridge carries the product of the links' confidences
and a path that runs through the bridge. Bridges reached past a bridge are crossed again, up to `max_rounds`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

import numpy as np

from heistwatch.errors import InputError
from heistwatch.trace.alerts import Alert, build_alerts
from heistwatch.trace.graph import TraceGraph
from heistwatch.trace.ledger import FEE_SINK, Transfer
from heistwatch.trace.taint import Arrival, Limits, Seed, TraceResult, trace

Asset = tuple[str, str]
DepositIdOf = Callable[[Transfer], str | None]
"""A reader's decoder of an explicit deposit id (memo, nonce) from a bridge leg; None when the leg has none."""

BRIDGE_CATEGORIES = frozenset({"bridge"})


@dataclass(frozen=True)
class Price:
    """What one whole unit of an asset is worth in the table's common unit (USD, or 1 for a fixed ratio)."""

    value: float
    decimals: int


@dataclass(frozen=True)
class BridgeRules:
    """How bridge deposits are linked to payouts, and how far tracing continues past them."""

    prices: Mapping[Asset, Price]
    window: int = 6 * 3600
    tolerance: float = 0.02
    min_confidence: float = 0.5
    max_rounds: int = 4
    categories: frozenset[str] = BRIDGE_CATEGORIES
    deposit_id: DepositIdOf | None = None


@dataclass(frozen=True)
class BridgeLink:
    """A deposit into a bridge (ledger position) continued by a payout on another chain, with its confidence."""

    deposit: int
    payout: int
    confidence: float
    reason: str


@dataclass(frozen=True)
class Crossing:
    """Tracing continued past one link: the route's confidence, hops and path up to the bridge, and the traces."""

    link: BridgeLink
    confidence: float
    hops: int
    path: tuple[Transfer, ...]
    shares: dict[str, Fraction]
    results: tuple[TraceResult, ...]


@dataclass(frozen=True)
class _Route:
    """The case's own traces, as the start of every route across bridges (a Crossing is the rest of one)."""

    confidence: float
    hops: int
    path: tuple[Transfer, ...]
    shares: dict[str, Fraction]
    results: tuple[TraceResult, ...]


class _Linker:
    """Bridge addresses by service and the price of a base unit of each asset, for scoring candidate links."""

    def __init__(self, graph: TraceGraph, rules: BridgeRules) -> None:
        self.g, self.c, self.rules = graph, graph.cols, rules
        self.services: dict[str, list[int]] = {}
        for address, label in graph.label_ids.items():
            if label.category in rules.categories:
                self.services.setdefault(label.service, []).append(address)
        self.unit = [_unit_value(rules.prices.get(asset)) for asset in graph.cols.assets]
        self.fee_sink = graph.address_ids.get(FEE_SINK, -1)

    def chain(self, pos: int) -> str:
        return self.c.assets[int(self.c.asset[pos])][0]

    def value(self, pos: int) -> float | None:
        unit = self.unit[int(self.c.asset[pos])]
        return None if unit is None else self.c.amount(pos) * unit

    def service(self, deposit: int) -> str:
        label = self.g.label_ids.get(int(self.c.dst[deposit]))
        if label is None or label.category not in self.rules.categories:
            raise InputError("deposits", f"the transfer at position {deposit} does not pay a bridge address")
        return label.service

    def _events(self, address: int, start: int, end: int) -> np.ndarray[Any, np.dtype[np.int64]]:
        """Positions touching `address` with start <= ts <= end."""
        events = self.g.address_events(address)
        ts = self.c.ts[events]
        return events[int(np.searchsorted(ts, start, "left")) : int(np.searchsorted(ts, end, "right"))]

    def payouts(self, service: str, deposit: int) -> list[int]:
        """Legs the bridge pays on other chains in the window after `deposit` (a UTXO payout's outputs)."""
        c, ts, chain = self.c, int(self.c.ts[deposit]), self.chain(deposit)
        found: set[int] = set()
        for address in self.services[service]:
            for p in self._events(address, ts, ts + self.rules.window).tolist():
                if c.src[p] != address or self.chain(p) == chain:
                    continue
                node = int(c.dst[p])
                if not self.c.addresses[node].startswith("tx:"):
                    found.add(p)
                    continue
                outs = self.g.address_events(node).tolist()
                found |= {q for q in outs if c.src[q] == node and int(c.dst[q]) not in (self.fee_sink, address)}
        return sorted(found)

    def deposits(self, service: str, payout: int) -> list[int]:
        """Transfers into the bridge on other chains in the window before `payout`: the deposits it could answer."""
        c, ts, chain = self.c, int(self.c.ts[payout]), self.chain(payout)
        found = []
        for address in self.services[service]:
            events = self._events(address, ts - self.rules.window, ts).tolist()
            found += [d for d in events if c.dst[d] == address and self.chain(d) != chain]
        return found

    def quality(self, deposit: int, payout: int) -> float:
        """Amount closeness times time closeness, each 1 at a perfect match and 0 at the rules' edge."""
        deviation, gap = self._fit(deposit, payout)
        tol, window = self.rules.tolerance, self.rules.window
        if deviation is None or deviation > tol or not 0 <= gap <= window:
            return 0.0
        return (1 - (deviation / tol) ** 2) * (1 - (gap / window) ** 2)

    def _fit(self, deposit: int, payout: int) -> tuple[float | None, int]:
        """Relative value difference after conversion (None without prices) and seconds between the legs."""
        gap = int(self.c.ts[payout]) - int(self.c.ts[deposit])
        sent, paid = self.value(deposit), self.value(payout)
        if sent is None or paid is None or sent <= 0:
            return None, gap
        return abs(paid / sent - 1), gap

    def links(self, deposit: int) -> list[BridgeLink]:
        """Candidate payouts of one deposit with their confidence, most confident first."""
        service = self.service(deposit)
        candidates = self.payouts(service, deposit)
        decode = self.rules.deposit_id
        if decode is not None:
            mine = decode(self.g.transfer(deposit))
            ids = {p: decode(self.g.transfer(p)) for p in candidates}
            same = [p for p in candidates if mine is not None and ids[p] == mine]
            if same:
                return [BridgeLink(deposit, p, 1.0, f"deposit id {mine} in both legs") for p in same]
            candidates = [p for p in candidates if ids[p] is None or mine is None]
        scored = [(p, q) for p in candidates if (q := self.quality(deposit, p)) > 0]
        total = sum(q for _, q in scored)
        links = []
        for p, q in scored:
            rivals = [q2 for d in self.deposits(service, p) if (q2 := self.quality(d, p)) > 0]
            confidence = q * (q / total) * (q / max(sum(rivals), q))
            deviation, gap = self._fit(deposit, p)
            reason = (
                f"value within {deviation:.2%} after conversion, {gap / 60:.0f} min later; "
                f"{len(scored)} candidate payout(s), {max(len(rivals), 1)} matching deposit(s)"
            )
            links.append(BridgeLink(deposit, p, confidence, reason))
        return sorted(links, key=lambda link: (-link.confidence, link.payout))


def _unit_value(price: Price | None) -> float | None:
    """The value of one base unit."""
    return None if price is None else price.value / 10**price.decimals


def link_bridges(graph: TraceGraph, deposits: Iterable[int], rules: BridgeRules) -> list[BridgeLink]:
    """Candidate links of each deposit (the position of a transfer into a bridge address), best first per deposit."""
    linker = _Linker(graph, rules)
    return [link for deposit in deposits for link in linker.links(deposit)]


def cross_bridges(
    graph: TraceGraph, traced: Sequence[TraceResult], rules: BridgeRules, start: int
) -> tuple[list[BridgeLink], list[Crossing]]:
    """Every link from the bridges the traces reach, and the traces continued past the confident ones.

    `traced` holds the case's traces, the primary policy first; `start` is the time of the case's first seed.
    """
    base = {str(r.policy): r.limits for r in traced}
    used = {str(r.policy): len(r.tainted) for r in traced}
    frontier: list[_Route | Crossing] = [_Route(1.0, 0, (), {name: Fraction(1) for name in base}, tuple(traced))]
    links: list[BridgeLink] = []
    crossings: list[Crossing] = []
    seeded: set[int] = set()
    linker: _Linker | None = None
    for _ in range(rules.max_rounds):
        deposits = [(r, a) for r in frontier for a in r.results[0].arrivals if a.label.category in rules.categories]
        if not deposits:
            break
        linker = linker or _Linker(graph, rules)
        frontier = []
        for route, arrival in deposits:
            found = linker.links(arrival.position)
            links += found
            for link in found:
                if link.confidence < rules.min_confidence or link.payout in seeded:
                    continue
                seeded.add(link.payout)
                crossing = _cross(graph, route, arrival, link, (base, used, start))
                if crossing is not None:
                    crossings.append(crossing)
                    frontier.append(crossing)
    return links, crossings


def _cross(
    graph: TraceGraph,
    route: _Route | Crossing,
    arrival: Arrival,
    link: BridgeLink,
    budget: tuple[dict[str, Limits], dict[str, int], int],
) -> Crossing | None:
    """Trace the payout of `link` under each policy whose taint reached the deposit (None if limits are spent)."""
    base, used, start = budget
    hops = route.hops + arrival.hop + 1
    payout = graph.transfer(link.payout)
    amount = graph.cols.amount(arrival.position)
    results: list[TraceResult] = []
    shares: dict[str, Fraction] = {}
    for parent in route.results:
        name = str(parent.policy)
        share = route.shares[name] * Fraction(parent.tainted.get(arrival.position, 0), amount)
        limits = _remaining(base[name], hops, payout.ts - start, used[name])
        if share == 0 or limits is None:
            if not results:
                return None  # the primary policy cannot go on
            continue
        result = trace(graph, [Seed(payout.tx, payout.dst)], parent.policy, limits)
        used[name] += len(result.tainted)
        results.append(result)
        shares[name] = share
    path = route.path + tuple(route.results[0].path(arrival.position))
    return Crossing(link, route.confidence * link.confidence, hops, path, shares, tuple(results))


def _remaining(limits: Limits, hops: int, elapsed: int, used: int) -> Limits | None:
    """The limits left for a trace that starts `hops` hops and `elapsed` seconds into the case (None if spent)."""
    max_hops = None if limits.max_hops is None else limits.max_hops - hops
    max_seconds = None if limits.max_seconds is None else limits.max_seconds - elapsed
    max_tainted = None if limits.max_tainted is None else limits.max_tainted - used
    if (max_hops is not None and max_hops < 0) or (max_seconds is not None and max_seconds < 0):
        return None
    if max_tainted is not None and max_tainted <= 0:
        return None
    return replace(limits, max_hops=max_hops, max_seconds=max_seconds, max_tainted=max_tainted)


def crossing_alerts(crossing: Crossing, policies: Sequence[str]) -> list[Alert]:
    """The alerts of the traces past a bridge: amounts scaled by the share carried, the route's confidence and path."""
    alerts = []
    for a in build_alerts(crossing.results):
        amounts = {p: int(a.amounts.get(p, 0) * crossing.shares.get(p, Fraction(0))) for p in policies}
        if amounts[policies[0]]:
            hops, path = a.hops + crossing.hops, crossing.path + a.path
            alerts.append(replace(a, amounts=amounts, hops=hops, path=path, confidence=crossing.confidence))
    return alerts
