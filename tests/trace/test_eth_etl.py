"""Ethereum export readers: the shared GraphSense sample, hand-written ethereum-etl files, and `trace load`."""

from __future__ import annotations

import base64
import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import heistwatch.cli.trace_load  # noqa: F401 - registers `trace load`
from heistwatch.cli.main import cli
from heistwatch.errors import InputError
from heistwatch.trace.eth_etl import (
    TRANSFER_TOPIC,
    LoadReport,
    load_eth_export,
    parse_amount,
    read_eth_export,
    read_logs,
)
from heistwatch.trace.labels import read_tagpack_csv
from heistwatch.trace.store import TransferStore
from tests.trace.conftest import SHARED

SAMPLE = SHARED / "eth-sample"
needs_sample = pytest.mark.skipif(not SAMPLE.is_dir(), reason="shared Ethereum sample not present")
USDT = "0xdac17f958d2ee523a2206206994597c13d831ec7"


def hex_of(field: str) -> str:
    return "0x" + base64.b64decode(field).hex()


@needs_sample
def test_log_decoder_matches_graphsense_usdt_transfers() -> None:
    report = LoadReport()
    times = {15_000_000 + n: n for n in range(5)}
    mine = {
        (t.tx, t.index, t.src, t.dst, t.amount)
        for t in read_logs(SAMPLE / "logs.json", report, times)
        if t.asset == USDT
    }
    lines = (SAMPLE / "reference_USDT_token_transfers.json").read_text().splitlines()
    reference = [json.loads(line) for line in lines if line.strip()]
    assert len(reference) == 143 and {hex_of(r["tokenAddress"]) for r in reference} == {USDT}
    expected = {(hex_of(r["txHash"]), r["logIndex"], hex_of(r["from"]), hex_of(r["to"]), r["value"]) for r in reference}
    assert mine == expected
    assert report.skipped["ERC-721 transfer (not fungible)"] == 389 and report.problem_count == 0


@needs_sample
def test_sample_loads_into_a_store() -> None:
    store = TransferStore()
    report = load_eth_export(store, [SAMPLE])
    assert report.transfers == {"transactions": 68, "traces": 896, "logs": 715}
    assert store.count() == 68 + 896 + 715 and report.problem_count == 0
    # exponent-written trace values ('199e17') are read exactly, not through floats
    native = [t for t in store.expand("0x5c12a8e43faf884521c2454f39560e6c265a68c8") if t.asset == "ETH"]
    first = next(t for t in native if t.tx == "0x19f1df2c7ee6b464720ad28e903aeda1a5ad8780afc22f0b960827bd4fcf656d")
    assert (first.src, first.amount, first.ts) == (
        "0xbd08e0cddec097db7901ea819a3d1fd9de8951a2",
        19_900_000_000_000_000_000,
        1438918613,
    )
    usdt = [t for t in store.expand("0xcaf7ce56598e8588c9bf471e08b53e8a8d9541b3") if t.asset == USDT]
    assert any(t.amount == 3_360_488_227 and t.src == "0x45225d3536ac02928f16071ab05066bce95c2cd5" for t in usdt)
    assert {t.src for t in store.expand("0x01fb8ec12425a04f813e46c54c05748ca6b29aa9")} == {"<genesis>"}


@needs_sample
def test_top_level_traces_repeat_their_transactions() -> None:
    """The premise of skipping top-level calls: they carry exactly their transaction's value."""
    with (SAMPLE / "transactions.csv").open() as handle:
        values = {r["txHash"]: r["value"] for r in csv.DictReader(handle)}
    with (SAMPLE / "traces.csv").open() as handle:
        tops = [r for r in csv.DictReader(handle) if r["traceId"] == f"call_{r['txHash']}_" and r["txHash"] in values]
    assert len(tops) > 300
    assert all(parse_amount(r["value"]) == parse_amount(values[r["txHash"]]) for r in tops)


def write_csv(path: Path, header: str, *rows: str) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


A, B, C = "0x" + "aa" * 20, "0x" + "bb" * 20, "0x" + "cc" * 20
CHECKSUMMED = "0x52908400098527886E0F7030069857D2E4169EE7"  # EIP-55's own example


def word(address: str) -> str:
    return "0x" + "0" * 24 + address[2:]


@pytest.fixture
def export(tmp_path: Path) -> Path:
    """A small ethereum-etl export with every case the readers distinguish."""
    write_csv(tmp_path / "blocks.csv", "number,hash,timestamp", "10,0x01,1000", "11,0x02,1012")
    write_csv(
        tmp_path / "transactions.csv",
        "hash,block_number,block_timestamp,from_address,to_address,value,receipt_status,receipt_contract_address",
        f"0xt1,10,1000,{A},{CHECKSUMMED},5,1,",  # plain payment to a checksummed address
        f"0xt2,10,1000,{A},{B},7,0,",  # failed: moves nothing
        f"0xt3,10,2022-06-21 02:28:12 UTC,{A},,9,1,{C}",  # contract creation
        f"0xt4,10,1000,{A},{B},1.5,1,",  # not a whole number of wei
        f"0xt5,10,1000,{A},0x12,3,1,",  # not an address
        f"0xt6,11,1012,{A},{B},0,1,",  # no value
    )
    write_csv(
        tmp_path / "traces.csv",
        "transaction_hash,block_number,from_address,to_address,value,trace_type,call_type,trace_address,error,status",
        f"0xt1,10,{A},{CHECKSUMMED},5,call,call,,,1",  # repeats transaction t1
        f"0xt7,11,{A},{B},4,call,call,,,1",  # top level of a transaction not in transactions.csv
        f"0xt7,11,{B},{C},2,call,call,0,,1",  # internal transfer
        f"0xt7,11,{B},{C},1,call,call,1,Reverted,0",  # failed call
        f'0xt7,11,{C},{A},1,call,call,"1,0",,1',  # inside the failed call: reverted with it
        f"0xt7,11,{B},{A},6,call,delegatecall,2,,1",  # value of the caller's context, not a transfer
        f",11,,{C},2000000000000000000,reward,,,,1",  # block reward
    )
    t = TRANSFER_TOPIC
    write_csv(
        tmp_path / "logs.csv",
        "log_index,transaction_hash,block_number,address,data,topics",
        f'3,0xt1,10,{CHECKSUMMED},0x{(10**30):064x},"{t},{word(A)},{word(B)}"',  # ERC-20 transfer
        f'4,0xt1,10,{C},0x,"{t},{word(A)},{word(B)},{word(C)}"',  # ERC-721
        f'5,0xt1,10,{C},0x{1:064x},"0x{"12" * 32},{word(A)}"',  # another event
        f'6,0xt1,12,{C},0x{1:064x},"{t},{word(A)},{word(B)}"',  # block without a time
    )
    write_csv(
        tmp_path / "token_transfers.csv",
        "token_address,from_address,to_address,value,transaction_hash,log_index,block_number",
        f"{C},{A},{B},1,0xt1,3,10",
    )
    return tmp_path


def test_ethereum_etl_export(export: Path) -> None:
    report = LoadReport()
    got = {(t.tx, t.src, t.dst, t.asset): t for t in read_eth_export([export], report)}
    checksummed = CHECKSUMMED.lower()
    assert got[("0xt1", A, checksummed, "ETH")].amount == 5
    assert got[("0xt3", A, C, "ETH")].ts == 1655778492  # ISO time in UTC
    assert got[("0xt7", A, B, "ETH")].index == 0 and got[("0xt7", B, C, "ETH")].amount == 2
    assert got[("reward_11", "<block-reward>", C, "ETH")].amount == 2 * 10**18
    assert got[("0xt1", A, B, checksummed)].amount == 10**30
    assert len(got) == 6
    assert report.transfers == {"transactions": 2, "traces": 3, "logs": 1}
    assert report.skipped["failed transaction"] == 1
    assert report.skipped["reverted trace"] == 2
    assert report.skipped["top-level call (its transaction was read)"] == 1
    assert report.skipped["ERC-721 transfer (not fungible)"] == 1
    assert report.skipped["token_transfers file (its events were read from the logs)"] == 1
    where = {(Path(p.file).name, p.line) for p in report.problems}
    assert where == {("transactions.csv", 5), ("transactions.csv", 6), ("logs.csv", 5)}
    assert report.problem_count == 3


def test_token_transfers_are_read_without_logs(export: Path) -> None:
    (export / "logs.csv").unlink()
    report = LoadReport()
    tokens = [t for t in read_eth_export([export], report) if t.asset != "ETH"]
    assert [(t.asset, t.src, t.dst, t.amount, t.index) for t in tokens] == [(C, A, B, 1, 3)]


def test_failed_transaction_known_only_from_traces(tmp_path: Path) -> None:
    """GraphSense's transactions carry no receipt status: a failed top-level trace says the value never moved."""
    write_csv(
        tmp_path / "transactions.csv", "txHash,blockId,fromAddress,toAddress,value,blockTimestamp", f"0xf,1,{A},{B},9,5"
    )
    write_csv(
        tmp_path / "traces.csv",
        "blockId,traceId,fromAddress,toAddress,value,status,callType,txHash",
        f"1,call_0xf_,{A},{B},9,0,call,0xf",
        f"1,call_0xf_0,{B},{C},9,1,call,0xf",
    )
    report = LoadReport()
    assert list(read_eth_export([tmp_path], report)) == []
    assert report.skipped == {"failed transaction": 1, "reverted trace": 2}


def test_labels_match_checksummed_addresses(export: Path, tmp_path: Path) -> None:
    tags = write_csv(
        tmp_path / "tags.csv", "network,address,label,category,actor,tagpack", f"ETH,{CHECKSUMMED},x,exchange,ex,p.yaml"
    )
    store = TransferStore()
    load_eth_export(store, [export])
    store.add_labels(read_tagpack_csv(tags))
    assert CHECKSUMMED.lower() in store.address_index() and CHECKSUMMED.lower() in store.labels()


def test_amounts_are_exact_or_refused() -> None:
    assert parse_amount("199e17") == 19_900_000_000_000_000_000
    assert parse_amount("1.5e1") == 15 and parse_amount("0xff") == 255 and parse_amount(str(2**256)) == 2**256
    for bad in ("1.5", "-3", "1e-3", "NaN", "1e999", "", "ten"):
        with pytest.raises(ValueError):
            parse_amount(bad)


def test_a_file_of_another_format_is_refused(tmp_path: Path) -> None:
    write_csv(tmp_path / "transactions.csv", "id,name", "1,x")
    with pytest.raises(InputError, match="no column hash"):
        list(read_eth_export([tmp_path], LoadReport()))
    with pytest.raises(InputError, match="not an ethereum-etl file"):
        list(read_eth_export([write_csv(tmp_path / "notes.csv", "a")], LoadReport()))


def test_cli_loads_an_export(export: Path, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.duckdb"
    result = CliRunner().invoke(cli, ["trace", "load", str(ledger), str(export), "--json"])
    assert result.exit_code == 3, result.output  # the bad rows make it a bad-input run, after loading the rest
    data = json.loads(result.stdout)
    assert (data["format"], data["added"], data["report"]["problem_count"]) == ("eth-etl", 6, 3)
    text = CliRunner().invoke(cli, ["trace", "load", str(ledger), str(export / "transactions.csv")])
    assert "transactions 2" in text.stdout and "transactions.csv:5:" in text.stdout
