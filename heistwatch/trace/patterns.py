"""Laundering patterns in a trace's tainted flows: fan-out and fan-in, peel chains (UTXO), dormancy, and deposits
into mixers and exchanges.

Withdrawals from a mixer are not among them: a labelled service absorbs taint, so a trace never follows value
out of one (that needs a pool-matching heuristic the trace does not make).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Container
from dataclasses import dataclass

from heistwatch.trace.ledger import FEE_SINK
from heistwatch.trace.taint import TraceResult

MIXER_CATEGORIES = frozenset({"mixing_service", "coinjoin"})


@dataclass(frozen=True)
class PatternRules:
    """Thresholds: fan width and window, peel share and minimum chain length, and how long tainted value must rest
    at an address to count as dormant (days: a laundering run that is not lying low moves within hours)."""

    min_fan: int = 3
    fan_window: int = 86_400
    max_peel: float = 0.25
    min_peel_steps: int = 3
    min_dormancy: int = 3 * 86_400


@dataclass(frozen=True)
class _Leg:
    pos: int
    tx: str
    ts: int
    src: str
    dst: str
    amount: int


_Key = Callable[[_Leg], str]


def find_patterns(result: TraceResult, rules: PatternRules = PatternRules()) -> dict[str, set[str]]:
    """Transaction ids per pattern name (`fan_out`, `fan_in`, `peel_chain`, `dormancy`, `mixer`,
    `exchange_deposit`) among the tainted transfers."""
    legs = [_leg(result, pos) for pos in sorted(result.tainted)]
    labels = result.graph.labels

    def into(categories: Container[str]) -> set[str]:
        return {leg.tx for leg in legs if leg.dst in labels and labels[leg.dst].category in categories}

    return {
        "fan_out": _fans(legs, labels.keys(), rules, by=lambda leg: leg.src, distinct=lambda leg: leg.dst),
        "fan_in": _fans(legs, labels.keys(), rules, by=lambda leg: leg.dst, distinct=lambda leg: leg.src),
        "peel_chain": _peel_chains(legs, rules),
        "dormancy": _dormant(legs, labels.keys(), rules),
        "mixer": into(MIXER_CATEGORIES),
        "exchange_deposit": into({"exchange"}),
    }


def _leg(result: TraceResult, pos: int) -> _Leg:
    t = result.graph.transfer(pos)
    return _Leg(pos, t.tx, t.ts, t.src, t.dst, t.amount)


def _fans(legs: list[_Leg], services: Container[str], rules: PatternRules, by: _Key, distinct: _Key) -> set[str]:
    """Transactions where one wallet (`by`) pays or is paid tainted value by >= min_fan distinct unlabelled wallets
    (`distinct`) within the window: a fan-out keyed on the sender, a fan-in on the receiver."""
    grouped: dict[str, list[_Leg]] = defaultdict(list)
    for leg in legs:
        if distinct(leg) not in services and FEE_SINK not in (leg.src, leg.dst):
            grouped[by(leg)].append(leg)
    found: set[str] = set()
    for group in grouped.values():
        found |= _fanned(group, rules, distinct)
    return found


def _fanned(legs: list[_Leg], rules: PatternRules, distinct: _Key = lambda leg: leg.dst) -> set[str]:
    """Transactions of one wallet's legs (time order) inside any `fan_window` with >= min_fan distinct others."""
    others: Counter[str] = Counter()
    found: set[str] = set()
    first = marked = 0
    for last, leg in enumerate(legs):
        others[distinct(leg)] += 1
        while leg.ts - legs[first].ts > rules.fan_window:
            gone = distinct(legs[first])
            others[gone] -= 1
            if not others[gone]:
                del others[gone]
            first += 1
        if len(others) >= rules.min_fan:
            found |= {w.tx for w in legs[max(first, marked) : last + 1]}
            marked = last + 1
    return found


def _dormant(legs: list[_Leg], services: Container[str], rules: PatternRules) -> set[str]:
    """Transactions that move tainted value on from an unlabelled address at least `min_dormancy` after the last
    tainted value reached it."""
    arrivals: dict[str, list[int]] = defaultdict(list)
    for leg in legs:
        arrivals[leg.dst].append(leg.ts)
    for times in arrivals.values():
        times.sort()
    found: set[str] = set()
    for leg in legs:
        if leg.src not in arrivals or leg.src in services or leg.src.startswith("tx:"):
            continue
        times = arrivals[leg.src]
        before = bisect_right(times, leg.ts)
        if before and leg.ts - times[before - 1] >= rules.min_dormancy:
            found.add(leg.tx)
    return found


def _peel_chains(legs: list[_Leg], rules: PatternRules) -> set[str]:
    """UTXO peel steps (one payer, two outputs, one small) linked through the large output's address."""
    ins: dict[str, set[str]] = defaultdict(set)
    outs: dict[str, list[_Leg]] = defaultdict(list)
    for leg in legs:
        if leg.dst.startswith("tx:"):
            ins[leg.dst].add(leg.src)
        if leg.src.startswith("tx:") and leg.dst != FEE_SINK:
            outs[leg.src].append(leg)
    steps: dict[str, tuple[str, str]] = {}  # payer -> (tx, address of the large output)
    for node, paid in outs.items():
        small, large = sorted(paid, key=lambda leg: leg.amount) if len(paid) == 2 else (None, None)
        if small and large and len(ins[node]) == 1 and small.amount <= rules.max_peel * (small.amount + large.amount):
            steps[next(iter(ins[node]))] = (small.tx, large.dst)
    return _long_chains(steps, rules.min_peel_steps)


def _long_chains(steps: dict[str, tuple[str, str]], min_steps: int) -> set[str]:
    """The transactions of step chains at least `min_steps` long."""
    found: set[str] = set()
    starts = set(steps) - {nxt for _, nxt in steps.values()}
    for start in starts:
        chain: list[str] = []
        payer = start
        while payer in steps and len(chain) <= len(steps):
            tx, payer = steps[payer]
            chain.append(tx)
        if len(chain) >= min_steps:
            found |= set(chain)
    return found
