"""The raw Bitcoin block parser: the five real blocks, hand-built blocks, framing, input resolution, and fuzzing."""

from __future__ import annotations

import hashlib
import json
import struct
from functools import cache
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import heistwatch.cli.trace_load  # noqa: F401 - registers `trace load`
from heistwatch.cli.main import cli
from heistwatch.errors import InputError
from heistwatch.ingest.wallets import valid_btc
from heistwatch.trace.btc_blocks import (
    COINBASE,
    UNRESOLVED,
    BlockReport,
    DuckDBOutpoints,
    MemoryOutpoints,
    load_btc_blocks,
    parse_block,
    read_blocks,
    script_address,
)
from heistwatch.trace.ledger import flatten_utxo
from heistwatch.trace.store import TransferStore
from tests.trace.conftest import SHARED

BLOCKS = SHARED / "btc-blocks"
needs_blocks = pytest.mark.skipif(not BLOCKS.is_dir(), reason="shared Bitcoin blocks not present")

# The genesis block, as every Bitcoin node stores it: one coinbase paying 50 BTC to a bare public key (P2PK).
GENESIS = bytes.fromhex(
    "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81b"
    "c3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c01010000000100000000000000000000000000000000000000000000000000"
    "00000000000000ffffffff4d04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e20"
    "6272696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73ffffffff0100f2052a01000000434104678afdb0fe5548"
    "271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d"
    "5fac00000000"
)
REGTEST_BITS = 0x207FFFFF  # the easiest target: about every second nonce gives a valid header


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def varint(n: int) -> bytes:
    return bytes([n]) if n < 0xFD else b"\xfd" + struct.pack("<H", n)


def make_tx(
    spends: list[tuple[bytes, int]], outputs: list[tuple[int, bytes]], witness: bool = False
) -> tuple[bytes, bytes]:
    """(serialized tx, txid in internal order); with `witness`, the SegWit form with one witness item per input."""
    ins = b"".join(prev + struct.pack("<I", vout) + b"\x01\x51" + b"\xff" * 4 for prev, vout in spends)
    outs = b"".join(struct.pack("<Q", value) + varint(len(script)) + script for value, script in outputs)
    body = varint(len(spends)) + ins + varint(len(outputs)) + outs
    plain = b"\x02\x00\x00\x00" + body + b"\x00" * 4
    if not witness:
        return plain, sha256d(plain)
    wit = b"".join(b"\x01\x20" + bytes(32) for _ in spends)
    return b"\x02\x00\x00\x00\x00\x01" + body + wit + b"\x00" * 4, sha256d(plain)


def coinbase(value: int, script: bytes) -> tuple[bytes, bytes]:
    """A coinbase paying `value` (a different value gives a different txid)."""
    return make_tx([(bytes(32), 0xFFFFFFFF)], [(value, script), (0, b"\x6a\x01\x00")])


def make_block(txs: list[tuple[bytes, bytes]], prev: bytes = bytes(32), time: int = 1_600_000_000) -> bytes:
    """A block with a valid merkle root and proof of work at the regtest target."""
    level = [txid for _, txid in txs]
    while len(level) > 1:
        level = level + level[-1:] if len(level) % 2 else level
        level = [sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    for nonce in range(1000):
        header = struct.pack("<I32s32sIII", 0x20000000, prev, level[0], time, REGTEST_BITS, nonce)
        if int.from_bytes(sha256d(header), "little") <= 0x7FFFFF << 8 * (0x20 - 3):
            return header + varint(len(txs)) + b"".join(raw for raw, _ in txs)
    raise AssertionError("no nonce found")


P2PKH = b"\x76\xa9\x14" + bytes(range(20)) + b"\x88\xac"
P2WPKH = b"\x00\x14" + bytes.fromhex("751e76e8199196d454941c45d1b3a323f1433bd6")


@cache
def two_blocks() -> tuple[bytes, bytes, bytes]:
    """Block 1 mints 50 BTC to a P2PKH; block 2 spends it in a SegWit tx (plus an input from before the sample)."""
    cb1 = coinbase(50_0000_0000, P2PKH)
    block1 = make_block([cb1])
    cb2 = coinbase(50_0000_1000, P2WPKH)
    spend = make_tx([(cb1[1], 0), (b"\x99" * 32, 3)], [(30_0000_0000, P2WPKH), (25_0000_0000, P2PKH)], witness=True)
    block2 = make_block([cb2, spend], prev=sha256d(block1[:80]), time=1_600_000_600)
    return block1, block2, spend[1]


@needs_blocks
def test_real_blocks_match_the_manifest() -> None:
    for entry in json.loads((BLOCKS / "manifest.json").read_text()):
        block = parse_block((BLOCKS / entry["file"]).read_bytes(), entry["file"])
        assert block.hash == entry["hash"]
        assert len(block.txs) == entry["tx_count"]
        assert block.time == entry["time"]
        assert block.txs[0].coinbase and not any(tx.coinbase for tx in block.txs[1:])
        assert all(valid_btc(a) for tx in block.txs for a, _ in tx.outputs if not a.startswith("script:"))


@needs_blocks
def test_known_coinbase_address_and_segwit_outputs() -> None:
    block = parse_block((BLOCKS / "block_330000.bin").read_bytes(), "block_330000.bin")
    # F2Pool's payout address (hash160 c825a1ec…c2ab), as block explorers decode this coinbase
    assert block.txs[0].outputs[0][0] == "1KFHE7w8BhaENAswwryaoccDb6qcT6DbYY"
    assert block.merkle_root != "00" * 32 and len(block.merkle_root) == 64
    taproot = parse_block((BLOCKS / "block_722010.bin").read_bytes(), "block_722010.bin")
    prefixes = {a[:4] for tx in taproot.txs for a, _ in tx.outputs}
    assert {"bc1q", "bc1p"} <= prefixes


@needs_blocks
def test_a_changed_transaction_breaks_the_merkle_root(tmp_path: Path) -> None:
    data = bytearray((BLOCKS / "block_250000.bin").read_bytes())
    data[-5] ^= 1  # a byte of the last transaction's last output script
    with pytest.raises(InputError, match="merkle root") as err:
        parse_block(bytes(data), "block_250000.bin")
    assert "block_250000.bin block 000000000000003887df1f29024b06fc2200b55f8af8f35453d7be294df2d214" in err.value.where


@needs_blocks
def test_loading_the_real_blocks_counts_unresolved_inputs() -> None:
    store = TransferStore()
    report = load_btc_blocks(store, [BLOCKS])
    assert (report.blocks, report.txs, report.coinbase_txs, report.skipped_files) == (5, 8469, 5, 1)
    # five blocks years apart: nearly every input spends an output from outside the sample
    assert 0 < report.unresolved_inputs <= report.inputs and report.partial_txs <= report.txs - 5
    assert store.count() == report.transfers > report.txs


def test_genesis_block_pays_its_key_as_p2pkh() -> None:
    block = parse_block(GENESIS, "genesis")
    assert block.hash == "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
    assert block.txs[0].outputs == (("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", 50_0000_0000),)
    assert block.p2pk_outputs == 1


def test_script_addresses_follow_the_bips() -> None:
    assert script_address(P2WPKH) == ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "segwit")  # BIP 173
    p2wsh = b"\x00\x20" + bytes.fromhex("1863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262")
    assert script_address(p2wsh)[0] == "bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3"
    p2tr = b"\x51\x20" + bytes.fromhex("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
    assert script_address(p2tr)[0] == "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0"  # BIP 350
    assert script_address(b"\x76\xa9\x14" + bytes(20) + b"\x88\xac")[0] == "1111111111111111111114oLvT2"
    assert script_address(b"\xa9\x14" + bytes(20) + b"\x87")[0].startswith("3")
    assert script_address(b"\x6a\x04abcd") == ("script:6a0461626364", "script")


@pytest.mark.parametrize("index", ["memory", "duckdb"])
def test_inputs_resolve_across_blocks(tmp_path: Path, index: str) -> None:
    block1, block2, spend_id = two_blocks()
    (tmp_path / "a.bin").write_bytes(block1)
    (tmp_path / "b.bin").write_bytes(block2)
    outpoints = MemoryOutpoints() if index == "memory" else DuckDBOutpoints(duckdb.connect())
    report = BlockReport()
    txs = list(read_blocks([tmp_path], outpoints, report))
    spend = next(tx for tx in txs if tx.tx == spend_id[::-1].hex())
    p2pkh = script_address(P2PKH)[0]
    # the known input resolves; the input from before the sample carries only the least it must hold
    assert [(i.address, i.amount) for i in spend.inputs] == [(p2pkh, 50_0000_0000), (UNRESOLVED, 5_0000_0000)]
    assert spend.fee == 0 and (report.inputs, report.unresolved_inputs, report.partial_txs) == (2, 1, 1)
    minted = txs[0]
    assert minted.inputs[0].address == COINBASE and minted.inputs[0].amount == 50_0000_0000
    legs = flatten_utxo(spend)
    assert sum(t.amount for t in legs if t.src == f"tx:{spend.tx}") == 55_0000_0000


def test_blk_files_with_framing_and_xor(tmp_path: Path) -> None:
    block1, block2, _ = two_blocks()
    magic = bytes.fromhex("fabfb5da")
    framed = b"".join(magic + struct.pack("<I", len(b)) + b for b in (block1, block2)) + bytes(64)
    key = bytes.fromhex("0123456789abcdef")
    (tmp_path / "xor.dat").write_bytes(key)
    (tmp_path / "blk00000.dat").write_bytes(bytes(b ^ key[i % 8] for i, b in enumerate(framed)))
    (tmp_path / "rev00000.dat").write_bytes(b"undo data is not a block file")
    report = BlockReport()
    txs = list(read_blocks([tmp_path], MemoryOutpoints(), report))
    assert (report.files, report.blocks, report.skipped_files, len(txs)) == (1, 2, 2, 3)
    assert report.unresolved_inputs == 1


def test_hex_block_file(tmp_path: Path) -> None:
    (tmp_path / "genesis.hex").write_text(GENESIS.hex() + "\n")
    assert (
        next(read_blocks([tmp_path / "genesis.hex"], MemoryOutpoints(), BlockReport())).outputs[0].amount
        == 50_0000_0000
    )


def test_truncated_block_names_file_and_offset(tmp_path: Path) -> None:
    _, block2, _ = two_blocks()
    with pytest.raises(InputError, match="@ byte") as err:
        parse_block(block2[:-7], "b.bin", offset=100)
    assert err.value.where.startswith("b.bin block ")
    path = tmp_path / "blk00001.dat"
    path.write_bytes(bytes.fromhex("f9beb4d9") + struct.pack("<I", len(block2) + 10) + block2)
    with pytest.raises(InputError, match="cut off") as cut:
        list(read_blocks([path], MemoryOutpoints(), BlockReport()))
    assert cut.value.where == f"{path} @ byte 0"


def test_bad_proof_of_work_is_refused() -> None:
    header = bytearray(GENESIS)
    header[76] ^= 0xFF  # another nonce
    with pytest.raises(InputError, match="above the target"):
        parse_block(bytes(header), "genesis")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(min_value=0), flips=st.lists(st.tuples(st.integers(min_value=80), st.integers(1, 255))))
def test_truncated_or_damaged_blocks_raise_only_input_errors(cut: int, flips: list[tuple[int, int]]) -> None:
    _, block2, _ = two_blocks()
    data = bytearray(block2[: cut % (len(block2) + 1)])
    for position, mask in flips:
        if data[80:]:
            data[80 + position % (len(data) - 80)] ^= mask
    try:
        block = parse_block(bytes(data), "fuzz")
    except InputError:
        return
    # the merkle root commits to every txid: what still parses (witness bytes are not committed) has the same txids
    assert [tx.txid for tx in block.txs] == [tx.txid for tx in parse_block(block2, "whole").txs]


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400))
def test_random_bytes_raise_only_input_errors(data: bytes) -> None:
    with pytest.raises(InputError):
        parse_block(data, "random")


def test_header_of_random_body_raises_only_input_errors() -> None:
    """A valid header followed by arbitrary bytes reaches the transaction parser, which must fail cleanly."""
    _, block2, _ = two_blocks()

    @settings(max_examples=300, deadline=None)
    @given(body=st.binary(max_size=300))
    def check(body: bytes) -> None:
        with pytest.raises(InputError):
            parse_block(block2[:80] + body, "fuzz")

    check()


def test_cli_loads_resolve_against_earlier_loads(tmp_path: Path) -> None:
    """The ledger keeps unspent outputs, so a later load resolves spends of outputs an earlier load read."""
    block1, block2, _ = two_blocks()
    (tmp_path / "1.bin").write_bytes(block1)
    (tmp_path / "2.bin").write_bytes(block2)
    ledger = tmp_path / "ledger.duckdb"
    first = CliRunner().invoke(cli, ["trace", "load", str(ledger), str(tmp_path / "1.bin"), "--json"])
    assert first.exit_code == 0, first.output
    second = CliRunner().invoke(cli, ["trace", "load", str(ledger), str(tmp_path / "2.bin")])
    assert second.exit_code == 0, second.output
    assert "1 inputs unresolved" in second.stdout and "2 inputs" in second.stdout
    store = TransferStore(ledger)
    try:
        address = script_address(P2PKH)[0]
        # minted in the first load, spent (at its full value) in the second
        assert sorted((t.src == address, t.amount) for t in store.expand(address))[:2] == [
            (False, 25_0000_0000),
            (False, 50_0000_0000),
        ]
        assert any(t.src == address and t.amount == 50_0000_0000 for t in store.expand(address))
    finally:
        store.close()
