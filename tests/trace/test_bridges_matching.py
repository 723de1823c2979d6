"""Bridge links matched jointly: look-alike deposits answered by their own payouts, sibling deposits of one loot."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heistwatch.trace import Label, Seed, TraceGraph, Transfer, TransferStore, trace_case
from heistwatch.trace.bridges import BridgeRules, Price, _marginals, link_bridges
from tests.trace.conftest import eth
from tests.trace.test_bridges import _btc

PRICES = {("eth", "ETH"): Price(2000, 18), ("btc", "BTC"): Price(40_000, 8)}
RULES = BridgeRules(PRICES)
E, BTC = 10**18, 10**8


def _graph(transfers: list[Transfer], exchanges: tuple[str, ...] = ()) -> TraceGraph:
    store = TransferStore()
    store.ingest(transfers)
    labels = [Label(a, "bridge-x", "bridge", "test") for a in ("brE", "brB")]
    store.add_labels(labels + [Label(a, f"exchange-{a}", "exchange", "test") for a in exchanges])
    return TraceGraph.from_store(store)


def _look_alike() -> list[Transfer]:
    """A stranger bridges 100.5 ETH just before the loot's 100 ETH and is paid before the loot is deposited."""
    return [
        eth("theft", 0, "hot", "A", 100 * E),
        eth("stranger", 800, "S", "brE", 1005 * E // 10),
        eth("dep", 1000, "A", "brE", 100 * E),
        *_btc("payS", 950, "brB", [("bc1qs", 500_000_000)]),  # 5.0 BTC: 0.5 % fee on 100.5 ETH
        *_btc("pay", 2200, "brB", [("bc1qb", 498_500_000)]),  # 4.985 BTC: 0.3 % fee on 100 ETH
    ]


def test_a_look_alike_answered_by_its_own_payout_does_not_split_the_link() -> None:
    graph = _graph(_look_alike())
    [link] = link_bridges(graph, graph.positions_of("dep"), RULES)
    assert graph.transfer(link.payout).dst == "bc1qb"
    assert link.confidence > 0.95  # the stranger's deposit fits both payouts, but only its own is free for it
    assert "2 matching deposit(s)" in link.reason
    stranger = link_bridges(graph, graph.positions_of("stranger"), RULES)
    assert [graph.transfer(link.payout).dst for link in stranger] == ["bc1qs", "bc1qb"]
    assert stranger[0].confidence > 0.95 > 0.05 > stranger[1].confidence


def test_two_deposits_that_fit_two_payouts_equally_split_them() -> None:
    transfers = _look_alike()
    transfers[3:] = [*_btc("payS", 1500, "brB", [("bc1qs", 500_000_000)]), *transfers[4:]]
    graph = _graph(transfers)
    links = link_bridges(graph, graph.positions_of("dep"), RULES)
    assert sorted(graph.transfer(link.payout).dst for link in links) == ["bc1qb", "bc1qs"]
    assert 0.3 < links[1].confidence <= links[0].confidence < 0.7


def _siblings() -> list[Transfer]:
    """The loot split over two wallets that bridge 50 ETH each at the same moment; the bridge pays both."""
    out = [
        eth("theft", 0, "hot", "A", 100 * E),
        eth("split1", 100, "A", "A1", 50 * E),
        eth("split2", 100, "A", "A2", 50 * E, index=1),
        eth("dep1", 1000, "A1", "brE", 50 * E),
        eth("dep2", 1000, "A2", "brE", 50 * E),
    ]
    out += _btc("pay1", 2000, "brB", [("bc1q1", 249_000_000)])
    out += _btc("pay2", 2100, "brB", [("bc1q2", 249_100_000)])
    out += _btc("cash1", 9000, "bc1q1", [("bc1qx", 248_990_000)])
    out += _btc("cash2", 9000, "bc1q2", [("bc1qy", 249_090_000)])
    return out


def test_sibling_deposits_of_one_loot_cross_in_full_though_each_link_is_a_toss_up() -> None:
    graph = _graph(_siblings(), exchanges=("bc1qx", "bc1qy"))
    case = trace_case(graph, [Seed("theft")], bridges=RULES)
    assert all(0.3 < link.confidence < 0.7 for link in case.links) and len(case.links) == 4
    beyond = {a.address: a for a in case.alerts if a.chain == "btc"}
    assert set(beyond) == {"bc1qx", "bc1qy"}
    assert all(a.confidence > 0.95 for a in beyond.values())
    assert beyond["bc1qx"].amount == 248_990_000  # both deposits are wholly tainted, so the whole payout is
    assert len(case.crossings) == 2


def test_a_payout_that_an_untainted_deposit_explains_as_well_is_not_crossed() -> None:
    transfers = _siblings()
    transfers[2] = eth("split2", 100, "clean", "A2", 50 * E)  # A2's deposit is not the loot's
    graph = _graph(transfers, exchanges=("bc1qx", "bc1qy"))
    case = trace_case(graph, [Seed("theft")], bridges=RULES)
    assert case.crossings == () and {a.address for a in case.alerts} == {"brE"}
    low = trace_case(graph, [Seed("theft")], bridges=replace(RULES, min_confidence=0.4))
    assert {a.address for a in low.alerts if a.chain == "btc"} == {"bc1qx", "bc1qy"}
    assert all(a.confidence < 0.7 for a in low.alerts if a.chain == "btc")


def test_a_payout_outside_the_fee_band_and_tolerance_is_no_candidate() -> None:
    graph = _graph(_look_alike())
    strict = BridgeRules(PRICES, fee=(0.004, 0.006), tolerance=0.0)
    links = link_bridges(graph, graph.positions_of("dep"), strict)  # the true payout's 0.3 % fee is below the band
    assert [graph.transfer(link.payout).dst for link in links] == []


fits = st.lists(st.dictionaries(st.integers(0, 3), st.floats(0.01, 1.0), max_size=4), min_size=1, max_size=4).filter(
    lambda rows: bool(rows[0])
)


@settings(max_examples=60, deadline=None)
@given(fits, st.floats(0.001, 0.5))
def test_joint_marginals_equal_brute_force_over_matchings(rows: list[dict[int, float]], unmatched: float) -> None:
    payouts = 4
    found = _marginals(rows, payouts, unmatched)
    totals = dict.fromkeys(rows[0], 0.0)
    whole = 0.0
    for choice in itertools.product(*[[None, *row] for row in rows]):
        taken = [j for j in choice if j is not None]
        if len(taken) != len(set(taken)):
            continue
        weight = math.prod(rows[i][j] if j is not None else unmatched for i, j in enumerate(choice))
        weight *= unmatched ** (payouts - len(taken))
        whole += weight
        if choice[0] is not None:
            totals[choice[0]] += weight
    assert found.keys() == totals.keys()
    for j, value in totals.items():
        assert found[j] == pytest.approx(value / whole, rel=1e-9)
    assert sum(found.values()) <= 1 + 1e-9
