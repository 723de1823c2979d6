"""Scores of a traced case against the simulator's ground truth (used by tests and the benchmark only)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from heistwatch.trace.alerts import Alert
from heistwatch.trace.simulate import Truth

PATTERNS = ("fan_out", "peel_chain", "mixer")


@dataclass(frozen=True)
class Scores:
    """Alert recall (without and across bridges) / precision / false-service rate, amounts, pattern F1."""

    recall: float
    bridge_recall: float
    precision: float
    false_service_rate: float
    amount_within_5pct: float
    patterns: dict[str, float]
    alerts: int
    reachable_endpoints: int
    bridged_endpoints: int


def score_case(
    truth: Truth, alerts: list[Alert], patterns: Mapping[str, set[str]], services: Collection[str]
) -> Scores:
    """Score alerts and patterns; `recall` leaves out endpoints past a mixer or bridge, `bridge_recall` scores the
    service endpoints reached across a bridge (and no mixer) on their own.
    """
    found = {(a.address, (a.chain, a.asset)): a.amount for a in alerts}
    reachable = {k: v for k, v in truth.endpoints.items() if k[0] in services and k not in truth.hidden}
    bridged = [k for k in truth.bridged if k[0] in services]
    hits = [k for k in reachable if k in found]
    true_alerts = [k for k in found if k in truth.endpoints]
    reached = {address for address, _ in truth.endpoints}
    honest = [s for s in services if s not in reached]
    false_alerted = {address for address, _ in found} - reached
    return Scores(
        recall=len(hits) / max(len(reachable), 1),
        bridge_recall=sum(k in found for k in bridged) / max(len(bridged), 1),
        precision=len(true_alerts) / max(len(found), 1),
        false_service_rate=len(false_alerted) / max(len(honest), 1),
        amount_within_5pct=_within(truth, reachable, found, 0.05),
        patterns={
            name: _f1(truth.patterns.get(name, set()) - truth.hidden_txs, patterns.get(name, set()))
            for name in PATTERNS
        },
        alerts=len(found),
        reachable_endpoints=len(reachable),
        bridged_endpoints=len(bridged),
    )


def _within(
    truth: Truth,
    reachable: Mapping[tuple[str, tuple[str, str]], int],
    found: Mapping[tuple[str, tuple[str, str]], int],
    tolerance: float,
) -> float:
    """Share of the reachable stolen value (in USD) whose traced amount is within `tolerance` of the truth."""
    total = good = 0
    for key, amount in reachable.items():
        value = truth.usd_cents(key[1], amount)
        total += value
        if abs(found.get(key, 0) - amount) <= tolerance * amount:
            good += value
    return good / max(total, 1)


def _f1(truth: set[str], found: set[str]) -> float:
    """F1 of a found set against a true set (1.0 when both are empty)."""
    if not truth and not found:
        return 1.0
    hits = len(truth & found)
    return 2 * hits / (len(truth) + len(found))
