"""Two engines, one answer: the Spark engine against the one-machine trace on the simulator's world, as Parquet.

A seeded world from `heistwatch.trace.simulate` is written to Parquet files (1M rows each) and loaded into a
DuckDB ledger from those same files. One FIFO case (theft seeds, `--max-hops` 8, alerts with the haircut and
poison comparison traces) is traced three ways, each timed as a median of `--repeats` runs:
- `one_machine_seconds` (the anchor): `trace_case` on the DuckDB ledger, loading the whole graph into memory;
- `duckdb_subgraph_seconds`: the subgraph the trace reads, selected with DuckDB SQL (subgraph.py), and
  `duckdb_case_seconds`: that selection plus the same kernel on it;
- `spark_seconds`: the Spark engine end to end (the level search as DataFrame joins over the Parquet files, the
  selected subgraph collected and traced by the same kernel); `spark_start_seconds`: starting the SparkSession.
`spark_identical` says whether the Spark case equals the one-machine case (alerts with amounts per policy, first
arrival and paths; holdings; limit hits; every tainted transfer) and both engines selected the same subgraph.
Run: .venv/bin/python benchmarks/trace_spark.py [--size small|full] [--seed 1] [--repeats 3] [--master URL] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from heistwatch.trace import CaseResult, Limits, Policy, TraceResult, TransferStore, simulate, trace_case
from heistwatch.trace.alerts import alert_dict
from heistwatch.trace.parquet import load_parquet, write_parquet
from heistwatch.trace.spark import parquet_files, spark_session, spark_trace_case
from heistwatch.trace.subgraph import extract_subgraph, trace_subgraph

FILE_ROWS = 1_000_000
T = TypeVar("T")


def _timed(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def _median(repeats: int, fn: Callable[[], T]) -> tuple[float, T]:
    """The median seconds of `repeats` runs of `fn`, and the last run's value."""
    runs = [_timed(fn) for _ in range(repeats)]
    return statistics.median(s for s, _ in runs), runs[-1][1]


def _facts(case: CaseResult) -> dict[str, Any]:
    """What a case found, with positions replaced by the transfers they stand for (the engines number them apart)."""

    def result(r: TraceResult) -> dict[str, Any]:
        at = r.graph.transfer
        return {
            "arrivals": [(at(a.position), a.address, a.asset, a.amount, a.ts, a.hop) for a in r.arrivals],
            "holdings": r.holdings,
            "limit_hits": [(h.reason, h.hop, at(h.position), h.address, h.asset, h.amount) for h in r.limit_hits],
            "tainted": Counter((at(p), v) for p, v in r.tainted.items()),
        }

    return {
        "alerts": [alert_dict(a) for a in case.alerts],
        "results": [result(r) for r in (case.result, *case.compared)],
    }


def run(size: str, seed: int = 1, repeats: int = 3, master: str = "local[*]", max_hops: int = 8) -> dict[str, Any]:
    """Time and compare the engines on the `size` world; see the module docstring for the keys."""
    with tempfile.TemporaryDirectory(prefix="heistwatch-spark-bench-") as tmp:
        return _run(size, seed, repeats, master, Limits(max_hops=max_hops), Path(tmp))


def _run(size: str, seed: int, repeats: int, master: str, limits: Limits, folder: Path) -> dict[str, Any]:
    sim = simulate(size, seed=seed)
    for n, start in enumerate(range(0, len(sim.transfers), FILE_ROWS)):
        write_parquet(sim.transfers[start : start + FILE_ROWS], folder / f"part-{n:04d}.parquet")
    files = parquet_files([folder])
    store = TransferStore(folder / "ledger.duckdb")
    load_parquet(store, files)
    store.add_labels(sim.labels)
    labels, seeds = store.labels(), sim.seeds
    del sim  # the Python objects of a 5M world take gigabytes the engines need

    one_seconds, one_case = _median(repeats, lambda: trace_case(store, seeds, Policy.FIFO, limits))
    duck_seconds, duck = _median(repeats, lambda: extract_subgraph(store, seeds, limits, labels))
    duck_case_seconds, duck_case = _median(
        repeats, lambda: trace_subgraph(extract_subgraph(store, seeds, limits, labels), seeds, labels)
    )
    start_seconds, spark = _timed(lambda: spark_session(master))
    spark_seconds, done = _median(repeats, lambda: spark_trace_case(spark, files, seeds, labels, Policy.FIFO, limits))
    spark.stop()
    ledger = store.count()
    store.close()
    one = _facts(one_case)
    identical = _facts(done.case) == one and done.subgraph.transfers == duck.transfers
    return {
        "size": size,
        "max_hops": limits.max_hops,
        "repeats": repeats,
        "ledger_transfers": ledger,
        "subgraph_transfers": len(done.subgraph.transfers),
        "subgraph_share": round(len(done.subgraph.transfers) / ledger, 4),
        "reached_addresses": done.subgraph.reached,
        "levels": done.subgraph.reach.levels,
        "alerts": len(one_case.alerts),
        "spark_identical": identical,
        "duckdb_subgraph_identical": _facts(duck_case) == one,
        "spark_seconds": round(spark_seconds, 3),
        "spark_start_seconds": round(start_seconds, 3),
        "duckdb_subgraph_seconds": round(duck_seconds, 3),
        "duckdb_case_seconds": round(duck_case_seconds, 3),
        "one_machine_seconds": round(one_seconds, 3),
        "ratios": {
            "spark_vs_one_machine": round(spark_seconds / one_seconds, 2),
            "duckdb_case_vs_one_machine": round(duck_case_seconds / one_seconds, 2),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size", choices=["small", "full"], default="small")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="Runs per timing (the median is reported).")
    parser.add_argument("--master", default="local[*]", help="The Spark master URL.")
    parser.add_argument("--max-hops", type=int, default=8)
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    args = parser.parse_args(argv)
    out = run(args.size, args.seed, args.repeats, args.master, args.max_hops)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"world {args.size}: {out['ledger_transfers']:,} transfers; the trace reads {out['subgraph_transfers']:,}")
    print(f"  ({out['subgraph_share']:.1%}), {out['reached_addresses']:,} addresses in {out['levels']} levels")
    same = f"{out['spark_identical']} (DuckDB subgraph: {out['duckdb_subgraph_identical']})"
    print(f"Spark identical to one machine: {same}")
    print(f"one machine (anchor): {out['one_machine_seconds']:.2f} s; median of {out['repeats']}")
    print(f"DuckDB subgraph: {out['duckdb_subgraph_seconds']:.2f} s to select it")
    ratio = out["ratios"]["duckdb_case_vs_one_machine"]
    print(f"  {out['duckdb_case_seconds']:.2f} s with the case ({ratio}x the anchor)")
    print(f"Spark: {out['spark_seconds']:.2f} s ({out['ratios']['spark_vs_one_machine']}x the anchor)")
    print(f"  + {out['spark_start_seconds']:.2f} s to start the session")
    return 0


if __name__ == "__main__":
    sys.exit(main())
