"""Clustering benchmark: addresses clustered per second and accuracy against the simulator's truth.

A seeded world from `heistwatch.trace.simulate` is ingested into a DuckDB file and clustered with the default
parameters (`repeats` times, each a new version; the median is quoted). Accuracy is pairwise: precision over the
BTC addresses whose owner the simulator knows (attacker wallets, and labelled services under their service name),
recall over the attacker wallets' pairs (the simulator records no owner for honest users). It is scored at the
default change threshold and at a looser one. The deposit-address heuristic is scored by hiding the labels of the
ETH deposit addresses (the first label of each exchange is its hot wallet) and counting which come back.
Anchor, in the same run: the bare multi-input clustering most tools start from (inputs grouped per transaction in
DuckDB, scipy connected components; no CoinJoin exclusion, no change, no deposits, no provenance written).
Run: .venv/bin/python benchmarks/trace_cluster.py [--size small|full] [--seed 0] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from heistwatch.trace import TransferStore, simulate
from heistwatch.trace.cluster import ClusterParams, cluster_addresses, cluster_labels, cluster_members, pair_scores
from heistwatch.trace.simulate import Simulation

LOOSE = 0.85
_BARE = """
SELECT i.src AS a, min(i.src) OVER (PARTITION BY i.dst) AS b FROM transfers i
WHERE i.dst IN (SELECT id FROM addresses WHERE address LIKE 'tx:%')
"""


def _anchor(store: TransferStore) -> float:
    """Seconds for bare multi-input clustering of the same store."""
    start = time.perf_counter()
    got = store.con.execute(_BARE).fetchnumpy()
    a, b = np.asarray(got["a"], dtype=np.int64), np.asarray(got["b"], dtype=np.int64)
    n = len(store.address_index())
    connected_components(coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n)), directed=False)
    return time.perf_counter() - start


def _accuracy(store: TransferStore, sim: Simulation, version: int) -> dict[str, Any]:
    members = cluster_members(store, version)
    attackers = {a: o for a, o in sim.truth.owners.items() if a.startswith("bc1")}
    known = attackers | {lb.address: lb.service for lb in sim.labels if lb.address.startswith("bc1")}
    precision, recall = pair_scores(members, known), pair_scores(members, attackers)
    return {
        "precision": round(precision.precision, 4),
        "predicted_pairs": precision.predicted_pairs,
        "recall": round(recall.recall, 4),
        "attacker_pairs": recall.true_pairs,
    }


def _deposit_recovery(store: TransferStore, sim: Simulation) -> dict[str, Any]:
    """Hide the ETH deposit-address labels, cluster with the deposit heuristic alone, count what comes back."""
    hot: dict[str, str] = {}
    for lb in sim.labels:
        if lb.category == "exchange" and lb.address.startswith("0x"):
            hot.setdefault(lb.service, lb.address)
    deposits = {
        lb.address: lb.service for lb in sim.labels if lb.category == "exchange" and lb.address.startswith("0x")
    }
    deposits = {a: s for a, s in deposits.items() if hot[s] != a}
    store.con.execute("DELETE FROM labels WHERE address IN (SELECT unnest($a))", {"a": sorted(deposits)})
    version = cluster_addresses(store, ClusterParams(heuristics=("deposit_address",))).version
    found = {lb.address: lb.service for lb in cluster_labels(store, version)}
    right = sum(1 for a, s in found.items() if deposits.get(a) == s)
    swept = store.con.execute(
        """SELECT count(DISTINCT s.address) FROM transfers t
           JOIN addresses s ON s.id = t.src JOIN addresses d ON d.id = t.dst
           WHERE s.address IN (SELECT unnest($a)) AND d.address IN (SELECT unnest($h))""",
        {"a": sorted(deposits), "h": sorted(hot.values())},
    ).fetchone()
    return {
        "deposit_addresses": len(deposits),
        "swept_to_hot_wallet": int(swept[0]) if swept else 0,
        "labelled_by_cluster": len(found),
        "correct": right,
        "attacker_wallets_labelled": sum(1 for a in found if a in sim.truth.owners),
    }


def run(size: str = "small", seed: int = 0, repeats: int = 3) -> dict[str, Any]:
    """Cluster a simulated world; addresses per second (median), anchor ratio and accuracy."""
    sim = simulate(size, seed=seed)
    with tempfile.TemporaryDirectory() as folder:
        store = TransferStore(Path(folder) / "cluster.duckdb")
        store.ingest(sim.transfers)
        store.add_labels(sim.labels)
        addresses = sum(1 for a in store.address_index() if not a.startswith(("tx:", "<")))
        times, versions = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            versions.append(cluster_addresses(store).version)
            times.append(time.perf_counter() - start)
        anchor = statistics.median(_anchor(store) for _ in range(repeats))
        default = _accuracy(store, sim, versions[-1])
        summary = cluster_addresses(store, ClusterParams(change_threshold=LOOSE))
        loose = _accuracy(store, sim, summary.version)
        deposits = _deposit_recovery(store, sim)
        store.close()
    seconds = statistics.median(times)
    return {
        "size": size,
        "transfers": len(sim.transfers),
        "addresses": addresses,
        "cluster_seconds": round(seconds, 3),
        "addresses_per_s": round(addresses / seconds),
        "anchors": {"bare_multi_input_seconds": round(anchor, 3), "ratio": round(seconds / anchor, 2)},
        "accuracy": {"threshold_0.9": default, f"threshold_{LOOSE}": loose},
        "links_at_0.85": summary.links,
        "merged_at_0.85": summary.merged,
        "coinjoins_excluded": summary.coinjoins,
        "largest_cluster_at_0.85": summary.largest,
        "deposit_heuristic": deposits,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", choices=["small", "full"], default="small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.size, args.seed, args.repeats)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['transfers']:,} transfers, {result['addresses']:,} addresses")
    print(
        f"clustering: {result['cluster_seconds']} s median = {result['addresses_per_s']:,} addresses/s;"
        f" bare multi-input anchor {result['anchors']['bare_multi_input_seconds']} s"
        f" (ratio {result['anchors']['ratio']})"
    )
    for name, acc in result["accuracy"].items():
        print(f"{name}: precision {acc['precision']} ({acc['predicted_pairs']:,} pairs), recall {acc['recall']}")
    print(f"deposit heuristic: {result['deposit_heuristic']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
