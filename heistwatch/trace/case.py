"""One tracing case: seeds → traces under the chosen and comparison policies → bridges crossed → alerts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from heistwatch.trace.alerts import Alert, build_alerts, merge_alerts
from heistwatch.trace.bridges import BridgeLink, BridgeRules, Crossing, cross_bridges, crossing_alerts
from heistwatch.trace.graph import TraceGraph
from heistwatch.trace.policies import Policy
from heistwatch.trace.store import TransferStore
from heistwatch.trace.taint import Limits, Seed, TraceResult, seed_positions, trace

COMPARE = (Policy.HAIRCUT, Policy.POISON)
COMPARE_MAX_HOPS = 8
"""Comparison traces stop here: poison taints whole transfers, so without a hop bound it floods honest traffic."""


@dataclass(frozen=True)
class CaseResult:
    """The primary trace, the comparison traces, the bridge links and the traces past them, and the alerts."""

    result: TraceResult
    compared: tuple[TraceResult, ...]
    alerts: list[Alert]
    links: tuple[BridgeLink, ...] = ()
    crossings: tuple[Crossing, ...] = ()


def trace_case(
    source: TransferStore | TraceGraph,
    seeds: list[Seed],
    policy: Policy = Policy.FIFO,
    limits: Limits | None = None,
    compare: Sequence[Policy] = COMPARE,
    *,
    bridges: BridgeRules | None = None,
) -> CaseResult:
    """Trace `seeds` under `policy` (and `compare`, within `COMPARE_MAX_HOPS`, for the alert amounts); build alerts.

    With `bridges` (which needs the caller's price table), tainted deposits into bridges are linked to payouts on
    other chains and tracing continues past the confident links; without it bridges absorb taint like any service.
    """
    graph = source if isinstance(source, TraceGraph) else TraceGraph.from_store(source)
    limits = limits or Limits()
    result = trace(graph, seeds, policy, limits)
    bounded = replace(limits, max_hops=min(limits.max_hops or COMPARE_MAX_HOPS, COMPARE_MAX_HOPS))
    compared = tuple(trace(graph, seeds, p, bounded) for p in compare if p is not policy)
    traced = [result, *compared]
    alerts = build_alerts(traced)
    if bridges is None:
        return CaseResult(result, compared, alerts)
    start = int(graph.cols.ts[seed_positions(graph, seeds)[0]])
    links, crossings = cross_bridges(graph, traced, bridges, start)
    policies = [str(r.policy) for r in traced]
    beyond = [a for crossing in crossings for a in crossing_alerts(crossing, policies)]
    return CaseResult(
        result, compared, merge_alerts(alerts + beyond) if beyond else alerts, tuple(links), tuple(crossings)
    )
