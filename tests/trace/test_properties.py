"""Hypothesis properties: taint never exceeds what was stolen, never appears from nothing, is deterministic."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from heistwatch.trace import Policy, Seed, Transfer, trace
from tests.trace.conftest import eth, graph_of

WALLETS = ["a", "b", "c", "d", "x"]
CONSERVING = [Policy.FIFO, Policy.LIFO, Policy.HAIRCUT, Policy.TIHO]

moves = st.lists(
    st.tuples(st.sampled_from(WALLETS), st.sampled_from([*WALLETS, "svc"]), st.integers(0, 10**20)),
    min_size=1,
    max_size=25,
)


def ledger(stolen: int, rows: list[tuple[str, str, int]]) -> list[Transfer]:
    return [eth("seed", 0, "victim", "a", stolen)] + [eth(f"t{n}", n + 1, s, d, v) for n, (s, d, v) in enumerate(rows)]


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 10**20), moves, st.sampled_from(CONSERVING))
def test_taint_is_conserved_and_bounded(stolen: int, rows: list[tuple[str, str, int]], policy: Policy) -> None:
    graph = graph_of(ledger(stolen, rows), services=("svc",))
    result = trace(graph, [Seed("seed")], policy, limits=None)
    arrived = sum(a.amount for a in result.arrivals)
    total = arrived + sum(result.holdings.values()) + sum(result.dropped.values())
    total += sum(h.amount for h in result.limit_hits)
    assert total == stolen
    assert all(0 < t <= graph.cols.amount(p) for p, t in result.tainted.items())
    assert all(result.path(p)[0].tx == "seed" for p in result.tainted)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 10**6), moves, st.sampled_from(list(Policy)))
def test_trace_is_deterministic(stolen: int, rows: list[tuple[str, str, int]], policy: Policy) -> None:
    graph = graph_of(ledger(stolen, rows), services=("svc",))
    one, two = trace(graph, [Seed("seed")], policy), trace(graph, [Seed("seed")], policy)
    assert one.tainted == two.tainted and one.arrivals == two.arrivals


@settings(max_examples=25, deadline=None)
@given(moves)
def test_no_taint_without_a_tainted_seed(rows: list[tuple[str, str, int]]) -> None:
    graph = graph_of(ledger(0, rows), services=("svc",))
    for policy in Policy:
        result = trace(graph, [Seed("seed")], policy)
        assert not result.tainted or set(result.tainted) == {0}
        assert not result.arrivals and not result.holdings
