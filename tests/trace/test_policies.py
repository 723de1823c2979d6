"""Each taint policy on tiny hand-built graphs: amounts, value conservation, limits, swaps and UTXO order."""

from __future__ import annotations

import pytest

from heistwatch.errors import InputError
from heistwatch.trace import Limits, Policy, Seed, TraceResult, UtxoInput, UtxoOutput, UtxoTx, flatten_utxo, trace
from tests.trace.conftest import eth, graph_of

# A gets 10 stolen, then 10 clean; pays B 4, D 8, E 8 in three transactions; B, D, E are exchanges.
LEDGER = [
    eth("t0", 1, "victim", "A", 10),
    eth("t1", 2, "clean", "A", 10),
    eth("t2", 3, "A", "B", 4),
    eth("t3", 4, "A", "D", 8),
    eth("t4", 5, "A", "E", 8),
]


def arrived(result: TraceResult) -> dict[str, int]:
    out: dict[str, int] = {}
    for a in result.arrivals:
        out[a.address] = out.get(a.address, 0) + a.amount
    return out


def conserved(result: TraceResult) -> bool:
    total = sum(a.amount for a in result.arrivals) + sum(result.holdings.values()) + sum(result.dropped.values())
    total += sum(result.fees.values()) + sum(h.amount for h in result.limit_hits)
    return total == sum(result.seeded.values())


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (Policy.FIFO, {"B": 4, "D": 6}),
        (Policy.LIFO, {"D": 2, "E": 8}),
        (Policy.HAIRCUT, {"B": 2, "D": 4, "E": 4}),
        (Policy.POISON, {"B": 4, "D": 8, "E": 8}),
        (Policy.TIHO, {"B": 4, "D": 6}),
    ],
)
def test_policy_amounts(policy: Policy, expected: dict[str, int]) -> None:
    result = trace(graph_of(LEDGER, services=("B", "D", "E")), [Seed("t0")], policy)
    assert arrived(result) == expected
    assert conserved(result) or policy is Policy.POISON


def test_highest_out_fills_the_largest_output_first() -> None:
    ledger = [*LEDGER[:2], eth("t2", 3, "A", "B", 6, index=0), eth("t2", 3, "A", "D", 8, index=1)]
    graph = graph_of(ledger, services=("B", "D"))
    assert arrived(trace(graph, [Seed("t0")], Policy.TIHO)) == {"D": 8, "B": 2}
    assert arrived(trace(graph, [Seed("t0")], Policy.FIFO)) == {"B": 6, "D": 4}


def test_unspent_taint_is_held_and_counted() -> None:
    result = trace(graph_of(LEDGER[:3], services=("B",)), [Seed("t0")])
    assert result.holdings == {("A", ("eth", "ETH")): 6}
    assert conserved(result)


def test_hop_limit_stops_and_reports_the_hop() -> None:
    chain = [eth(f"t{n}", n, f"w{n}", f"w{n + 1}", 100) for n in range(6)]
    result = trace(graph_of(chain, services=("w6",)), [Seed("t0")], limits=Limits(max_hops=3))
    assert not result.arrivals
    assert [(h.reason, h.hop, h.address) for h in result.limit_hits] == [("hops", 4, "w4")]
    assert conserved(result)


def test_time_limit_and_dust_threshold() -> None:
    ledger = [eth("t0", 0, "v", "A", 100), eth("t1", 10, "A", "X", 1), eth("t2", 5_000, "A", "Y", 99)]
    result = trace(graph_of(ledger, services=("X", "Y")), [Seed("t0")], limits=Limits(max_seconds=1_000, dust=2))
    assert result.dropped == {("eth", "ETH"): 1}
    assert [h.reason for h in result.limit_hits] == ["time"]
    assert conserved(result)


def test_min_fraction_drops_diluted_taint() -> None:
    ledger = [eth("t0", 0, "v", "A", 1), eth("t1", 1, "c", "A", 99), eth("t2", 2, "A", "X", 100)]
    graph = graph_of(ledger, services=("X",))
    assert arrived(trace(graph, [Seed("t0")], Policy.HAIRCUT, Limits(min_fraction=0.0))) == {"X": 1}
    assert not trace(graph, [Seed("t0")], Policy.HAIRCUT).arrivals  # 1 % of a transfer is under the default 5 %


def test_swap_continues_in_the_output_asset() -> None:
    ledger = [
        eth("t0", 0, "v", "A", 1_000_000, "USDT"),
        eth("t1", 1, "A", "dex", 1_000_000, "USDT", 0),
        eth("t1", 1, "dex", "A", 500, "ETH", 1),
        eth("t2", 2, "A", "X", 500),
    ]
    result = trace(graph_of(ledger, services=("X",), dexes=("dex",)), [Seed("t0")])
    assert [(a.address, a.asset, a.amount, a.hop) for a in result.arrivals] == [("X", ("eth", "ETH"), 500, 2)]
    assert [t.tx for t in result.path(result.arrivals[0].position)] == ["t0", "t1", "t1", "t2"]


def test_utxo_inputs_pay_outputs_in_order() -> None:
    fund = [eth("f0", 0, "v", "T", 5), eth("f1", 0, "c", "C", 5)]
    tx = UtxoTx("u1", 1, "eth", "ETH", (UtxoInput("C", 5), UtxoInput("T", 5)), (UtxoOutput("X", 5), UtxoOutput("Y", 4)))
    result = trace(graph_of(fund + flatten_utxo(tx), services=("X", "Y")), [Seed("f0")])
    assert arrived(result) == {"Y": 4}
    assert result.fees == {("eth", "ETH"): 1}
    assert result.arrivals[0].hop == 1
    assert conserved(result)


def test_unknown_seed_and_bad_amounts_are_input_errors() -> None:
    graph = graph_of(LEDGER, services=("B",))
    with pytest.raises(InputError, match="no transfer"):
        trace(graph, [Seed("nope")])
    with pytest.raises(InputError, match="at least one"):
        trace(graph, [])
    with pytest.raises(InputError, match="outputs exceed"):
        flatten_utxo(UtxoTx("u", 0, "btc", "BTC", (UtxoInput("a", 1),), (UtxoOutput("b", 2),)))
    with pytest.raises(InputError, match="must be an int"):
        graph_of([eth("t", 0, "a", "b", -1)])


def test_swap_with_two_tainted_inputs_passes_on_both() -> None:
    ledger = [
        eth("t0", 0, "v", "A", 600, "USDT"),
        eth("t0", 0, "v", "B", 400, "USDT", 1),
        eth("t1", 1, "A", "dex", 600, "USDT", 0),
        eth("t1", 1, "B", "dex", 400, "USDT", 1),
        eth("t1", 1, "c", "dex", 1000, "USDT", 2),
        eth("t1", 1, "dex", "C", 1000, "ETH", 3),
        eth("t2", 2, "C", "X", 1000),
    ]
    result = trace(graph_of(ledger, services=("X",), dexes=("dex",)), [Seed("t0")])
    assert arrived(result) == {"X": 500}  # half the swap's input was stolen, so half its output is


def test_swap_without_an_output_keeps_the_taint_at_the_dex() -> None:
    ledger = [eth("t0", 0, "v", "A", 10, "USDT"), eth("t1", 1, "A", "dex", 10, "USDT")]
    result = trace(graph_of(ledger, dexes=("dex",)), [Seed("t0")])
    assert arrived(result) == {"dex": 10} and conserved(result)
