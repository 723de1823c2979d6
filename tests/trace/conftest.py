"""Helpers for tracing tests: a store built from a few hand-written transfers."""

from __future__ import annotations

from pathlib import Path

from heistwatch.trace import Label, TraceGraph, Transfer, TransferStore

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "tracing"


def graph_of(transfers: list[Transfer], services: tuple[str, ...] = (), dexes: tuple[str, ...] = ()) -> TraceGraph:
    """An in-memory store with `transfers`, `services` labelled as exchanges and `dexes` as DEXs, as a graph."""
    store = TransferStore()
    store.ingest(transfers)
    labels = [Label(a, f"svc-{a}", "exchange", "test") for a in services]
    store.add_labels(labels + [Label(a, "dex", "defi_dex", "test") for a in dexes])
    return TraceGraph.from_store(store)


def eth(tx: str, ts: int, src: str, dst: str, amount: int, asset: str = "ETH", index: int = 0) -> Transfer:
    """An ETH-chain transfer."""
    return Transfer(tx, ts, "eth", asset, src, dst, amount, index)
