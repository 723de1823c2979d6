"""Laundering patterns in a trace's tainted flows: fan-out, peel chains (UTXO) and mixer deposits."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Container
from dataclasses import dataclass

from heistwatch.trace.ledger import FEE_SINK
from heistwatch.trace.taint import TraceResult

MIXER_CATEGORIES = frozenset({"mixing_service", "coinjoin"})


@dataclass(frozen=True)
class PatternRules:
    """Thresholds: fan-out width and window, peel share and minimum chain length."""

    min_fan: int = 3
    fan_window: int = 86_400
    max_peel: float = 0.25
    min_peel_steps: int = 3


@dataclass(frozen=True)
class _Leg:
    pos: int
    tx: str
    ts: int
    src: str
    dst: str
    amount: int


def find_patterns(result: TraceResult, rules: PatternRules = PatternRules()) -> dict[str, set[str]]:
    """Transaction ids per pattern name (`fan_out`, `peel_chain`, `mixer`) among the tainted transfers."""
    legs = [_leg(result, pos) for pos in sorted(result.tainted)]
    labels = result.graph.labels
    return {
        "fan_out": _fan_outs(legs, labels.keys(), rules),
        "peel_chain": _peel_chains(legs, rules),
        "mixer": {leg.tx for leg in legs if leg.dst in labels and labels[leg.dst].category in MIXER_CATEGORIES},
    }


def _leg(result: TraceResult, pos: int) -> _Leg:
    t = result.graph.transfer(pos)
    return _Leg(pos, t.tx, t.ts, t.src, t.dst, t.amount)


def _fan_outs(legs: list[_Leg], services: Container[str], rules: PatternRules) -> set[str]:
    """Senders paying tainted value to >= min_fan distinct unlabelled wallets within the window."""
    by_src: dict[str, list[_Leg]] = defaultdict(list)
    for leg in legs:
        if leg.dst not in services and leg.dst != FEE_SINK:
            by_src[leg.src].append(leg)
    found: set[str] = set()
    for outs in by_src.values():
        found |= _fanned(outs, rules)
    return found


def _fanned(outs: list[_Leg], rules: PatternRules) -> set[str]:
    """Transactions of one sender's legs (time order) inside any `fan_window` that pays >= min_fan wallets."""
    payees: Counter[str] = Counter()
    found: set[str] = set()
    first = marked = 0
    for last, leg in enumerate(outs):
        payees[leg.dst] += 1
        while leg.ts - outs[first].ts > rules.fan_window:
            payees[outs[first].dst] -= 1
            if not payees[outs[first].dst]:
                del payees[outs[first].dst]
            first += 1
        if len(payees) >= rules.min_fan:
            found |= {w.tx for w in outs[max(first, marked) : last + 1]}
            marked = last + 1
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
