"""Laundering tradecraft seen in a trace, as attribution evidence (`laundering:*` items for `heistwatch.attribute`).

Peel chains, fan-outs and fan-ins, dormant loot, mixer deposits, CoinJoin participation, bridges, swaps and
exchange deposits are how DPRK-linked thieves
have laundered exchange thefts (DOJ/OFAC 2020, OFAC 2022 on Tornado Cash); seen in the flow of a theft, each is
an item the attribute stage can weigh like a technique. ATT&CK has no laundering techniques, so the items are
heistwatch's own, named like the other non-ATT&CK items (`name:…`, `sector:…`).
"""

from __future__ import annotations

from collections.abc import Mapping

from heistwatch.attribute.model import Evidence
from heistwatch.trace.cluster import load_clustering
from heistwatch.trace.ledger import tx_node
from heistwatch.trace.patterns import MIXER_CATEGORIES, find_patterns
from heistwatch.trace.store import Label, TransferStore
from heistwatch.trace.taint import SWAP_CATEGORIES, TraceResult

KIND = "laundering"
BRIDGE_CATEGORIES = frozenset({"bridge", "defi_bridge"})
# Item per fact, and how often such a detection is right: the pattern finder's rules (a fan-out is the least
# specific shape, batch payouts look alike) and, for service facts, the label; a label a cluster propagated
# is only as good as the clustering that carried it, so it counts at CLUSTER_LABEL_FACTOR of that.
ITEMS = {
    "peel_chain": ("laundering:peel-chain", 0.9),
    "fan_out": ("laundering:fan-out", 0.8),
    "fan_in": ("laundering:fan-in", 0.7),
    "dormancy": ("laundering:dormancy", 0.8),
    "exchange_deposit": ("laundering:exchange-deposit", 0.95),
    "mixer": ("laundering:mixer", 0.95),
    "coinjoin": ("laundering:coinjoin", 0.9),
    "bridge": ("laundering:bridge", 0.95),
    "swap": ("laundering:swap", 0.95),
}
CLUSTER_LABEL_FACTOR = 0.8


def laundering_evidence(
    result: TraceResult,
    patterns: Mapping[str, set[str]] | None = None,
    store: TransferStore | None = None,
    clustering: int | None = None,
    source: str = "trace",
) -> list[Evidence]:
    """One evidence item per laundering fact found in the tainted flows of `result`.

    `patterns` defaults to `find_patterns(result)`; with a `store` and a `clustering` version, tainted value
    entering a transaction that version excluded as a CoinJoin counts as CoinJoin participation. Every item has
    the trace as origin, so repeating the facts elsewhere in the same case does not count them twice.
    """
    found = {name: len(txs) for name, txs in (patterns or find_patterns(result)).items() if txs and name in ITEMS}
    reliability = {name: ITEMS[name][1] for name in found}
    for name, labels in _service_facts(result).items():
        found[name] = found.get(name, 0) + len(labels)
        reliability[name] = max(_label_reliability(name, label) for label in labels)
    if store is not None and clustering is not None:
        joined = _coinjoins_entered(result, store, clustering)
        if joined:
            found["coinjoin"], reliability["coinjoin"] = joined, ITEMS["coinjoin"][1]
    origin = f"{source}:{result.policy}"
    return [
        Evidence(ITEMS[name][0], KIND, f"{source}: {count} {name.replace('_', ' ')} fact(s)", reliability[name], origin)
        for name, count in sorted(found.items())
    ]


def _service_facts(result: TraceResult) -> dict[str, list[Label]]:
    """Labels of the mixers, bridges and swap services the tainted value entered, by fact name."""
    facts: dict[str, list[Label]] = {}
    graph = result.graph
    for pos in result.tainted:
        label = graph.label_ids.get(int(graph.cols.dst[pos]))
        if label is None:
            continue
        name = (
            "mixer"
            if label.category in MIXER_CATEGORIES
            else "bridge"
            if label.category in BRIDGE_CATEGORIES
            else "swap"
            if label.category in SWAP_CATEGORIES
            else None
        )
        if name:
            facts.setdefault(name, []).append(label)
    return facts


def _label_reliability(name: str, label: Label) -> float:
    base = ITEMS[name][1]
    return base * CLUSTER_LABEL_FACTOR if label.source.startswith("cluster v") else base


def _coinjoins_entered(result: TraceResult, store: TransferStore, clustering: int) -> int:
    """How many CoinJoin transactions (as excluded by clustering version `clustering`) took tainted value."""
    load_clustering(store, clustering)  # NotFoundError for a version the ledger does not hold
    rows = store.con.execute("SELECT tx FROM cluster_exclusions WHERE version = ?", [clustering]).fetchall()
    coinjoin_nodes = {tx_node(str(tx)) for (tx,) in rows}
    names, dst = result.graph.cols.addresses, result.graph.cols.dst
    return len({names[int(dst[pos])] for pos in result.tainted} & coinjoin_nodes)
