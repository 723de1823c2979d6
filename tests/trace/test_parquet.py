"""Transfers as Parquet: exact round trips in batches, checked reading of foreign files, and `trace load`."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import heistwatch.cli.trace_load  # noqa: F401 - registers `trace load`
from heistwatch.cli.main import cli
from heistwatch.errors import InputError
from heistwatch.trace.eth_etl import LoadReport, read_eth_export
from heistwatch.trace.ledger import Transfer
from heistwatch.trace.parquet import load_parquet, read_parquet, write_parquet
from heistwatch.trace.store import TransferStore
from tests.trace.conftest import SHARED

SAMPLE = SHARED / "eth-sample"
LIMIT = 1 << 125


def transfers(n: int) -> list[Transfer]:
    return [
        Transfer(f"0x{i:064x}", 1_600_000_000 + i, "eth", "0x" + "ab" * 20, f"a{i % 7}", f"b{i % 5}", LIMIT - 1 - i, i)
        for i in range(n)
    ]


def test_round_trip_in_batches_keeps_amounts_exact(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    original = [*transfers(250), Transfer("z", 0, "btc", "BTC", "<coinbase>", "1x", 0, 0)]
    assert write_parquet(original, path, batch_rows=64) == 251
    types = dict(duckdb.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM '{path}')").fetchall())
    assert types["amount"] == "DECIMAL(38,0)" and list(types) == [
        "tx",
        "ts",
        "chain",
        "asset",
        "src",
        "dst",
        "amount",
        "index",
    ]
    report = LoadReport()
    assert list(read_parquet(path, report, batch_rows=50)) == original
    assert report.rows == {"parquet": 251} and report.problem_count == 0


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.builds(
            Transfer,
            tx=st.text(max_size=8),
            ts=st.integers(-(2**62), 2**62),
            chain=st.sampled_from(["eth", "btc"]),
            asset=st.text(min_size=1, max_size=5),
            src=st.text(max_size=6),
            dst=st.text(max_size=6),
            amount=st.integers(0, LIMIT - 1),
            index=st.integers(0, 2**31 - 1),
        ),
        max_size=30,
    )
)
def test_any_transfers_round_trip(tmp_path_factory: pytest.TempPathFactory, batch: list[Transfer]) -> None:
    path = tmp_path_factory.mktemp("rt") / "t.parquet"
    write_parquet(batch, path, batch_rows=7)
    assert list(read_parquet(path, LoadReport(), batch_rows=5)) == batch


def test_foreign_files_are_checked_row_by_row(tmp_path: Path) -> None:
    path = tmp_path / "foreign.parquet"
    duckdb.sql(
        f"""COPY (SELECT * FROM (VALUES
              ('t1', 5, 'eth', 'ETH', 'a', 'b', '12'),
              ('t2', 5, 'eth', 'ETH', 'a', 'b', '{2**200}'),
              ('t3', 5, 'eth', 'ETH', 'a', 'b', '-4'),
              ('t4', 5, 'eth', 'ETH', NULL, 'b', '1'),
              ('t5', 6, 'eth', 'ETH', 'a', 'b', '{2**124}'))
            AS v(tx, ts, chain, asset, src, dst, amount)) TO '{path}' (FORMAT parquet)"""
    )
    report = LoadReport()
    got = list(read_parquet(path, report))
    assert [(t.tx, t.amount, t.index) for t in got] == [("t1", 12, 0), ("t5", 2**124, 0)]
    assert [(p.line, p.problem.split()[0]) for p in report.problems] == [(2, "amount"), (3, "amount"), (4, "a")]


def test_unfit_files_are_refused(tmp_path: Path) -> None:
    floats = tmp_path / "floats.parquet"
    duckdb.sql(
        f"COPY (SELECT 't' tx, 1 ts, 'eth' chain, 'ETH' asset, 'a' src, 'b' dst, 1.5::DOUBLE amount) TO '{floats}'"
    )
    with pytest.raises(InputError, match="floats cannot hold"):
        list(read_parquet(floats, LoadReport()))
    narrow = tmp_path / "narrow.parquet"
    duckdb.sql(f"COPY (SELECT 't' tx, 1 amount) TO '{narrow}' (FORMAT parquet)")
    with pytest.raises(InputError, match="no column ts, chain, asset, src, dst"):
        list(read_parquet(narrow, LoadReport()))
    text = tmp_path / "text.parquet"
    text.write_text("not parquet")
    with pytest.raises(InputError, match="cannot read as Parquet"):
        list(read_parquet(text, LoadReport()))


def test_load_into_store_and_cli(tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    write_parquet(transfers(30), folder / "a.parquet")
    write_parquet(transfers(5), folder / "b.parquet")
    store = TransferStore()
    report = load_parquet(store, [folder], batch_rows=8)
    assert store.count() == 35 == report.transfers["parquet"]
    assert store.expand("a0")[0].amount == LIMIT - 1
    ledger = tmp_path / "ledger.duckdb"
    result = CliRunner().invoke(cli, ["trace", "load", str(ledger), str(folder / "a.parquet"), "--json"])
    assert result.exit_code == 0, result.output
    assert (json.loads(result.stdout)["format"], json.loads(result.stdout)["added"]) == ("parquet", 30)


@pytest.mark.skipif(not SAMPLE.is_dir(), reason="shared Ethereum sample not present")
def test_ethereum_sample_survives_parquet(tmp_path: Path) -> None:
    original = list(read_eth_export([SAMPLE], LoadReport()))
    path = tmp_path / "eth.parquet"
    write_parquet(original, path, batch_rows=500)
    assert list(read_parquet(path, LoadReport(), batch_rows=300)) == original
