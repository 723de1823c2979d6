"""Chain reader benchmark: raw Bitcoin blocks, an ethereum-etl export, and Parquet transfers, with anchors.

Blocks: the five real blocks in ../shared/data/tracing/btc-blocks, parsed with every check (proof of work,
merkle root, txids, an address for every output), and loaded into an in-memory ledger (outpoints in DuckDB).
Anchor: python-bitcoinlib's `CBlock.deserialize` + txids + addresses on the same bytes (the `bench` extra;
left out when not installed). ETH: the export in ../shared/data/tracing/eth-sample read into transfers (traces
pre-pass, transactions, traces, logs), and loaded into a ledger. Anchor: `csv.DictReader` / `json.loads` over
the same files, doing nothing with the rows. Parquet: transfers written and read back in batches. Anchors:
DuckDB writing the same rows from SQL, and fetching the file's rows as plain tuples. Medians of `--repeats` runs.
Run: .venv/bin/python benchmarks/trace_readers.py [--size small|full] [--repeats 5] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from heistwatch.trace.btc_blocks import load_btc_blocks, parse_block, script_address
from heistwatch.trace.eth_etl import LoadReport, load_eth_export, read_eth_export
from heistwatch.trace.ledger import Transfer
from heistwatch.trace.parquet import read_parquet, write_parquet
from heistwatch.trace.store import TransferStore

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tracing"
PARQUET_ROWS = {"small": 200_000, "full": 2_000_000}


def _median_seconds(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall seconds of `repeats` calls, and the last call's value."""
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def _blocks(repeats: int) -> dict[str, Any]:
    files = sorted((DATA / "btc-blocks").glob("*.bin"))
    raw = [(f.name, f.read_bytes()) for f in files]
    size = sum(len(data) for _, data in raw)
    seconds, parsed = _median_seconds(lambda: [parse_block(data, name) for name, data in raw], repeats)
    txs = sum(len(b.txs) for b in parsed)
    result: dict[str, Any] = {
        "blocks": len(raw),
        "txs": txs,
        "mb": size / 1e6,
        "seconds": seconds,
        "blocks_per_s": len(raw) / seconds,
        "mb_per_s": size / 1e6 / seconds,
        "txs_per_s": txs / seconds,
    }
    load_s, transfers = _median_seconds(lambda: _load(load_btc_blocks, DATA / "btc-blocks"), repeats)
    result |= {"load_seconds": load_s, "load_transfers": transfers, "load_transfers_per_s": transfers / load_s}
    anchor = _bitcoinlib_anchor(raw, repeats)
    if anchor is not None:
        result["anchor_python_bitcoinlib_seconds"] = anchor
        result["speedup_over_python_bitcoinlib"] = anchor / seconds
    return result


def _bitcoinlib_anchor(raw: list[tuple[str, bytes]], repeats: int) -> float | None:
    """python-bitcoinlib doing the same work: deserialize, txids, an address (or none) for each output."""
    try:
        from bitcoin.core import CBlock  # type: ignore[import-untyped,import-not-found,unused-ignore]
        from bitcoin.wallet import (  # type: ignore[import-untyped,import-not-found,unused-ignore]
            CBitcoinAddress,
            CBitcoinAddressError,
        )
    except ImportError:
        return None

    def parse_all() -> int:
        count = 0
        for _, data in raw:
            block = CBlock.deserialize(data)
            for tx in block.vtx:
                tx.GetTxid()
                for out in tx.vout:
                    try:
                        str(CBitcoinAddress.from_scriptPubKey(out.scriptPubKey))
                    except CBitcoinAddressError:
                        script_address(bytes(out.scriptPubKey))  # what heistwatch shows for other scripts
                    count += 1
        return count

    return _median_seconds(parse_all, repeats)[0]


def _eth(repeats: int) -> dict[str, Any]:
    folder = DATA / "eth-sample"
    files = [folder / n for n in ("blocks.csv", "transactions.csv", "traces.csv", "logs.json")]
    seconds, transfers = _median_seconds(lambda: list(read_eth_export([folder], LoadReport())), repeats)
    # the readers pass over traces twice (failed subtrees first), so the rows they read are counted that way
    rows = sum(_count_rows(f) for f in files) + _count_rows(folder / "traces.csv")

    def plain_read() -> int:
        return sum(_count_rows(f) for f in files) + _count_rows(folder / "traces.csv")

    anchor, _ = _median_seconds(plain_read, repeats)
    load_s, loaded = _median_seconds(lambda: _load(load_eth_export, folder), repeats)
    return {
        "load_seconds": load_s,
        "load_transfers_per_s": loaded / load_s,
        "rows": rows,
        "transfers": len(transfers),
        "seconds": seconds,
        "rows_per_s": rows / seconds,
        "anchor_plain_parse_seconds": anchor,
        "slowdown_over_plain_parse": seconds / anchor,
    }


def _load(loader: Callable[[TransferStore, list[Path]], object], folder: Path) -> int:
    """Transfers in a fresh in-memory store after `loader` read `folder` into it (what `trace load` does)."""
    store = TransferStore()
    try:
        loader(store, [folder])
        return store.count()
    finally:
        store.close()


def _count_rows(path: Path) -> int:
    """Rows of a CSV (DictReader) or JSON-lines file (json.loads), parsed and dropped."""
    with path.open(newline="") as handle:
        if path.suffix == ".csv":
            return sum(1 for _ in csv.DictReader(handle))
        return sum(1 for line in handle if json.loads(line))


def _parquet(size: str, repeats: int) -> dict[str, Any]:
    n = PARQUET_ROWS[size]
    transfers = [
        Transfer(
            f"0x{i:064x}", 1_600_000_000 + i, "eth", "ETH", f"0x{i % 9973:040x}", f"0x{i % 7919:040x}", 10**18 + i, 0
        )
        for i in range(n)
    ]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.parquet"
        write_s, _ = _median_seconds(lambda: write_parquet(transfers, path), repeats)
        read_s, back = _median_seconds(lambda: list(read_parquet(path, LoadReport())), repeats)
        assert len(back) == n
        con = duckdb.connect()
        anchor_write, _ = _median_seconds(lambda: con.execute(_ANCHOR_WRITE.format(n=n, path=path)), repeats)
        anchor_read, _ = _median_seconds(lambda: con.execute(f"SELECT * FROM '{path}'").fetchall(), repeats)
        con.close()
    return {
        "transfers": n,
        "write_per_s": n / write_s,
        "read_per_s": n / read_s,
        "anchor_duckdb_sql_write_per_s": n / anchor_write,
        "anchor_duckdb_fetch_tuples_per_s": n / anchor_read,
        "write_slowdown_over_anchor": write_s / anchor_write,
        "read_slowdown_over_anchor": read_s / anchor_read,
    }


_ANCHOR_WRITE = """COPY (SELECT printf('0x%064x', i) tx, 1600000000 + i ts, 'eth' chain, 'ETH' asset,
printf('0x%040x', i % 9973) src, printf('0x%040x', i % 7919) dst,
(1000000000000000000::HUGEINT + i)::DECIMAL(38,0) amount, 0 "index"
FROM range({n}) t(i)) TO '{path}.anchor' (FORMAT parquet, COMPRESSION zstd)"""


def run(size: str, repeats: int = 5) -> dict[str, Any]:
    """Every reader figure with its anchor, as one dict."""
    if not DATA.is_dir():
        raise SystemExit(f"needs the shared tracing data at {DATA}")
    return {
        "size": size,
        "repeats": repeats,
        "btc_blocks": _blocks(repeats),
        "eth_etl": _eth(repeats),
        "parquet": _parquet(size, repeats),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size", choices=["small", "full"], default="small")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.size, args.repeats)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for key, value in result.items():
        print(f"{key}: {json.dumps(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
