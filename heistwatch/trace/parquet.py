"""Transfers as Parquet files, written and read with DuckDB in row batches; amounts stay exact as DECIMAL(38,0).

Columns: tx, ts, chain, asset, src, dst, amount, index. DECIMAL(38,0) holds every amount the ledger accepts
(below 2**125 < 10**38) and is what Spark and other engines read natively. A file whose amount column is text or
another integer type is read as well, each value checked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from heistwatch.errors import InputError
from heistwatch.trace.eth_etl import MAX_AMOUNT, LoadReport, parse_amount
from heistwatch.trace.ledger import Transfer
from heistwatch.trace.store import TransferStore

COLUMNS = ("tx", "ts", "chain", "asset", "src", "dst", "amount", "index")
BATCH_ROWS = 100_000
_SPLIT = 62  # amounts cross into DuckDB as two int64 halves: numpy has no 128-bit ints
_LOW = (1 << _SPLIT) - 1
_CREATE = """CREATE TABLE transfers (tx VARCHAR, ts BIGINT, chain VARCHAR, asset VARCHAR, src VARCHAR, dst VARCHAR,
amount DECIMAL(38,0), "index" INTEGER)"""
_APPEND = f"""INSERT INTO transfers SELECT tx, ts, chain, asset, src, dst,
((hi::HUGEINT << {_SPLIT}) + lo)::DECIMAL(38,0), idx FROM batch"""
Progress = Callable[[int], None]


def write_parquet(transfers: Iterable[Transfer], path: Path, batch_rows: int = BATCH_ROWS) -> int:
    """Write transfers to one Parquet file (zstd), taking them `batch_rows` at a time; return how many."""
    con = duckdb.connect(":memory:")
    try:
        con.execute(_CREATE)
        written, stream = 0, iter(transfers)
        while chunk := list(islice(stream, batch_rows)):
            batch = _batch(chunk)  # noqa: F841 - DuckDB scans this local dict of numpy arrays by its name
            con.execute(_APPEND)
            written += len(chunk)
        con.execute("COPY transfers TO ? (FORMAT parquet, COMPRESSION zstd)", [str(path)])
    except duckdb.Error as exc:
        raise InputError(str(path), f"cannot write Parquet: {exc}") from exc
    finally:
        con.close()
    return written


def _batch(chunk: list[Transfer]) -> dict[str, np.ndarray[Any, Any]]:
    """Transfers as numpy columns, each amount split into int64 halves."""
    for t in chunk:
        if type(t.amount) is not int or not 0 <= t.amount < MAX_AMOUNT:
            raise InputError(
                f"{t.tx}#{t.index}", f"amount must be an int in base units in [0, 2**125), got {t.amount!r}"
            )
    return {
        "tx": np.array([t.tx for t in chunk], dtype=object),
        "ts": np.array([t.ts for t in chunk], dtype=np.int64),
        "chain": np.array([t.chain for t in chunk], dtype=object),
        "asset": np.array([t.asset for t in chunk], dtype=object),
        "src": np.array([t.src for t in chunk], dtype=object),
        "dst": np.array([t.dst for t in chunk], dtype=object),
        "hi": np.array([t.amount >> _SPLIT for t in chunk], dtype=np.int64),
        "lo": np.array([t.amount & _LOW for t in chunk], dtype=np.int64),
        "idx": np.array([t.index for t in chunk], dtype=np.int64),
    }


def read_parquet(
    path: Path, report: LoadReport, batch_rows: int = BATCH_ROWS, progress: Progress | None = None
) -> Iterator[Transfer]:
    """Transfers from a Parquet file (or a glob of files), `batch_rows` at a time; bad rows go to `report`."""
    con = duckdb.connect(":memory:")
    try:
        yield from _read(con, path, report, batch_rows, progress)
    except duckdb.Error as exc:
        raise InputError(str(path), f"cannot read as Parquet: {exc}") from exc
    finally:
        con.close()


def _read(
    con: duckdb.DuckDBPyConnection, path: Path, report: LoadReport, batch_rows: int, progress: Progress | None
) -> Iterator[Transfer]:
    source = f"read_parquet('{_quoted(path)}')"
    present = {row[0]: str(row[1]) for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    if present.get("amount", "").startswith(("FLOAT", "DOUBLE", "REAL")):
        raise InputError(str(path), f"amount column is {present['amount']}: floats cannot hold base units exactly")
    missing = [c for c in COLUMNS if c not in present and c != "index"]
    if missing:
        raise InputError(str(path), f"not a transfers Parquet file: no column {', '.join(missing)}")
    index = '"index"' if "index" in present else "0"
    # integer and DECIMAL(p,0) amounts arrive as exact Python ints; anything else as text, parsed exactly
    exact = present["amount"] in ("HUGEINT", "BIGINT", "UBIGINT", "INTEGER") or present["amount"].endswith(",0)")
    amount = "amount::HUGEINT" if exact else "amount::VARCHAR"
    cursor = con.execute(f"SELECT tx, ts, chain, asset, src, dst, {amount}, {index} FROM {source}")
    row_number = 0
    while rows := cursor.fetchmany(batch_rows):
        for tx, ts, chain, asset, src, dst, amount, idx in rows:
            row_number += 1
            try:
                if None in (tx, ts, chain, asset, src, dst, amount):
                    raise ValueError("a required value is missing")
                value = amount if type(amount) is int else parse_amount(amount)
                if not 0 <= value < MAX_AMOUNT:
                    raise ValueError(f"amount {value} is outside the ledger's range [0, 2**125) of base units")
            except ValueError as exc:
                report.problem(path, row_number, str(exc))
                continue
            yield Transfer(tx, int(ts), chain, asset, src, dst, value, int(idx or 0))
        if progress:
            progress(len(rows))
    report.rows["parquet"] = report.rows.get("parquet", 0) + row_number


def _quoted(path: Path) -> str:
    """A path inside a single-quoted SQL string."""
    return str(path).replace("'", "''")


def parquet_rows(path: Path) -> int:
    """How many rows a Parquet file holds, from its metadata (for a progress bar)."""
    con = duckdb.connect(":memory:")
    try:
        row = con.execute(f"SELECT count(*) FROM read_parquet('{_quoted(path)}')").fetchone()
    except duckdb.Error as exc:
        raise InputError(str(path), f"cannot read as Parquet: {exc}") from exc
    finally:
        con.close()
    return int(row[0]) if row else 0


def load_parquet(
    store: TransferStore, paths: Iterable[Path], progress: Progress | None = None, batch_rows: int = BATCH_ROWS
) -> LoadReport:
    """Read Parquet transfer files into `store`, one batch at a time; bad rows are counted with their row number."""
    report = LoadReport()
    for path in paths:
        for file in sorted(path.glob("*.parquet")) if path.is_dir() else [path]:
            stream = read_parquet(file, report, batch_rows, progress)
            while chunk := list(islice(stream, batch_rows)):
                added = store.ingest(chunk)
                report.transfers["parquet"] = report.transfers.get("parquet", 0) + added
    return report
