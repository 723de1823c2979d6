"""One tracing case: seeds → traces under the chosen and comparison policies → alerts; the call a CLI wraps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from heistwatch.trace.alerts import Alert, build_alerts
from heistwatch.trace.graph import TraceGraph
from heistwatch.trace.policies import Policy
from heistwatch.trace.store import TransferStore
from heistwatch.trace.taint import Limits, Seed, TraceResult, trace

COMPARE = (Policy.HAIRCUT, Policy.POISON)
COMPARE_MAX_HOPS = 8
"""Comparison traces stop here: poison taints whole transfers, so without a hop bound it floods honest traffic."""


@dataclass(frozen=True)
class CaseResult:
    """The primary trace, the comparison traces and the alerts built from them."""

    result: TraceResult
    compared: tuple[TraceResult, ...]
    alerts: list[Alert]


def trace_case(
    source: TransferStore | TraceGraph,
    seeds: list[Seed],
    policy: Policy = Policy.FIFO,
    limits: Limits | None = None,
    compare: Sequence[Policy] = COMPARE,
) -> CaseResult:
    """Trace `seeds` under `policy` (and `compare`, within `COMPARE_MAX_HOPS`, for the alert amounts); build alerts."""
    graph = source if isinstance(source, TraceGraph) else TraceGraph.from_store(source)
    limits = limits or Limits()
    result = trace(graph, seeds, policy, limits)
    bounded = replace(limits, max_hops=min(limits.max_hops or COMPARE_MAX_HOPS, COMPARE_MAX_HOPS))
    compared = tuple(trace(graph, seeds, p, bounded) for p in compare if p is not policy)
    return CaseResult(result, compared, build_alerts([result, *compared]))
