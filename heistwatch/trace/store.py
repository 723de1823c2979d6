"""The DuckDB transfer store: interned addresses, transactions and assets; columnar bulk ingest; fast expansion."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from heistwatch.errors import StoreError
from heistwatch.trace.ledger import Transfer, check_transfer, normal_address

_SCHEMA = """
CREATE TABLE IF NOT EXISTS addresses (id INTEGER, address VARCHAR);
CREATE TABLE IF NOT EXISTS txs (id BIGINT, tx VARCHAR);
CREATE TABLE IF NOT EXISTS assets (id INTEGER, chain VARCHAR, asset VARCHAR);
CREATE TABLE IF NOT EXISTS transfers (
  seq BIGINT, tx BIGINT, ts BIGINT, asset INTEGER, src INTEGER, dst INTEGER, amount HUGEINT, idx INTEGER);
CREATE TABLE IF NOT EXISTS labels (address VARCHAR, service VARCHAR, category VARCHAR, source VARCHAR);
"""
# DuckDB did not pick its ART indexes for these point look-ups; a copy sorted by address lets zone maps
# skip every row group but one or two, which keeps an expansion in the low milliseconds.
_ADJACENCY = """
CREATE OR REPLACE TABLE adjacency AS
SELECT * FROM (SELECT src AS node, * FROM transfers UNION ALL SELECT dst AS node, * FROM transfers WHERE dst <> src)
ORDER BY node, ts, seq
"""
_EXPAND = "SELECT tx, ts, asset, src, dst, amount, idx FROM adjacency WHERE node = $node ORDER BY ts, seq"
_SPLIT = 62  # amounts cross to numpy as two int64 halves: HUGEINT does not fit numpy
_LOW = (1 << _SPLIT) - 1
_MAX_AMOUNT = 1 << 125


@dataclass(frozen=True)
class Label:
    """A service (or sanctioned party) that owns an address, from a named label source."""

    address: str
    service: str
    category: str
    source: str


@dataclass(frozen=True)
class Columns:
    """All transfers as numpy columns in (ts, seq) order, with the id → name tables."""

    tx: np.ndarray[Any, np.dtype[np.int64]]
    ts: np.ndarray[Any, np.dtype[np.int64]]
    asset: np.ndarray[Any, np.dtype[np.int32]]
    src: np.ndarray[Any, np.dtype[np.int32]]
    dst: np.ndarray[Any, np.dtype[np.int32]]
    amount_hi: np.ndarray[Any, np.dtype[np.int64]]
    amount_lo: np.ndarray[Any, np.dtype[np.int64]]
    addresses: list[str]
    assets: list[tuple[str, str]]
    labels: dict[str, Label]

    def amount(self, i: int) -> int:
        """The exact amount of transfer `i`."""
        return (int(self.amount_hi[i]) << _SPLIT) | int(self.amount_lo[i])


class TransferStore:
    """Transfers, addresses and labels in one DuckDB file (or in memory when `path` is None)."""

    def __init__(self, path: Path | str | None = None) -> None:
        try:
            self.con = duckdb.connect(str(path) if path else ":memory:")
            self.con.execute(_SCHEMA)
        except duckdb.Error as exc:
            raise StoreError(f"cannot open transfer store {path}: {exc}") from exc
        self._addresses: dict[str, int] = self._interned("SELECT address, id FROM addresses")
        self._txs: dict[str, int] = self._interned("SELECT tx, id FROM txs")
        self._assets: dict[tuple[str, str], int] = {
            (c, a): i for i, c, a in self.con.execute("SELECT id, chain, asset FROM assets").fetchall()
        }
        self._seq = self.count()
        self._names: list[str] = []
        self._tx_list: list[str] = []

    def _interned(self, sql: str) -> dict[str, int]:
        return {k: v for k, v in self.con.execute(sql).fetchall()}

    def count(self) -> int:
        """How many transfers the store holds."""
        row = self.con.execute("SELECT count(*) FROM transfers").fetchone()
        return int(row[0]) if row else 0

    def ingest(self, transfers: Iterable[Transfer]) -> int:
        """Append transfers (`columns()` orders them by time; ties keep ingest order); return how many were added."""
        first_address, first_tx, first_asset = len(self._addresses), len(self._txs), len(self._assets)
        try:
            cols = self._columns(transfers)  # DuckDB scans this local dict of numpy arrays by its name
        except BaseException:
            # a rejected transfer: forget the names interned before it, so the store stays as it was
            _forget_after(self._addresses, first_address)
            _forget_after(self._txs, first_tx)
            _forget_after(self._assets, first_asset)
            raise
        added = len(cols["seq"])
        self._names, self._tx_list = [], []
        if not added:
            return 0
        self.con.execute(
            f"INSERT INTO transfers SELECT seq, tx, ts, asset, src, dst, (hi::HUGEINT << {_SPLIT}) + lo, idx FROM cols"
        )
        self._insert_names("addresses", self._addresses, first_address)
        self._insert_names("txs", self._txs, first_tx)
        self.con.execute("DELETE FROM assets")
        self.con.executemany("INSERT INTO assets VALUES (?, ?, ?)", [(i, c, a) for (c, a), i in self._assets.items()])
        return added

    def _columns(self, transfers: Iterable[Transfer]) -> dict[str, np.ndarray[Any, Any]]:
        """Intern names and split amounts into int64 halves, column by column."""
        addresses, txs, assets = self._addresses, self._txs, self._assets
        lists: list[list[int]] = [[] for _ in range(8)]
        tx, ts, asset, src, dst, hi, lo, idx = lists
        for t in transfers:
            amount = t.amount
            if type(amount) is not int or not 0 <= amount < _MAX_AMOUNT:
                check_transfer(t)
            tx.append(txs.setdefault(t.tx, len(txs)))
            ts.append(t.ts)
            asset.append(assets.setdefault((t.chain, t.asset), len(assets)))
            node = addresses.get(t.src)
            src.append(node if node is not None else addresses.setdefault(normal_address(t.src), len(addresses)))
            node = addresses.get(t.dst)
            dst.append(node if node is not None else addresses.setdefault(normal_address(t.dst), len(addresses)))
            hi.append(amount >> _SPLIT)
            lo.append(amount & _LOW)
            idx.append(t.index)
        start, self._seq = self._seq, self._seq + len(tx)
        cols = {"seq": np.arange(start, self._seq, dtype=np.int64)}
        for name, values in (("tx", tx), ("ts", ts), ("asset", asset), ("src", src), ("dst", dst)):
            cols[name] = np.array(values, dtype=np.int64)
        cols.update(hi=np.array(hi, dtype=np.int64), lo=np.array(lo, dtype=np.int64), idx=np.array(idx, np.int64))
        return cols

    def _insert_names(self, table: str, names: dict[str, int], first: int) -> None:
        if len(names) == first:
            return
        new = {  # noqa: F841 - DuckDB scans this local dict of numpy arrays by its name
            "id": np.arange(first, len(names), dtype=np.int64),
            "name": np.array(list(islice(names, first, None)), dtype=object),
        }
        self.con.execute(f"INSERT INTO {table} SELECT id, name FROM new")

    def build_indexes(self) -> None:
        """Build the address-sorted copy of the transfers that `expand` reads; rebuild after ingesting more."""
        self.con.execute(_ADJACENCY)
        self._names = self._name_list(self._addresses)
        self._tx_list = self._name_list(self._txs)

    def expand(self, address: str) -> list[Transfer]:
        """Every transfer into or out of `address`, oldest first (after `build_indexes`)."""
        if not self._names:
            self.build_indexes()
        node = self._addresses.get(normal_address(address))
        if node is None:
            return []
        rows = self.con.execute(_EXPAND, {"node": node}).fetchall()
        names, txs, assets = self._names, self._tx_list, self._asset_list()
        return [
            Transfer(txs[tx], ts, assets[asset][0], assets[asset][1], names[src], names[dst], amount, idx)
            for tx, ts, asset, src, dst, amount, idx in rows
        ]

    def _asset_list(self) -> list[tuple[str, str]]:
        assets = [("", "")] * len(self._assets)
        for key, i in self._assets.items():
            assets[i] = key
        return assets

    @staticmethod
    def _name_list(ids: dict[str, int]) -> list[str]:
        names = [""] * len(ids)
        for name, i in ids.items():
            names[i] = name
        return names

    def add_labels(self, labels: Iterable[Label]) -> int:
        """Store service labels; return how many were added."""
        rows = [(normal_address(lb.address), lb.service, lb.category, lb.source) for lb in labels]
        if rows:
            self.con.executemany("INSERT INTO labels VALUES (?, ?, ?, ?)", rows)
        return len(rows)

    def labels(self) -> dict[str, Label]:
        """Each labelled address with its label; the first stored label wins."""
        out: dict[str, Label] = {}
        for row in self.con.execute("SELECT address, service, category, source FROM labels").fetchall():
            out.setdefault(row[0], Label(*row))
        return out

    def columns(self) -> Columns:
        """All transfers as numpy columns in (ts, seq) order: the input of the in-memory tracer."""
        sql = f"""SELECT seq, tx, ts, asset, src, dst, (amount >> {_SPLIT})::BIGINT AS hi,
                  (amount & {_LOW})::BIGINT AS lo FROM transfers"""
        got = self.con.execute(sql).fetchnumpy()
        seq, ts = np.asarray(got["seq"]), np.asarray(got["ts"])
        if not (np.all(np.diff(ts) >= 0) and np.all(np.diff(seq) > 0)):  # sorting is needed only if ingested late
            order = np.lexsort((seq, ts))
            got = {name: np.asarray(column)[order] for name, column in got.items()}
        names = self._names or self._name_list(self._addresses)
        assets = self._asset_list()
        return Columns(
            tx=np.asarray(got["tx"], dtype=np.int64),
            ts=np.asarray(got["ts"], dtype=np.int64),
            asset=np.asarray(got["asset"], dtype=np.int32),
            src=np.asarray(got["src"], dtype=np.int32),
            dst=np.asarray(got["dst"], dtype=np.int32),
            amount_hi=np.asarray(got["hi"], dtype=np.int64),
            amount_lo=np.asarray(got["lo"], dtype=np.int64),
            addresses=names,
            assets=assets,
            labels=self.labels(),
        )

    def tx_index(self) -> dict[str, int]:
        """Interned transaction ids by name (the store's own table: do not modify)."""
        return self._txs

    def address_index(self) -> dict[str, int]:
        """Interned address ids by address (the store's own table: do not modify)."""
        return self._addresses

    def tx_names(self) -> list[str]:
        """Transaction names indexed by interned id."""
        return self._tx_list or self._name_list(self._txs)

    def close(self) -> None:
        """Close the DuckDB connection."""
        self.con.close()


def _forget_after(names: dict[Any, int], count: int) -> None:
    """Drop every entry interned after the first `count` (insertion order)."""
    for key in list(names)[count:]:
        del names[key]
