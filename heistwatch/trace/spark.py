"""The Spark engine: case traces over Parquet transfers that outgrow one machine, with the one-machine answer.

Design (two engines, one answer):
- **What is distributed.** The search for the subgraph a trace can read (subgraph.py gives the definition and
  why tracing it equals tracing the whole ledger): level by level, a frontier of (address, earliest arrival ts,
  hop) is joined with the transfers out of it at ts >= arrival, within the arrival's transaction at the same hop,
  never past a labelled service except swaps (labels absorb taint), up to the hop limit plus one; then every
  transfer of every transaction touching a reachable address, or holding a seed, is selected. All of it is Spark
  DataFrame joins over the Parquet files; the big table is never collected, only the selected subgraph is.
- **What runs on one machine.** The subgraph (usually a small share of the chain) is loaded into an in-memory
  TransferStore as the same `Transfer` rows, in the whole ledger's order, and traced by the same kernel
  (`trace_case`): the alerts, holdings and limit hits are those of the one-machine trace by construction.
- **Keys.** Addresses and transactions are joined as 64-bit hashes (xxhash64) of their normalised text. A
  collision can only merge two keys, which adds transfers to the subgraph (a superset, still exact) and never
  removes one; the roles of labelled receivers are decided on the full text. The ledger order is (ts, seq), seq
  being the file's rank (files sorted by name, as `trace load` reads them) and the row's index in its file.
- **Bounded work.** A level with more new transfers than `max_frontier` is not taken; it is reported ("limit
  reached at hop N") and the trace runs with a hop limit of N - 1, for which the subgraph is complete.
- **Bad rows.** The search reads every row with its keys present; the selected rows are then checked exactly as
  `read_parquet` checks them, and the bad ones are counted with their file and row and left out, as one machine
  would. Requires Java 17+ (`scripts/install_java.sh`) and pyspark.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from heistwatch.errors import HeistwatchError, InputError
from heistwatch.trace.case import COMPARE, CaseResult
from heistwatch.trace.eth_etl import MAX_AMOUNT, LoadReport, parse_amount
from heistwatch.trace.ledger import Transfer
from heistwatch.trace.parquet import COLUMNS
from heistwatch.trace.policies import Policy
from heistwatch.trace.store import Label
from heistwatch.trace.subgraph import (
    ABSORBS,
    MARGIN,
    MAX_FRONTIER,
    NORMAL,
    Progress,
    Subgraph,
    exact_limits,
    find_reach,
    receiver_roles,
    trace_subgraph,
)
from heistwatch.trace.taint import Limits, Seed

_ROW_BITS = 40  # seq = file rank << 40 | row index: room for 10^12 rows a file
_KEYS = ("seq", "tx", "ts", "src", "dst", "role")
_NO_END = (1 << 63) - 1


@dataclass(frozen=True)
class SparkTrace:
    """A case traced by the Spark engine: the subgraph it selected, its bad rows, and the case."""

    subgraph: Subgraph
    report: LoadReport
    case: CaseResult


def spark_session(master: str = "local[*]", partitions: int = 8, memory: str = "2g") -> SparkSession:
    """A quiet SparkSession for tracing (no UI, no console progress), or the one already running."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise HeistwatchError("the Spark engine needs Java 17 or newer: run scripts/install_java.sh or set JAVA_HOME")
    spark = (
        SparkSession.builder.master(master)
        .appName("heistwatch-trace")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(partitions))
        .config("spark.driver.memory", memory)
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def parquet_files(paths: Iterable[Path]) -> list[Path]:
    """The Parquet files in `paths` (folders: their *.parquet files by name), in the order one machine loads them."""
    files = [f for p in paths for f in (sorted(p.glob("*.parquet")) if p.is_dir() else [p])]
    if not files:
        raise InputError(", ".join(str(p) for p in paths), "no Parquet files here")
    return files


def spark_subgraph(
    spark: SparkSession,
    files: Sequence[Path],
    seeds: list[Seed],
    labels: Mapping[str, Label],
    limits: Limits | None = None,
    margin: int = MARGIN,
    max_frontier: int = MAX_FRONTIER,
    progress: Progress | None = None,
) -> tuple[Subgraph, LoadReport]:
    """Select, with Spark, the transfers of `files` that tracing `seeds` under `limits` reads; bad rows reported."""
    limits = limits or Limits()
    raw = _read_transfers(spark, files)
    engine = _SparkLevels(spark, raw, seeds, receiver_roles(labels), limits)
    try:
        reach = find_reach(engine, limits, margin, max_frontier, progress)
        report = LoadReport()
        transfers = _checked(engine.select(), report)
        return Subgraph(transfers, engine.reached(), reach, exact_limits(limits, reach)), report
    finally:
        engine.release()


def spark_trace_case(
    spark: SparkSession,
    files: Sequence[Path],
    seeds: list[Seed],
    labels: Mapping[str, Label],
    policy: Policy = Policy.FIFO,
    limits: Limits | None = None,
    compare: Sequence[Policy] = COMPARE,
    max_frontier: int = MAX_FRONTIER,
    progress: Progress | None = None,
) -> SparkTrace:
    """Trace `seeds` through Parquet `files`: the subgraph found with Spark, traced by the one-machine kernel."""
    if not seeds:
        raise InputError("seeds", "at least one seed transfer is needed")
    subgraph, report = spark_subgraph(spark, files, seeds, labels, limits, MARGIN, max_frontier, progress)
    return SparkTrace(subgraph, report, trace_subgraph(subgraph, seeds, labels, policy, compare))


def _read_transfers(spark: SparkSession, files: Sequence[Path]) -> DataFrame:
    """All transfers with their ledger order `seq`, file and row, amounts as text, checked like read_parquet."""
    frames = []
    for rank, path in enumerate(files):
        frame = spark.read.parquet(str(path))
        types = {f.name: f.dataType.simpleString() for f in frame.schema.fields}
        if types.get("amount", "").startswith(("float", "double")):
            raise InputError(str(path), f"amount column is {types['amount']}: floats cannot hold base units exactly")
        missing = [c for c in COLUMNS if c not in types and c != "index"]
        if missing:
            raise InputError(str(path), f"not a transfers Parquet file: no column {', '.join(missing)}")
        row = F.col("_metadata.row_index")
        frames.append(
            frame.select(
                (F.lit(rank).cast("long") * (1 << _ROW_BITS) + row).alias("seq"),
                "tx",
                F.col("ts").cast("long").alias("ts"),
                "chain",
                "asset",
                "src",
                "dst",
                F.col("amount").cast("string").alias("amount"),
                (F.col("index") if "index" in types else F.lit(0)).cast("long").alias("index"),
                F.lit(str(path)).alias("file"),
                (row + 1).alias("row"),
            )
        )
    return reduce(DataFrame.unionByName, frames)


def _normal(column: str) -> Column:
    """normal_address in Spark: EVM addresses lower-cased, others as written."""
    text = F.col(column)
    return F.when(F.substring(text, 1, 2).isin("0x", "0X"), F.lower(text)).otherwise(text)


def _checked(rows: list[tuple[Any, ...]], report: LoadReport) -> list[Transfer]:
    """The selected rows as transfers in ledger order; a bad row is reported with its file and row, and left out."""
    out = []
    for _seq, tx, ts, chain, asset, src, dst, amount, idx, file, row in sorted(rows, key=lambda r: (r[2], r[0])):
        try:
            if None in (tx, ts, chain, asset, src, dst, amount):
                raise ValueError("a required value is missing")
            value = parse_amount(str(amount))
            if value >= MAX_AMOUNT:
                raise ValueError(f"amount {value} is beyond the ledger's limit of 2**125 base units")
        except ValueError as exc:
            report.problem(Path(file), int(row), str(exc))
            continue
        out.append(Transfer(tx, int(ts), chain, asset, src, dst, value, int(idx)))
    return out


class _SparkLevels:
    """The level search of subgraph.py as DataFrame joins; step results are checkpointed to keep plans short."""

    def __init__(
        self, spark: SparkSession, raw: DataFrame, seeds: list[Seed], roles: Mapping[str, int], limits: Limits
    ) -> None:
        self.spark, self.raw, self.limits = spark, raw, limits
        role_frame = spark.createDataFrame(list(roles.items()), "role_address string, role int")
        keyed = raw.where(F.col("tx").isNotNull() & F.col("ts").isNotNull())
        keyed = keyed.where(F.col("src").isNotNull() & F.col("dst").isNotNull())
        keyed = keyed.withColumn("dst_text", _normal("dst"))
        keyed = keyed.join(F.broadcast(role_frame), keyed.dst_text == role_frame.role_address, "left")
        self.base = keyed.select(
            "seq",
            F.xxhash64("tx").alias("tx"),
            "ts",
            F.xxhash64(_normal("src")).alias("src"),
            F.xxhash64("dst_text").alias("dst"),
            F.coalesce("role", F.lit(NORMAL)).alias("role"),
        ).persist(StorageLevel.MEMORY_AND_DISK)
        wanted = spark.createDataFrame([(s.tx, s.dst) for s in seeds], "seed_tx string, seed_dst string")
        self.seeds = wanted.select(
            F.xxhash64("seed_tx").alias("seed_tx"),
            F.when(F.col("seed_dst").isNull(), F.lit(None))
            .otherwise(F.xxhash64(_normal("seed_dst")))
            .alias("seed_dst"),
        )
        self.reach = spark.createDataFrame([], "address long, ts long")
        self.level = self.new = self.next = self.changed = self.seen = self.reach
        self.ts_max = _NO_END

    def _keep(self, frame: DataFrame) -> tuple[DataFrame, int]:
        """A small step result with its lineage cut, and its row count (one job computes and keeps it)."""
        kept = frame.localCheckpoint(eager=False)
        return kept, kept.count()

    def seed(self) -> int:
        seeds = self.seeds
        found = self.base.join(
            F.broadcast(seeds),
            (self.base.tx == seeds.seed_tx) & (seeds.seed_dst.isNull() | (self.base.dst == seeds.seed_dst)),
            "left_semi",
        )
        self.level, size = self._keep(found)
        self.new, self.seen = self.level, self.level.select("seq", "tx")
        if self.limits.max_seconds is not None:
            start = self.level.agg(F.min("ts")).first()
            if start is not None and start[0] is not None:
                self.ts_max = int(start[0]) + self.limits.max_seconds
        return size

    def close_level(self) -> int:
        senders = self.new.where(F.col("role") != ABSORBS).select(F.col("dst").alias("src"), "tx")
        added = self.base.join(F.broadcast(senders), ["src", "tx"], "left_semi").where(F.col("ts") <= self.ts_max)
        self.new, size = self._keep(added.join(F.broadcast(self.seen), "seq", "left_anti").select(*_KEYS))
        self.level = self.level.unionByName(self.new)
        self.seen = self.seen.unionByName(self.new.select("seq", "tx"))
        return size

    def settle(self) -> int:
        arrivals = self.level.where(F.col("role") == NORMAL).groupBy(F.col("dst").alias("address"))
        earliest = arrivals.agg(F.min("ts").alias("ts"))
        old = self.reach.groupBy("address").agg(F.min("ts").alias("old"))  # reach keeps every earlier arrival
        changed = earliest.join(F.broadcast(old), "address", "left").where(
            F.col("old").isNull() | (F.col("ts") < F.col("old"))
        )
        self.changed, size = self._keep(changed)
        self.reach = self.reach.unionByName(self.changed.select("address", "ts"))
        return size

    def expand(self) -> int:
        changed = self.changed.select(F.col("address").alias("src"), F.col("ts").alias("since"), "old")
        ts = F.col("ts")
        out = self.base.join(F.broadcast(changed), "src").where(
            (ts >= F.col("since")) & (F.col("old").isNull() | (ts < F.col("old"))) & (ts <= self.ts_max)
        )
        self.next, size = self._keep(out.join(F.broadcast(self.seen), "seq", "left_anti").select(*_KEYS))
        return size

    def advance(self) -> None:
        self.level = self.new = self.next
        self.seen = self.seen.unionByName(self.next.select("seq", "tx"))

    def reached(self) -> int:
        return self.reach.select("address").distinct().count()

    def select(self) -> list[tuple[Any, ...]]:
        """The rows of the subgraph (collected: it is the small part); see subgraph.py for the rule."""
        reach, base = F.broadcast(self.reach.select("address").distinct()), self.base
        touching = (
            base.join(reach, base.src == reach.address, "left_semi")
            .select("tx")
            .unionByName(base.join(reach, base.dst == reach.address, "left_semi").select("tx"))
            .unionByName(self.seen.select("tx"))
            .distinct()
        )
        kept, _ = self._keep(base.join(F.broadcast(touching), "tx", "left_semi").select("seq", "tx", "ts"))
        chosen = kept.select("seq")
        ends = kept.groupBy("tx").agg(
            F.min(F.struct("ts", "seq")).alias("first"),
            F.max(F.struct("ts", "seq")).alias("last"),
            F.min("ts").alias("ts0"),
            F.max("ts").alias("ts1"),
            (F.max("seq") - F.min("seq") + 1).alias("width"),
            F.count("*").alias("n"),
        )
        odd, irregular = self._keep(ends.where((F.col("ts0") != F.col("ts1")) | (F.col("width") != F.col("n"))))
        if irregular:
            chosen = chosen.unionByName(self._between(odd))
        picked = self.raw.join(F.broadcast(chosen.distinct()), "seq", "left_semi")
        columns = ("seq", "tx", "ts", "chain", "asset", "src", "dst", "amount", "index", "file", "row")
        return [tuple(row) for row in picked.select(*columns).collect()]

    def _between(self, odd: DataFrame) -> DataFrame:
        """Transfers lying between the first and last transfer of a transaction that is not one run."""
        ts, seq = F.col("ts"), F.col("seq")
        first_ts, first_seq = F.col("first.ts"), F.col("first.seq")
        last_ts, last_seq = F.col("last.ts"), F.col("last.seq")
        after = (ts > first_ts) | ((ts == first_ts) & (seq >= first_seq))
        before = (ts < last_ts) | ((ts == last_ts) & (seq <= last_seq))
        spans = F.broadcast(odd.select("first", "last"))
        return self.base.select("seq", "ts").join(spans, after & before).select("seq")

    def release(self) -> None:
        """Free the cached keys."""
        self.base.unpersist()
