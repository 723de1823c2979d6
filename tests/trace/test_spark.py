"""Two engines, one answer: the Spark engine (local[2]) against the one-machine trace, on the same Parquet files.

These tests run in the normal suite and fail (never skip) when pyspark or Java is missing: CI must run them.
One SparkSession serves the whole test session.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner

try:
    from pyspark.sql import SparkSession
except ImportError:  # pragma: no cover - the message is the point
    pytest.fail("pyspark is missing: pip install 'pyspark>=4.0' (the Spark contract tests must run)", pytrace=False)

import heistwatch.cli.trace_spark  # noqa: F401  (registers `trace spark`)
from heistwatch.cli.main import cli
from heistwatch.trace import (
    CaseResult,
    Label,
    Limits,
    Policy,
    Seed,
    Simulation,
    TraceResult,
    Transfer,
    TransferStore,
    UtxoInput,
    UtxoOutput,
    UtxoTx,
    flatten_utxo,
    simulate,
    trace_case,
)
from heistwatch.trace.alerts import alert_dict
from heistwatch.trace.parquet import load_parquet, write_parquet
from heistwatch.trace.spark import parquet_files, spark_session, spark_subgraph, spark_trace_case
from heistwatch.trace.subgraph import Subgraph, extract_subgraph, trace_subgraph

SMALL_LIMITS = Limits(max_hops=2)  # past the swaps and fan-outs; deep peel chains give limit hits


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.fail("Java 17+ is missing: run scripts/install_java.sh (the Spark contract tests must run)")
    session = spark_session("local[2]", partitions=2, memory="1g")
    yield session
    session.stop()


def _one_machine(folder: Path, labels: list[Label]) -> TransferStore:
    """The one-machine engine's ledger: the same Parquet files loaded into DuckDB."""
    store = TransferStore()
    load_parquet(store, [folder])
    store.add_labels(labels)
    return store


def _result_facts(result: TraceResult) -> dict[str, Any]:
    """Everything a trace found, with positions replaced by the transfers they stand for."""
    at = result.graph.transfer
    return {
        "seeded": result.seeded,
        "arrivals": [(at(a.position), a.address, a.label, a.asset, a.amount, a.ts, a.hop) for a in result.arrivals],
        "holdings": result.holdings,
        "dropped": result.dropped,
        "fees": result.fees,
        "limit_hits": [(h.reason, h.hop, at(h.position), h.address, h.asset, h.amount) for h in result.limit_hits],
        "tainted": Counter((at(p), v) for p, v in result.tainted.items()),
    }


def _case_facts(case: CaseResult) -> dict[str, Any]:
    return {
        "alerts": [alert_dict(a) for a in case.alerts],
        "results": [_result_facts(r) for r in (case.result, *case.compared)],
    }


# --- the simulator's small world -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Simulation, Path, TransferStore]:
    sim = simulate("small", seed=2)
    folder = tmp_path_factory.mktemp("small-parquet")
    half = len(sim.transfers) // 2  # two files: the ledger order runs across them
    write_parquet(sim.transfers[:half], folder / "part-0.parquet")
    write_parquet(sim.transfers[half:], folder / "part-1.parquet")
    return sim, folder, _one_machine(folder, sim.labels)


@pytest.fixture(scope="module")
def small_subgraph(spark: SparkSession, small_world: tuple[Simulation, Path, TransferStore]) -> Subgraph:
    sim, folder, store = small_world
    subgraph, report = spark_subgraph(spark, parquet_files([folder]), sim.seeds, store.labels(), SMALL_LIMITS)
    assert report.problem_count == 0
    return subgraph


@pytest.mark.parametrize("policy", [Policy.FIFO, Policy.TIHO])
def test_spark_trace_equals_one_machine_on_the_small_world(
    small_world: tuple[Simulation, Path, TransferStore], small_subgraph: Subgraph, policy: Policy
) -> None:
    sim, _, store = small_world
    spark_case = trace_subgraph(small_subgraph, sim.seeds, store.labels(), policy)
    one_case = trace_case(store, sim.seeds, policy, SMALL_LIMITS)
    assert one_case.alerts and one_case.result.limit_hits and one_case.result.tainted  # a case worth comparing
    assert _case_facts(spark_case) == _case_facts(one_case)


def test_spark_and_duckdb_select_the_same_small_subgraph(
    small_world: tuple[Simulation, Path, TransferStore], small_subgraph: Subgraph
) -> None:
    sim, _, store = small_world
    duck = extract_subgraph(store, sim.seeds, SMALL_LIMITS)
    assert duck.transfers == small_subgraph.transfers
    assert duck.reached == small_subgraph.reached and duck.reach == small_subgraph.reach
    assert 0 < len(duck.transfers) < store.count() // 2  # a part of the ledger, not all of it


# --- a hand-made case: a batched swap, a labelled exchange, UTXO legs and fees, a split transaction -------------

HOT, DEX, EXCHANGE, BTC_EXCHANGE = "0xhot", "0xdex", "0xexchange", "bc1exchange"
HAND_LABELS = [
    Label(DEX, "dex-router", "defi_dex", "test"),
    Label(EXCHANGE, "exchange-a", "exchange", "test"),
    Label(BTC_EXCHANGE, "exchange-b", "exchange", "test"),
]
HAND_SEEDS = [Seed("theft"), Seed("btc-theft")]


def _eth(tx: str, ts: int, src: str, dst: str, amount: int, asset: str = "ETH", index: int = 0) -> Transfer:
    return Transfer(tx, ts, "eth", asset, src, dst, amount, index)


def _hand_transfers() -> list[Transfer]:
    btc_theft = UtxoTx("btc-theft", 1, "btc", "BTC", (UtxoInput("bc1hot", 50),), (UtxoOutput("bc1p", 30),))
    cash_out = UtxoTx("btc-out", 3, "btc", "BTC", (UtxoInput("bc1p", 30),), (UtxoOutput(BTC_EXCHANGE, 29),))
    return [
        _eth("before", 0, "0xfunder", "0xb", 5),  # B's own balance before the taint arrives
        _eth("theft", 1, HOT, "0xa", 100),
        *flatten_utxo(btc_theft),
        # one swap transaction batching two users: only A's leg is tainted
        _eth("swap", 2, "0xa", DEX, 60, index=0),
        _eth("swap", 2, "0xuser", DEX, 40, index=1),
        _eth("swap", 2, DEX, "0xa2", 120, "USDT", 2),
        _eth("swap", 2, DEX, "0xuser2", 80, "USDT", 3),
        _eth("move", 3, "0xa", "0xb", 40),
        _eth("deposit", 3, "0xa2", EXCHANGE, 100, "USDT"),
        *flatten_utxo(cash_out),
        # B's split is interleaved with an unrelated transaction at the same time: the tracer sees two runs
        _eth("split", 4, "0xb", "0xc", 10, index=0),
        _eth("noise", 4, "0xx", "0xy", 7),
        _eth("split", 4, "0xb", "0xd", 30, index=1),
        _eth("cash", 5, "0xc", EXCHANGE, 10),
        _eth("payout", 6, EXCHANGE, "0xz", 500),  # the exchange's own traffic is never followed
        _eth("unrelated", 7, "0xz", "0xw", 1),
        _eth("late", 8, "0xd", "0xe", 30),
    ]


@pytest.fixture(scope="module")
def hand_case(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The hand-made ledger as Parquet (one row with a bad amount), a TagPack CSV and the same ledger in DuckDB."""
    root = tmp_path_factory.mktemp("hand")
    folder = root / "parquet"
    folder.mkdir()
    rows = [(t.tx, t.ts, t.chain, t.asset, t.src, t.dst, str(t.amount), t.index) for t in _hand_transfers()]
    rows.insert(5, ("theft", 1, "eth", "ETH", "0xa", "0xq", "lots", 1))  # unreadable: left out by both engines
    con = duckdb.connect()
    columns = "tx VARCHAR, ts BIGINT, chain VARCHAR, asset VARCHAR, src VARCHAR, dst VARCHAR, amount VARCHAR"
    con.execute(f'CREATE TABLE t ({columns}, "index" INTEGER)')
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    con.execute(f"COPY t TO '{folder / 'transfers.parquet'}' (FORMAT parquet)")
    con.close()
    labels = root / "labels.csv"
    lines = ["network,address,label,category,actor,tagpack"]
    lines += [f"eth,{lb.address},{lb.service},{lb.category},{lb.service},test" for lb in HAND_LABELS]
    labels.write_text("\n".join(lines) + "\n")
    ledger = root / "ledger.duckdb"
    store = TransferStore(ledger)
    load_parquet(store, [folder])
    store.add_labels(HAND_LABELS)
    store.build_indexes()
    store.close()
    return folder, labels, ledger


def test_spark_trace_equals_one_machine_on_a_hand_made_case(
    spark: SparkSession, hand_case: tuple[Path, Path, Path]
) -> None:
    folder, _, ledger = hand_case
    labels = {lb.address: lb for lb in HAND_LABELS}
    done = spark_trace_case(spark, parquet_files([folder]), HAND_SEEDS, labels, Policy.FIFO, Limits(max_hops=None))
    store = TransferStore(ledger)
    one = trace_case(store, HAND_SEEDS, Policy.FIFO, Limits(max_hops=None))
    store.close()
    assert _case_facts(done.case) == _case_facts(one)
    assert {a.service for a in one.alerts} == {"exchange-a", "exchange-b"}
    assert one.result.holdings[("0xe", ("eth", "ETH"))] == 30
    assert [(p.line, "not a number" in p.problem) for p in done.report.problems] == [(6, True)]
    txs = {t.tx for t in done.subgraph.transfers}
    assert "noise" in txs  # it lies inside the split transaction's span, so the tracer sees the same two runs
    assert not txs & {"payout", "unrelated"}  # a labelled exchange absorbs: its own payouts are not followed


def test_frontier_limit_stops_at_a_hop_and_stays_exact(spark: SparkSession, hand_case: tuple[Path, Path, Path]) -> None:
    folder, _, ledger = hand_case
    labels = {lb.address: lb for lb in HAND_LABELS}
    done = spark_trace_case(spark, parquet_files([folder]), HAND_SEEDS, labels, limits=Limits(), max_frontier=2)
    stop = done.subgraph.reach.stop
    assert stop is not None and str(stop).startswith(f"limit reached at hop {stop.hop}")
    assert done.subgraph.limits.max_hops == stop.hop - 1
    store = TransferStore(ledger)
    one = trace_case(store, HAND_SEEDS, limits=Limits(max_hops=stop.hop - 1))
    store.close()
    assert _case_facts(done.case) == _case_facts(one)


def test_cli_prints_what_trace_run_prints(spark: SparkSession, hand_case: tuple[Path, Path, Path]) -> None:
    folder, labels, ledger = hand_case
    runner, seeds = CliRunner(), ["--tx", "theft", "--tx", "btc-theft"]
    got = runner.invoke(
        cli, ["trace", "spark", str(folder), *seeds, "--labels", str(labels), "--max-hops", "1", "--json"]
    )
    want = runner.invoke(cli, ["trace", "run", str(ledger), *seeds, "--max-hops", "1", "--json"])
    assert want.exit_code == 0, want.output
    assert got.exit_code == 3, got.output  # the unreadable row is reported, with its place
    assert "transfers.parquet:6" in got.stderr
    assert json.loads(got.stdout) == json.loads(want.stdout)
    assert json.loads(want.stdout)["limits"]  # the hop limit stopped some paths: the messages match too


def test_missing_parquet_is_an_input_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["trace", "spark", str(tmp_path), "--tx", "x"])
    assert result.exit_code != 0 and "no Parquet files" in str(result.exception)
