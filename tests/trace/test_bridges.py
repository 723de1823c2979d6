"""Bridge links and traces continued across them: a hand-made two-chain case and the simulator's small world."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace

import pytest

from heistwatch.errors import InputError
from heistwatch.trace import (
    Label,
    Limits,
    Seed,
    TraceGraph,
    Transfer,
    TransferStore,
    UtxoInput,
    UtxoOutput,
    UtxoTx,
    find_patterns,
    flatten_utxo,
    freeze_request_csv,
    freeze_request_json,
    simulate,
    trace_case,
)
from heistwatch.trace.alerts import alert_dict
from heistwatch.trace.bridges import BridgeRules, Price, link_bridges
from heistwatch.trace.evaluate import score_case
from heistwatch.trace.simulate import SIZES, bridge_prices
from tests.trace.conftest import eth

ETH, BTC = ("eth", "ETH"), ("btc", "BTC")
PRICES = {ETH: Price(2000, 18), BTC: Price(40_000, 8)}
RULES = BridgeRules(PRICES)
E, DAY = 10**18, 86_400
# 100 ETH ($200k) into the bridge at t=1000; the true payout is 4.985 BTC ($199.4k, a 0.3 % fee) 20 minutes later.
PAID = 498_500_000


def _btc(tx: str, ts: int, src: str, outputs: list[tuple[str, int]], fee: int = 10_000) -> list[Transfer]:
    total = sum(a for _, a in outputs) + fee
    return flatten_utxo(UtxoTx(tx, ts, "btc", "BTC", (UtxoInput(src, total),), tuple(UtxoOutput(*o) for o in outputs)))


def _ledger(competing_deposit: bool = False) -> list[Transfer]:
    """A holds 20 clean ETH, gets 80 stolen, bridges all 100; the bridge pays B (true), C (other amount), D (3 days)."""
    out = [
        eth("old", -10, "payer", "A", 20 * E),
        eth("theft", 0, "hot", "A", 80 * E),
        eth("dep", 1000, "A", "brE", 100 * E),
    ]
    if competing_deposit:
        out.append(eth("dep2", 1100, "stranger", "brE", 100 * E))
    out += _btc("pay", 1000 + 1200, "brB", [("bc1qb", PAID)])
    out += _btc("payC", 1000 + 900, "brB", [("bc1qc", 300_000_000)])
    out += _btc("payD", 1000 + 3 * DAY, "brB", [("bc1qd", PAID)])
    out += _btc("cashB", 9000, "bc1qb", [("bc1qx", PAID - 10_000)])
    out += _btc("cashC", 9000, "bc1qc", [("bc1qy", 300_000_000 - 10_000)])
    out += _btc("cashD", 4 * DAY, "bc1qd", [("bc1qz", PAID - 10_000)])
    return out


def _graph(transfers: list[Transfer]) -> TraceGraph:
    store = TransferStore()
    store.ingest(transfers)
    labels = [Label(a, "bridge-x", "bridge", "test") for a in ("brE", "brB")]
    store.add_labels(labels + [Label(a, f"exchange-{a[-1]}", "exchange", "test") for a in ("bc1qx", "bc1qy", "bc1qz")])
    return TraceGraph.from_store(store)


@pytest.fixture(scope="module")
def graph() -> TraceGraph:
    return _graph(_ledger())


def _deposit(graph: TraceGraph) -> int:
    return graph.positions_of("dep")[0]


def _payee(graph: TraceGraph, position: int) -> str:
    return graph.transfer(position).dst


def test_the_payout_with_the_converted_value_minutes_later_is_the_one_clear_link(graph: TraceGraph) -> None:
    links = link_bridges(graph, [_deposit(graph)], RULES)
    assert [_payee(graph, link.payout) for link in links] == ["bc1qb"]
    assert links[0].deposit == _deposit(graph)
    assert links[0].confidence > 0.95
    assert "0.30%" in links[0].reason and "20 min later" in links[0].reason


def test_competing_candidates_split_the_confidence_best_first(graph: TraceGraph) -> None:
    alone = link_bridges(graph, [_deposit(graph)], RULES)[0].confidence
    wide = link_bridges(graph, [_deposit(graph)], replace(RULES, window=4 * DAY))
    assert [_payee(graph, link.payout) for link in wide] == ["bc1qb", "bc1qd"]  # never C: another amount
    assert alone > wide[0].confidence > wide[1].confidence > 0
    rival = _graph(_ledger(competing_deposit=True))
    shared = link_bridges(rival, [_deposit(rival)], RULES)[0]
    assert shared.confidence < 0.6 * alone and "2 matching deposit(s)" in shared.reason


def test_a_deposit_id_in_both_legs_decides_alone(graph: TraceGraph) -> None:
    memo = {"dep": "n42", "payC": "n42", "pay": "n7"}
    rules = replace(RULES, deposit_id=lambda t: memo.get(t.tx))
    links = link_bridges(graph, [_deposit(graph)], rules)
    assert [(_payee(graph, link.payout), link.confidence) for link in links] == [("bc1qc", 1.0)]
    assert "deposit id n42" in links[0].reason


def test_no_price_no_link_and_a_non_bridge_deposit_is_an_input_error(graph: TraceGraph) -> None:
    assert link_bridges(graph, [_deposit(graph)], BridgeRules({ETH: PRICES[ETH]})) == []
    with pytest.raises(InputError, match="does not pay a bridge"):
        link_bridges(graph, graph.positions_of("theft"), RULES)


def test_the_trace_continues_past_the_bridge_with_the_links_confidence(graph: TraceGraph) -> None:
    case = trace_case(graph, [Seed("theft")], bridges=RULES)
    alerts = {a.address: a for a in case.alerts}
    assert set(alerts) == {"brE", "bc1qx"}
    bridge, beyond = alerts["brE"], alerts["bc1qx"]
    assert bridge.confidence == 1.0 and bridge.amount == 80 * E  # FIFO: the 20 clean ETH left first
    link = case.links[0]
    assert beyond.confidence == link.confidence == case.crossings[0].confidence
    assert beyond.chain == "btc" and beyond.amount == (PAID - 10_000) * 8 // 10  # scaled by the tainted share
    assert beyond.amounts["poison"] == PAID - 10_000  # poison taints the whole deposit
    assert [t.tx for t in beyond.path] == ["theft", "dep", "pay", "cashB", "cashB"]
    assert beyond.hops == 3 and bridge.hops == 1


def test_alerts_carry_their_confidence_into_the_freeze_requests(graph: TraceGraph) -> None:
    alerts = trace_case(graph, [Seed("theft")], bridges=RULES).alerts
    doc = json.loads(freeze_request_json(alerts, "case"))
    assert [a["confidence"] for a in doc["alerts"]] == [round(a.confidence, 4) for a in alerts]
    assert min(a["confidence"] for a in doc["alerts"]) < 1.0
    rows = list(csv.DictReader(io.StringIO(freeze_request_csv(alerts))))
    assert [float(r["confidence"]) for r in rows] == [round(a.confidence, 4) for a in alerts]
    assert alert_dict(alerts[0])["path"][0]["tx"] == "theft"


def test_without_rules_or_without_bridges_the_case_is_what_it_was(graph: TraceGraph) -> None:
    plain = trace_case(graph, [Seed("theft")])
    assert [a.address for a in plain.alerts] == ["brE"] and plain.links == () and plain.crossings == ()
    ledger = [eth("t0", 1, "victim", "A", 10), eth("t1", 2, "clean", "A", 10), eth("t2", 3, "A", "B", 4)]
    store = TransferStore()
    store.ingest(ledger)
    store.add_labels([Label("B", "svc", "exchange", "test")])
    other = TraceGraph.from_store(store)
    linked, before = trace_case(other, [Seed("t0")], bridges=RULES), trace_case(other, [Seed("t0")])
    assert linked.alerts == before.alerts and linked.links == () and linked.crossings == ()
    assert linked.result.arrivals == before.result.arrivals and linked.result.holdings == before.result.holdings


def test_a_bridge_beyond_the_hop_limit_is_linked_but_not_crossed(graph: TraceGraph) -> None:
    case = trace_case(graph, [Seed("theft")], limits=Limits(max_hops=1), bridges=RULES)
    assert len(case.links) == 1 and case.crossings == ()
    assert [a.address for a in case.alerts] == ["brE"]


def test_small_world_cash_outs_across_the_bridge_are_found() -> None:
    """Seed 2's world; in seed 1's one P2P trader's later payments, followed by FIFO, cost precision (0.84)."""
    sim = simulate("small", seed=2)
    store = TransferStore()
    store.ingest(sim.transfers)
    store.add_labels(sim.labels)
    case = trace_case(store, sim.seeds, bridges=BridgeRules(bridge_prices()))
    scores = score_case(sim.truth, case.alerts, find_patterns(case.result), [lb.address for lb in sim.labels])
    assert scores.bridged_endpoints > 20
    assert scores.bridge_recall >= 0.7 and scores.precision >= 0.9 and scores.recall >= 0.95
    assert case.crossings and all(a.confidence <= 1.0 for a in case.alerts)
    assert any(a.confidence < 1.0 and a.chain == "btc" for a in case.alerts)


def test_noisy_bridges_change_only_the_bridge_legs() -> None:
    plain = simulate(SIZES["small"], seed=2)
    noisy = simulate(replace(SIZES["small"], noisy_bridges=True), seed=2)
    skip = {lb.address for lb in plain.labels if lb.category == "bridge"} | set(plain.truth.owners)
    kept = {t for t in plain.transfers if not {t.src, t.dst} & skip and not t.src.startswith("tx:")}
    assert len(kept) > 50_000 and kept <= set(noisy.transfers)
    assert len(noisy.transfers) > len(plain.transfers)
    assert noisy.truth.endpoints.keys() == plain.truth.endpoints.keys()
