"""The in-memory transfer graph the tracer walks: time-ordered columns plus a per-address event index (CSR)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from heistwatch.trace.ledger import Transfer
from heistwatch.trace.store import Columns, Label, TransferStore

IntArray = np.ndarray[Any, np.dtype[np.int64]]


@dataclass(frozen=True)
class TraceGraph:
    """Transfers in time order (position = time rank) and, per address, the positions it takes part in."""

    cols: Columns
    offsets: IntArray
    events: IntArray
    tx_names: list[str]
    tx_ids: dict[str, int]
    address_ids: dict[str, int]
    label_ids: dict[int, Label]

    @classmethod
    def from_store(cls, store: TransferStore) -> TraceGraph:
        """Load every transfer from the store and index it by address."""
        cols = store.columns()
        n = len(cols.src)
        keys = np.concatenate([cols.src, cols.dst]).astype(np.int64)
        pos = np.tile(np.arange(n, dtype=np.int64), 2)
        events = np.sort((keys << 32) | pos) & 0xFFFFFFFF  # one int64 sort by (address, position)
        counts = np.bincount(keys, minlength=len(cols.addresses))
        offsets = np.zeros(len(cols.addresses) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        ids = store.address_index()
        label_ids = {ids[a]: label for a, label in cols.labels.items() if a in ids}
        return cls(cols, offsets, events, store.tx_names(), store.tx_index(), ids, label_ids)

    @property
    def labels(self) -> dict[str, Label]:
        """Service labels by address."""
        return self.cols.labels

    def address_events(self, address: int) -> IntArray:
        """Positions of the transfers into or out of `address`, oldest first."""
        return self.events[self.offsets[address] : self.offsets[address + 1]]

    def positions_of(self, tx: str) -> list[int]:
        """Positions of the transfers of transaction `tx` (an empty list if unknown)."""
        if tx not in self.tx_ids:
            return []
        return [int(i) for i in np.flatnonzero(self.cols.tx == self.tx_ids[tx])]

    def transfer(self, i: int) -> Transfer:
        """The transfer at position `i`, with names resolved."""
        c = self.cols
        chain, asset = c.assets[int(c.asset[i])]
        src, dst = c.addresses[int(c.src[i])], c.addresses[int(c.dst[i])]
        return Transfer(self.tx_names[int(c.tx[i])], int(c.ts[i]), chain, asset, src, dst, c.amount(i))
