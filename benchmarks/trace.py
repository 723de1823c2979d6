"""Tracing benchmark: ingest rate, case time, expansion latency and accuracy against the simulator's truth.

A seeded world from `heistwatch.trace.simulate` is ingested into a DuckDB file; the theft transfers seed a FIFO
trace with the default limits (no hop limit, taint under 5 % of a transfer dropped) that crosses bridges (linked
with the simulator's price table and the linker's default fee band, window and thresholds, never the simulator's
fees or delays) and ends in alerts (`case_seconds`, graph load from DuckDB included; timed again with the haircut
and poison comparison traces the alerts carry, which stop at 8 hops). The world's bridge is noisy (fees, delays,
honest users and look-alike round trips; `--exact-bridges` for the exact payouts of the plain simulator); alerts
past bridges are those reached only across one (confidence under 1); `without_bridges` is the same case with
bridges absorbing taint, and `bridge_linking` what linking and crossing cost on top of it. The same case cut at 8
hops with no fraction threshold is scored too (`eight_hops`). Accuracy is scored against the simulator's ground
truth, which the tracer never reads. Anchors, in the same run: reachability from the seeds within 8 hops
(time-unaware, not expanding labelled services) by a numpy CSR BFS and by a DuckDB recursive query.
`spark_identical` is `benchmarks/trace_spark.py` on the same size and seed, one run: whether the Spark engine's
8-hop FIFO case equals the one-machine case; its figures are under `spark`. It runs by default at full size; at
the small size only with `--spark`, since starting and warming the JVM alone takes most of a minute.
Run: .venv/bin/python benchmarks/trace.py [--size small|full] [--seed 1] [--repeats 3] [--[no-]spark] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from heistwatch.trace import Limits, Policy, TraceGraph, TransferStore, find_patterns, simulate, trace_case
from heistwatch.trace.bridges import BridgeRules
from heistwatch.trace.case import COMPARE
from heistwatch.trace.evaluate import score_case
from heistwatch.trace.simulate import SIZES, Simulation, bridge_prices

HOPS = 8
BRIDGES = BridgeRules(bridge_prices())


def _timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def _ingest(sim: Simulation, folder: Path, n: int) -> tuple[float, TransferStore]:
    """Ingest the world into a fresh DuckDB file; seconds for the transfers alone."""
    store = TransferStore(folder / f"trace-{n}.duckdb")
    seconds, _ = _timed(lambda: store.ingest(sim.transfers))
    store.add_labels(sim.labels)
    return seconds, store


def _expand_ms(store: TransferStore, sim: Simulation, rng: random.Random) -> float:
    """Median milliseconds to expand one address (all its transfers in and out) from the store."""
    addresses = [t.src for t in rng.sample(sim.transfers, 200)]
    store.build_indexes()
    times = [_timed(lambda a=a: store.expand(a))[0] * 1000 for a in addresses]
    return statistics.median(times)


def _seed_ids(graph: TraceGraph, sim: Simulation) -> np.ndarray[Any, np.dtype[np.int64]]:
    return np.array(sorted({graph.address_ids[s.dst] for s in sim.seeds if s.dst}), dtype=np.int64)


def _anchor_numpy(graph: TraceGraph, seeds: np.ndarray[Any, np.dtype[np.int64]]) -> tuple[float, int]:
    """Seconds and reached-address count of a CSR BFS over out-edges, stopping at labelled addresses."""
    c, n = graph.cols, len(graph.cols.addresses)
    order = np.argsort(c.src, kind="stable")
    targets, offsets = c.dst[order].astype(np.int64), np.searchsorted(c.src[order], np.arange(n + 1))
    labelled = np.zeros(n, dtype=np.bool_)
    labelled[list(graph.label_ids)] = True

    def bfs() -> int:
        seen = np.zeros(n, dtype=np.bool_)
        seen[seeds] = True
        frontier = seeds
        for _ in range(HOPS):
            frontier = frontier[~labelled[frontier]]
            starts, lengths = offsets[frontier], offsets[frontier + 1] - offsets[frontier]
            idx = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
            nxt = np.unique(targets[idx])
            frontier = nxt[~seen[nxt]]
            seen[frontier] = True
        return int(seen.sum())

    return _timed(bfs)


def _anchor_duckdb(store: TransferStore, seeds: np.ndarray[Any, np.dtype[np.int64]]) -> tuple[float, int]:
    """Seconds and reached-address count of the same reachability as a DuckDB recursive query."""
    store.con.execute(
        "CREATE OR REPLACE TEMP TABLE labelled AS SELECT DISTINCT a.id FROM addresses a JOIN labels l USING (address)"
    )
    sql = f"""WITH RECURSIVE reach(addr, hop) AS (
        SELECT unnest($seeds::INTEGER[]), 0
        UNION
        SELECT t.dst, r.hop + 1 FROM reach r JOIN transfers t ON t.src = r.addr
        WHERE r.hop < {HOPS} AND r.addr NOT IN (SELECT id FROM labelled))
      SELECT count(DISTINCT addr) FROM reach"""
    seconds, row = _timed(lambda: store.con.execute(sql, {"seeds": seeds.tolist()}).fetchone())
    return seconds, int(row[0])


def _case(
    store: TransferStore,
    sim: Simulation,
    limits: Limits,
    compare: tuple[Policy, ...] = (),
    bridges: BridgeRules | None = BRIDGES,
) -> tuple[float, Any, TraceGraph]:
    """Seconds for seeds → graph load → FIFO trace (and `compare` policies) → bridges crossed → alerts."""

    def run() -> tuple[Any, TraceGraph]:
        graph = TraceGraph.from_store(store)
        return trace_case(graph, sim.seeds, limits=limits, compare=compare, bridges=bridges), graph

    seconds, (case, graph) = _timed(run)
    return seconds, case, graph


def _scores(sim: Simulation, case: Any) -> dict[str, Any]:
    services = [label.address for label in sim.labels]
    s = score_case(sim.truth, case.alerts, find_patterns(case.result), services)
    reached = {address for address, _ in sim.truth.endpoints}
    beyond = [a for a in case.alerts if a.confidence < 1.0]  # reached only across bridges
    return {
        "alerts": {
            "recall": s.recall,
            "bridge_recall": s.bridge_recall,
            "precision": s.precision,
            "false_service_rate": s.false_service_rate,
        },
        "amount_within_5pct": s.amount_within_5pct,
        "patterns": {name: {"f1": f1} for name, f1 in s.patterns.items()},
        "alert_count": s.alerts,
        "reachable_endpoints": s.reachable_endpoints,
        "bridged_endpoints": s.bridged_endpoints,
        "bridge_links": len(case.links),
        "bridges_crossed": len(case.crossings),
        "alerts_past_bridges": len(beyond),
        "false_alerts_past_bridges": sum(a.address not in reached for a in beyond),
        "limit_hits": len(case.result.limit_hits),
    }


def run(size: str, seed: int, repeats: int, noisy_bridges: bool = True) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="heistwatch-trace-bench-") as folder:
        return _run(size, seed, repeats, noisy_bridges, Path(folder))


def _run(size: str, seed: int, repeats: int, noisy_bridges: bool, folder: Path) -> dict[str, Any]:
    rng = random.Random(seed)
    world = replace(SIZES[size], noisy_bridges=noisy_bridges)
    sim_seconds, sim = _timed(lambda: simulate(world, seed=seed))
    ingests = [_ingest(sim, folder, n) for n in range(repeats)]
    store = ingests[-1][1]
    rate = len(sim.transfers) / statistics.median(s for s, _ in ingests)
    expand = _expand_ms(store, sim, rng)
    cases = [_case(store, sim, Limits()) for _ in range(repeats)]
    case, graph = cases[-1][1], cases[-1][2]
    case_seconds = statistics.median(c[0] for c in cases)
    compared_seconds = statistics.median(_case(store, sim, Limits(), COMPARE)[0] for _ in range(repeats))
    plain = [_case(store, sim, Limits(), bridges=None) for _ in range(repeats)]
    plain_seconds = statistics.median(c[0] for c in plain)
    graph_seconds = statistics.median(_timed(lambda: TraceGraph.from_store(store))[0] for _ in range(repeats))
    eight_seconds, eight, _ = _case(store, sim, Limits(max_hops=HOPS, min_fraction=0.0))
    seeds = _seed_ids(graph, sim)
    bfs_seconds, bfs_reached = _anchor_numpy(graph, seeds)
    sql_seconds, sql_reached = _anchor_duckdb(store, seeds)
    return {
        "size": size,
        "seed": seed,
        "noisy_bridges": noisy_bridges,
        "transfers": len(sim.transfers),
        "laundering_transfers": sim.truth.laundering_transfers,
        "simulate_seconds": sim_seconds,
        "transfers_per_s": rate,
        "expand_ms": expand,
        "case_seconds": case_seconds,
        "case_with_haircut_poison_seconds": compared_seconds,
        "graph_load_seconds": graph_seconds,
        **_scores(sim, case),
        "eight_hops": {"case_seconds": eight_seconds, **_scores(sim, eight)},
        "without_bridges": {"case_seconds": plain_seconds, **_scores(sim, plain[-1][1])},
        "bridge_linking": {
            "seconds": case_seconds - plain_seconds,
            "case_over_case_without_bridges": case_seconds / max(plain_seconds, 1e-9),
        },
        "anchors": {
            "numpy_csr_bfs": {"seconds": bfs_seconds, "reached": bfs_reached},
            "duckdb_recursive": {"seconds": sql_seconds, "reached": sql_reached},
            "case_over_numpy_bfs": case_seconds / max(bfs_seconds, 1e-9),
            "case_over_duckdb_recursive": case_seconds / max(sql_seconds, 1e-9),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["small", "full"], default="small")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--exact-bridges", action="store_true", help="the plain simulator's exact bridge payouts")
    parser.add_argument(
        "--spark", action=argparse.BooleanOptionalAction, help="compare the Spark engine (default: at full size)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.size, args.seed, args.repeats, not args.exact_bridges)
    if args.spark or (args.spark is None and args.size == "full"):
        import trace_spark  # the sibling benchmark script

        result["spark"] = trace_spark.run(args.size, args.seed, repeats=1)
        result["spark_identical"] = result["spark"]["spark_identical"]
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for key, value in result.items():
        print(f"{key}: {json.dumps(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
