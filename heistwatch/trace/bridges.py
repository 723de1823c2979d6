"""Bridge links: the payout on another chain that continues a tainted deposit into a cross-chain bridge.

**Linking.** A bridge pays each deposit once, on another chain, minutes to hours later, less its fee. A payout fits
a deposit when the same bridge service (same label service name) makes it within `window` seconds after the
deposit and its value, converted with the caller's price table, is the deposit's less a fee in the bridge's
documented `fee` range (give or take `tolerance` for price error); nearer payouts fit better. Whether a deposit's
value went to one payout or another depends on which payouts the bridge's other deposits explain, so the deposit,
every payout that fits it, every deposit that fits those, and so on (at most `max_component` of each, nearest
first) are matched jointly: a link's confidence is its share of the total weight of all one-to-one matchings of
that component, a deposit or payout without a partner in the data weighing `unmatched`. A payout that only the
deposit explains is near certain even among look-alikes, and two deposits that fit two payouts equally well split
them half and half. A deposit id found in both legs (a memo, a nonce: `BridgeRules.deposit_id`, for readers that
decode one) decides alone, and different ids rule a pair out.

**Crossing.** A payout carries stolen value as likely as the tainted deposits the trace reached make it: the sum
of their links' confidences (times the confidence of the routes that reached them), so sibling deposits of the
same loot that the bridge answers in an order nobody can tell still cross in full. Tracing continues past a payout
at or above `min_confidence`: the payout is a new seed on its chain, traced under each policy of the case (one
policy per trace, as in taint.py) with what is left of that policy's limits (hops and seconds count from the first
seed of the case, through the likeliest deposit). The seed taints the payout in full, so the amounts past a bridge
are scaled by the tainted share of its deposits under that policy, weighted by their links (exact under haircut
and poison, pro rata under FIFO); an alert past a bridge carries the crossing's confidence and a path through the
likeliest deposit. Bridges reached past a bridge are crossed again, up to `max_rounds`.
"""

from __future__ import annotations

from collections import deque
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
    """How bridge deposits are linked to payouts, and how far tracing continues past them.

    `fee` is the documented fee range as a share of the value (low, high); a payout's converted value fits between
    (1 - high) and (1 - low) of the deposit's, and fits less and less up to `tolerance` beyond that band.
    """

    prices: Mapping[Asset, Price]
    window: int = 6 * 3600
    fee: tuple[float, float] = (0.0, 0.01)
    tolerance: float = 0.02
    unmatched: float = 0.05
    max_component: int = 10
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
class _Route:
    """Where tracing stands: the confidence that the value carries stolen value, the hops and path so far, the
    tainted share per policy, and the traces. The case's own traces start every route across bridges."""

    confidence: float
    hops: int
    path: tuple[Transfer, ...]
    shares: dict[str, Fraction]
    results: tuple[TraceResult, ...]


@dataclass(frozen=True)
class Crossing(_Route):
    """Tracing continued past one payout: a route whose path runs up to the bridge through `link`, the payout's
    likeliest link."""

    link: BridgeLink


@dataclass(frozen=True)
class _Source:
    """A tainted deposit reached along a route, and its link to a payout."""

    route: _Route
    arrival: Arrival
    link: BridgeLink

    @property
    def weight(self) -> float:
        """How likely the payout continues this deposit's value along this route."""
        return self.route.confidence * self.link.confidence


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
        self.weights: dict[tuple[int, int], float] = {}

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
        return sorted(found, reverse=True)

    def weight(self, deposit: int, payout: int) -> float:
        """How well `payout` fits `deposit`: 1 for a value in the fee band at no delay, 0 outside the rules."""
        key = (deposit, payout)
        if key not in self.weights:
            self.weights[key] = self._weigh(deposit, payout)
        return self.weights[key]

    def _weigh(self, deposit: int, payout: int) -> float:
        """Value closeness to the fee band times time closeness (the payout's nearness to the deposit)."""
        ratio, gap = self._fit(deposit, payout)
        rules = self.rules
        if ratio is None or not 0 <= gap <= rules.window or self._ids_differ(deposit, payout):
            return 0.0
        outside = max(1 - rules.fee[1] - ratio, ratio - 1 + rules.fee[0], 0.0)
        if outside > rules.tolerance:
            return 0.0
        closeness = 1 - outside / rules.tolerance if rules.tolerance else 1.0
        return closeness * (1 - (gap / rules.window) ** 2)

    def _ids_differ(self, deposit: int, payout: int) -> bool:
        """Whether both legs carry a deposit id and the ids differ."""
        decode = self.rules.deposit_id
        if decode is None:
            return False
        ids = decode(self.g.transfer(deposit)), decode(self.g.transfer(payout))
        return None not in ids and ids[0] != ids[1]

    def _fit(self, deposit: int, payout: int) -> tuple[float | None, int]:
        """The payout's converted value over the deposit's (None without prices) and seconds between the legs."""
        gap = int(self.c.ts[payout]) - int(self.c.ts[deposit])
        sent, paid = self.value(deposit), self.value(payout)
        if sent is None or paid is None or sent <= 0:
            return None, gap
        return paid / sent, gap

    def component(self, service: str, deposit: int) -> tuple[list[int], list[int]]:
        """`deposit` first, the payouts that fit it, the deposits that fit those, and so on (breadth first, capped)."""
        sides: tuple[list[int], list[int]] = ([deposit], [])
        queue = deque([(0, deposit)])
        while queue:
            side, pos = queue.popleft()
            other = sides[1 - side]
            found = self.payouts(service, pos) if side == 0 else self.deposits(service, pos)
            for q in found:
                pair = (pos, q) if side == 0 else (q, pos)
                if len(other) >= self.rules.max_component:
                    break
                if q not in other and self.weight(*pair) > 0:
                    other.append(q)
                    queue.append((1 - side, q))
        return sides

    def links(self, deposit: int) -> list[BridgeLink]:
        """Candidate payouts of one deposit with their confidence, most confident first."""
        service = self.service(deposit)
        decode = self.rules.deposit_id
        if decode is not None and (mine := decode(self.g.transfer(deposit))) is not None:
            same = [p for p in self.payouts(service, deposit) if decode(self.g.transfer(p)) == mine]
            if same:
                return [BridgeLink(deposit, p, 1.0, f"deposit id {mine} in both legs") for p in same]
        deposits, payouts = self.component(service, deposit)
        fits = [{j: w for j, p in enumerate(payouts) if (w := self.weight(d, p)) > 0} for d in deposits]
        links = []
        for j, confidence in _marginals(fits, len(payouts), self.rules.unmatched).items():
            ratio, gap = self._fit(deposit, payouts[j])
            reason = (
                f"value within {abs(1 - (ratio or 0)):.2%} after conversion, {gap / 60:.0f} min later; "
                f"{len(fits[0])} candidate payout(s), {sum(j in row for row in fits)} matching deposit(s); "
                f"matched jointly with {len(deposits) - 1} other deposit(s) and {len(payouts) - 1} other payout(s)"
            )
            links.append(BridgeLink(deposit, payouts[j], confidence, reason))
        return sorted(links, key=lambda link: (-link.confidence, link.payout))


def _marginals(fits: list[dict[int, float]], payouts: int, unmatched: float) -> dict[int, float]:
    """The probability that the first deposit was paid out as payout j, over every one-to-one matching.

    `fits[i]` maps payout index to weight for deposit i; a matching weighs the product of its pairs' weights and
    `unmatched` for each deposit and payout left without a partner.
    """
    memo: dict[tuple[int, int], float] = {}

    def total(i: int, used: int) -> float:
        if i == len(fits):
            return float(unmatched ** (payouts - used.bit_count()))
        if (i, used) not in memo:
            rest = unmatched * total(i + 1, used)
            memo[(i, used)] = rest + sum(
                w * total(i + 1, used | 1 << j) for j, w in fits[i].items() if not used >> j & 1
            )
        return memo[(i, used)]

    whole = total(0, 0)
    return {j: w * total(1, 1 << j) / whole for j, w in fits[0].items()}


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
    """Every link from the bridges the traces reach, and the traces continued past the likely payouts.

    `traced` holds the case's traces, the primary policy first; `start` is the time of the case's first seed.
    """
    base = {str(r.policy): r.limits for r in traced}
    used = {str(r.policy): len(r.tainted) for r in traced}
    frontier: list[_Route] = [_Route(1.0, 0, (), {name: Fraction(1) for name in base}, tuple(traced))]
    links: list[BridgeLink] = []
    crossings: list[Crossing] = []
    seeded: set[int] = set()
    linker: _Linker | None = None
    for _ in range(rules.max_rounds):
        reached = [(r, a) for r in frontier for a in r.results[0].arrivals if a.label.category in rules.categories]
        if not reached:
            break
        linker = linker or _Linker(graph, rules)
        funding: dict[int, dict[int, _Source]] = {}
        for route, arrival in reached:
            found = linker.links(arrival.position)
            links += found
            for link in found:
                sources = funding.setdefault(link.payout, {})
                source = _Source(route, arrival, link)
                if link.deposit not in sources or source.weight > sources[link.deposit].weight:
                    sources[link.deposit] = source
        frontier = []
        for payout, sources in sorted(funding.items()):
            confidence = min(sum(s.weight for s in sources.values()), 1.0)
            if confidence < rules.min_confidence or payout in seeded:
                continue
            seeded.add(payout)
            crossing = _cross(graph, list(sources.values()), confidence, (base, used, start))
            if crossing is not None:
                crossings.append(crossing)
                frontier.append(crossing)
    return links, crossings


def _cross(
    graph: TraceGraph,
    sources: list[_Source],
    confidence: float,
    budget: tuple[dict[str, Limits], dict[str, int], int],
) -> Crossing | None:
    """Trace a payout under each policy whose taint reached its deposits (None if the primary policy cannot go on)."""
    base, used, start = budget
    best = max(sources, key=lambda s: (s.weight, -s.arrival.position))
    route, arrival = best.route, best.arrival
    hops = route.hops + arrival.hop + 1
    payout = graph.transfer(best.link.payout)
    results: list[TraceResult] = []
    shares: dict[str, Fraction] = {}
    for parent in route.results:
        name = str(parent.policy)
        share = _share(graph, sources, name)
        limits = _remaining(base[name], hops, payout.ts - start, used[name])
        if share == 0 or limits is None:
            if not results:
                return None
            continue
        result = trace(graph, [Seed(payout.tx, payout.dst)], parent.policy, limits)
        used[name] += len(result.tainted)
        results.append(result)
        shares[name] = share
    path = route.path + tuple(route.results[0].path(arrival.position))
    return Crossing(confidence, hops, path, shares, tuple(results), link=best.link)


def _share(graph: TraceGraph, sources: list[_Source], policy: str) -> Fraction:
    """The tainted share under `policy` of the deposits a payout continues, weighted by their links."""
    total, weights = Fraction(0), Fraction(0)
    for s in sources:
        weight = Fraction(s.weight)
        weights += weight
        parent = next((r for r in s.route.results if str(r.policy) == policy), None)
        if parent is not None and policy in s.route.shares:
            tainted = Fraction(parent.tainted.get(s.arrival.position, 0), graph.cols.amount(s.arrival.position))
            total += weight * s.route.shares[policy] * tainted
    return total / weights if weights else Fraction(0)


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
