"""The DuckDB store: exact big amounts, expansion, incremental ingest, labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from heistwatch.errors import InputError
from heistwatch.trace import Label, TraceGraph, Transfer, TransferStore
from tests.trace.conftest import eth

BIG = 123_456_789 * 10**18 + 7  # beyond 64 bits: wei amounts must stay exact


def test_amounts_beyond_64_bits_round_trip(tmp_path: Path) -> None:
    store = TransferStore(tmp_path / "t.duckdb")
    store.ingest([eth("t0", 1, "a", "b", BIG), eth("t1", 2, "b", 'c,"odd', 1)])
    graph = TraceGraph.from_store(store)
    assert graph.cols.amount(0) == BIG
    assert store.expand("b")[0].amount == BIG
    assert [t.dst for t in store.expand("b")] == ["b", 'c,"odd']
    store.close()
    again = TransferStore(tmp_path / "t.duckdb")
    assert again.count() == 2
    assert again.ingest([eth("t2", 3, "a", "z", 5)]) == 1
    assert [t.tx for t in again.expand("a")] == ["t0", "t2"]
    assert again.expand("nobody") == []


def test_labels_first_wins() -> None:
    store = TransferStore()
    store.add_labels([Label("x", "one", "exchange", "s1"), Label("x", "two", "mixing_service", "s2")])
    assert store.labels()["x"].service == "one"
    assert store.ingest([]) == 0


def test_late_ingest_is_replayed_in_time_order() -> None:
    store = TransferStore()
    store.ingest([eth("t1", 20, "a", "b", 1)])
    store.ingest([eth("t0", 10, "v", "a", 5)])
    assert TraceGraph.from_store(store).transfer(0).tx == "t0"


def test_a_rejected_transfer_leaves_the_store_usable(tmp_path: Path) -> None:
    store = TransferStore(tmp_path / "l.duckdb")
    good = Transfer("t1", 1, "eth", "ETH", "0xa", "0xb", 5, 0)
    store.ingest([good])
    with pytest.raises(InputError):
        store.ingest(
            [Transfer("t2", 2, "eth", "ETH", "0xc", "0xd", 1, 0), Transfer("t3", 3, "eth", "ETH", "0xe", "0xf", -1, 0)]
        )
    store.ingest([Transfer("t4", 4, "eth", "ETH", "0xb", "0xg", 2, 0)])
    assert store.count() == 2
    assert [t.tx for t in store.expand("0xb")] == ["t1", "t4"]
    store.close()


def test_checksummed_evm_addresses_meet_their_lower_case_labels() -> None:
    store = TransferStore()
    checksummed = "0x52908400098527886E0F7030069857D2E4169EE7"
    store.ingest([Transfer("t1", 1, "ethereum", "ETH", "0xabc", checksummed, 5)])
    store.add_labels([Label(checksummed.lower(), "Exchange", "exchange", "test")])
    store.ingest([Transfer("t2", 2, "ethereum", "ETH", checksummed.lower(), "0xdef", 2)])
    assert len(store.expand(checksummed)) == 2
    assert checksummed.lower() in store.labels()
    store.close()


def test_upper_case_bech32_is_the_same_address() -> None:
    store = TransferStore()
    address = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
    store.ingest([Transfer("t1", 1, "btc", "BTC", "a", address.upper(), 5)])
    assert len(store.expand(address)) == 1
    store.close()
