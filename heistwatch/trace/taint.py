"""Time-ordered taint tracing from seed transfers until taint rests, reaches a labelled service or hits a limit.

Transfers are replayed in time order, but only those touching an address that holds (or held) taint. An address
joining the trace starts with one clean lot worth its balance at that moment. Services absorb taint and produce
arrivals; swap services (DEXs) pass the tainted share of a swap's inputs on to its outputs in the other asset, once
every input of the swap transaction has arrived (several tainted legs into one swap add up).
Hops count transactions, so a UTXO transaction's in- and out-legs are one hop.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np

from heistwatch.errors import InputError
from heistwatch.trace.graph import TraceGraph
from heistwatch.trace.ledger import FEE_SINK, Transfer, normal_address
from heistwatch.trace.policies import Holder, Policy, make_holder
from heistwatch.trace.store import Label

SWAP_CATEGORIES = frozenset({"defi_dex", "swap"})
_SWAP_OUT = -2  # heap marker: pay out a swap's outputs
Asset = tuple[str, str]


@dataclass(frozen=True)
class Seed:
    """Taint the transfers of `tx` (only those paying `dst`, when given) in full."""

    tx: str
    dst: str | None = None


@dataclass(frozen=True)
class Limits:
    """Where tracing stops: hops (transactions), seconds after the first seed, a budget of tainted transfers, and
    thresholds below which taint is dropped (under 5 % of a transfer, FIFO's taint is the honest funds' noise).
    """

    max_hops: int | None = None
    max_seconds: int | None = None
    dust: int = 0
    min_fraction: float = 0.05
    max_tainted: int | None = 200_000


@dataclass(frozen=True)
class Arrival:
    """Tainted value reaching a labelled service."""

    position: int
    address: str
    label: Label
    asset: Asset
    amount: int
    ts: int
    hop: int


@dataclass(frozen=True)
class LimitHit:
    """Taint not followed further because a limit was reached ("limit reached at hop N")."""

    reason: str
    hop: int
    position: int
    address: str
    asset: Asset
    amount: int


@dataclass(eq=False)
class TraceResult:
    """What one policy's trace found: arrivals at services, taint still held, paid as fees, dropped or stopped."""

    graph: TraceGraph
    policy: Policy
    limits: Limits
    seeded: dict[Asset, int] = field(default_factory=dict)
    arrivals: list[Arrival] = field(default_factory=list)
    holdings: dict[tuple[str, Asset], int] = field(default_factory=dict)
    dropped: dict[Asset, int] = field(default_factory=dict)
    fees: dict[Asset, int] = field(default_factory=dict)
    limit_hits: list[LimitHit] = field(default_factory=list)
    tainted: dict[int, int] = field(default_factory=dict)
    parents: dict[int, int] = field(default_factory=dict)
    hops: dict[int, int] = field(default_factory=dict)

    def path(self, position: int) -> list[Transfer]:
        """The tainted transfers from a seed to the transfer at `position`, seed first."""
        chain = []
        while position >= 0:
            chain.append(self.graph.transfer(position))
            position = self.parents.get(position, -1)
        return chain[::-1]


class _Tracer:
    """The replay state of one trace."""

    def __init__(self, graph: TraceGraph, policy: Policy, limits: Limits) -> None:
        self.g, self.c, self.policy, self.limits = graph, graph.cols, policy, limits
        self.result = TraceResult(graph, policy, limits)
        self.processed = np.zeros(len(self.c.src), dtype=np.bool_)
        self.active: dict[int, int] = {}  # address -> generation of its heap cursor
        self.holders: dict[tuple[int, int], Holder] = {}
        self.heap: list[tuple[int, int, int, int]] = []
        self.assets_of: dict[int, set[int]] = {}
        self.generation = 0
        self.labels = graph.label_ids
        self.fee_sink = graph.address_ids.get(FEE_SINK, -1)
        self.start = 0
        self.swaps: dict[tuple[int, int], dict[int, int]] = {}  # (tx, dex) -> tainted input amount per asset
        self.swap_origin: dict[tuple[int, int], int] = {}

    def run(self, seeds: list[int]) -> TraceResult:
        self.start = int(self.c.ts[min(seeds)])
        for pos in seeds:
            heapq.heappush(self.heap, (pos, -1, 0, 0))
        while self.heap:
            pos, address, k, generation = heapq.heappop(self.heap)
            if address == _SWAP_OUT:
                self._pay_swap(pos, k)
                continue
            if address >= 0 and self.active.get(address) != generation:
                continue  # a cursor left behind when the address retired
            if not self.processed[pos]:
                self._seed(pos) if address < 0 else self._group(pos)
            if address in self.active and self.active[address] == generation:
                self._push(address, k + 1)
            budget = self.limits.max_tainted
            if budget is not None and len(self.result.tainted) > budget:
                self._stop_all(pos)
                break
        self._collect_holdings()
        return self.result

    def _stop_all(self, pos: int) -> None:
        """Stop the whole trace (the budget of tainted transfers is spent); held taint stays in the holdings."""
        hop = self.result.hops.get(pos, 0)
        self._stop("size", hop, pos, 0)
        for (tx, dex), tainted in self.swaps.items():
            for asset, amount in tainted.items():
                where = self.swap_origin[(tx, dex)]
                self.result.limit_hits.append(
                    LimitHit("size", hop, where, self.c.addresses[dex], self.c.assets[asset], amount)
                )

    def _seed(self, pos: int) -> None:
        self.processed[pos] = True
        amount = self.c.amount(pos)
        asset = self.c.assets[int(self.c.asset[pos])]
        self.result.seeded[asset] = self.result.seeded.get(asset, 0) + amount
        self.result.hops[pos] = 0
        self._deliver(pos, amount, 0)

    def _group(self, pos: int) -> None:
        """Replay one source's outputs within one transaction together (TIHO needs them all)."""
        c = self.c
        src, tx, asset = int(c.src[pos]), int(c.tx[pos]), int(c.asset[pos])
        end = pos + 1
        while end < len(c.src) and c.tx[end] == tx and c.src[end] == src and c.asset[end] == asset:
            end += 1
        group = [p for p in range(pos, end) if not self.processed[p]]
        amounts = [c.amount(p) for p in group]
        spent = [(0, -1)] * len(group)
        if src in self.active:
            holder = self._holder(src, asset, pos)
            spent = holder.spend(amounts)
            if not holder.carries():
                self._retire(src)
        for p, (taint, origin) in zip(group, spent, strict=True):
            self.processed[p] = True
            self._emit(p, taint, origin)

    def _retire(self, address: int) -> None:
        """Stop replaying an address that holds no more taint; it rejoins (re-balanced) when taint comes back."""
        keys = [(address, asset) for asset in self.assets_of.get(address, ())]
        if any(self.holders[k].carries() for k in keys):
            return
        for key in keys:
            del self.holders[key]
        del self.assets_of[address]
        del self.active[address]

    def _emit(self, pos: int, taint: int, origin: int) -> None:
        """Apply the limits to taint leaving a holder, then deliver it."""
        if taint <= 0:
            self._deliver(pos, 0, 0)
            return
        hop = self.result.hops[origin] + (self.c.tx[pos] != self.c.tx[origin])
        amount, asset = self.c.amount(pos), self.c.assets[int(self.c.asset[pos])]
        lim = self.limits
        if taint < lim.dust or taint < lim.min_fraction * amount:
            self.result.dropped[asset] = self.result.dropped.get(asset, 0) + taint
            taint = 0
        elif lim.max_hops is not None and hop > lim.max_hops:
            taint = self._stop("hops", hop, pos, taint)
        elif lim.max_seconds is not None and int(self.c.ts[pos]) - self.start > lim.max_seconds:
            taint = self._stop("time", hop, pos, taint)
        if taint:
            self.result.parents[pos] = origin
            self.result.hops[pos] = int(hop)
        self._deliver(pos, taint, int(hop))

    def _stop(self, reason: str, hop: int, pos: int, taint: int) -> int:
        src = self.c.addresses[int(self.c.src[pos])]
        asset = self.c.assets[int(self.c.asset[pos])]
        self.result.limit_hits.append(LimitHit(reason, int(hop), pos, src, asset, taint))
        return 0

    def _deliver(self, pos: int, taint: int, hop: int) -> None:
        """Hand a transfer to its receiver: a service absorbs (or swaps) it, an address adds a lot."""
        c = self.c
        dst = int(c.dst[pos])
        if taint:
            self.result.tainted[pos] = taint
        if dst == self.fee_sink:
            if taint:
                asset = c.assets[int(c.asset[pos])]
                self.result.fees[asset] = self.result.fees.get(asset, 0) + taint
            return
        label = self.labels.get(dst)
        if label is not None:
            if label.category in SWAP_CATEGORIES:
                self._swap(pos, dst, taint, hop)
            elif taint:
                asset = c.assets[int(c.asset[pos])]
                arrival = Arrival(pos, c.addresses[dst], label, asset, taint, int(c.ts[pos]), hop)
                self.result.arrivals.append(arrival)
            return
        if taint or dst in self.active:
            holder = self._holder(dst, int(c.asset[pos]), pos)
            holder.receive(c.amount(pos), taint, pos)
            self._activate(dst, pos)

    def _swap(self, pos: int, dex: int, taint: int, hop: int) -> None:
        """Note a tainted input of a swap; its outputs are paid once the heap reaches the first of them."""
        c = self.c
        key = (int(c.tx[pos]), dex)
        if not taint:
            return
        if key not in self.swaps:
            first = pos + 1
            while first < len(c.src) and c.tx[first] == c.tx[pos] and c.src[first] != dex:
                first += 1
            if first == len(c.src) or c.tx[first] != c.tx[pos]:
                asset = c.assets[int(c.asset[pos])]
                self.result.arrivals.append(
                    Arrival(pos, c.addresses[dex], self.labels[dex], asset, taint, int(c.ts[pos]), hop)
                )
                return  # a swap with no output in this transaction keeps the taint, like any service
            self.swaps[key], self.swap_origin[key] = {}, pos
            heapq.heappush(self.heap, (first, _SWAP_OUT, dex, 0))
        tainted = self.swaps[key]
        tainted[int(c.asset[pos])] = tainted.get(int(c.asset[pos]), 0) + taint

    def _pay_swap(self, first: int, dex: int) -> None:
        """Pay a swap's outputs the tainted share of its inputs (the largest share among the input assets)."""
        c, tx = self.c, int(self.c.tx[first])
        tainted, origin = self.swaps.pop((tx, dex)), self.swap_origin.pop((tx, dex))
        begin = first
        while begin and c.tx[begin - 1] == tx:
            begin -= 1
        end = first
        while end < len(c.src) and c.tx[end] == tx:
            end += 1
        totals: dict[int, int] = {}
        for p in range(begin, end):
            if c.dst[p] == dex:
                totals[int(c.asset[p])] = totals.get(int(c.asset[p]), 0) + c.amount(p)
        share, whole = max(((t, totals[a]) for a, t in tainted.items()), key=lambda f: f[0] / f[1])
        for p in range(first, end):
            if c.src[p] == dex and not self.processed[p]:
                self.processed[p] = True
                self._emit(p, c.amount(p) * share // whole, origin)

    def _holder(self, address: int, asset: int, pos: int) -> Holder:
        key = (address, asset)
        if key not in self.holders:
            self.assets_of.setdefault(address, set()).add(asset)
            self.holders[key] = make_holder(self.policy, self._balance_before(address, asset, pos))
        return self.holders[key]

    def _balance_before(self, address: int, asset: int, pos: int) -> int:
        """Net balance of `address` in `asset` from the transfers before `pos` (exact, via 31-bit limbs)."""
        c, events = self.c, self.g.address_events(address)
        events = events[: int(np.searchsorted(events, pos))]
        events = events[c.asset[events] == asset]
        sign = (c.dst[events] == address).astype(np.int64) - (c.src[events] == address).astype(np.int64)
        lo = c.amount_lo[events]
        limbs = (c.amount_hi[events], lo >> 31, lo & ((1 << 31) - 1))
        hi, mid, low = (int((limb * sign).sum()) for limb in limbs)
        return max((hi << 62) + (mid << 31) + low, 0)

    def _activate(self, address: int, pos: int) -> None:
        if address in self.active:
            return
        self.generation += 1
        self.active[address] = self.generation
        events = self.g.address_events(address)
        self._push(address, int(np.searchsorted(events, pos, side="right")))

    def _push(self, address: int, k: int) -> None:
        events = self.g.address_events(address)
        if k < len(events):
            heapq.heappush(self.heap, (int(events[k]), address, k, self.active[address]))

    def _collect_holdings(self) -> None:
        for (address, asset), holder in self.holders.items():
            held = holder.held()
            if held:
                key = (self.c.addresses[address], self.c.assets[asset])
                self.result.holdings[key] = held


def seed_positions(graph: TraceGraph, seeds: list[Seed]) -> list[int]:
    """Positions of the seed transfers; an InputError names a seed that matches nothing."""
    out = []
    for seed in seeds:
        dst = normal_address(seed.dst) if seed.dst else None
        found = [p for p in graph.positions_of(seed.tx) if dst in (None, graph.cols.addresses[graph.cols.dst[p]])]
        if not found:
            raise InputError("seeds", f"no transfer of {seed.tx!r}" + (f" to {seed.dst!r}" if seed.dst else ""))
        out += found
    return sorted(out)


def trace(
    graph: TraceGraph, seeds: list[Seed], policy: Policy = Policy.FIFO, limits: Limits | None = None
) -> TraceResult:
    """Follow the seeds' value forward in time under `policy` and `limits`."""
    if not seeds:
        raise InputError("seeds", "at least one seed transfer is needed")
    return _Tracer(graph, policy, limits or Limits()).run(seed_positions(graph, seeds))
