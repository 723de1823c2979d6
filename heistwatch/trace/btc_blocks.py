"""Raw Bitcoin blocks (wire format) → UTXO transactions, inputs resolved from an outpoint index the caller keeps.

Reads one serialized block per file (raw bytes or hex), folders of them, and Bitcoin Core's `blk*.dat` files
(magic + size framing, `xor.dat` obfuscation). Every block's proof of work and merkle root are checked. A block
alone does not say what its inputs spend, so inputs are looked up in an outpoint index of the outputs read so
far (`MemoryOutpoints`, or `DuckDBOutpoints` in the ledger file so that later loads resolve against earlier ones);
an input the index does not know is counted as unresolved, never given an invented value.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import reduce
from operator import xor
from pathlib import Path
from typing import Any, Protocol

import duckdb
import numpy as np

from heistwatch.errors import InputError
from heistwatch.ingest.wallets import _B58, _BECH32, _BECH32_CONST, _BECH32M_CONST, _GEN
from heistwatch.trace.ledger import Transfer, UtxoInput, UtxoOutput, UtxoTx, flatten_utxo
from heistwatch.trace.store import TransferStore

CHAIN, ASSET = "btc", "BTC"
COINBASE = "<coinbase>"
UNRESOLVED = "<unresolved>"
MAX_MONEY = 21_000_000 * 100_000_000
# Network magics of blk*.dat framing: mainnet, testnet3, testnet4, signet, regtest.
MAGICS = frozenset(bytes.fromhex(m) for m in ("f9beb4d9", "0b110907", "1c163f28", "0a03cf40", "fabfb5da"))
BLOCK_SUFFIXES = frozenset({".bin", ".blk", ".raw", ".hex"})
_U16, _U32, _U64 = struct.Struct("<H"), struct.Struct("<I"), struct.Struct("<Q")
_HEADER = struct.Struct("<I32s32sIII")
_NULL_PREV = bytes(32)
# BIP 173's checksum generator folded into a table: one step per 5-bit value instead of five
_GEN_TABLE = tuple(reduce(xor, (g for i, g in enumerate(_GEN) if top >> i & 1), 0) for top in range(32))
_HEX = frozenset(b"0123456789abcdefABCDEF \r\n\t")
Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class RawTx:
    """One parsed transaction: the outpoints it spends (none for a coinbase) and its outputs as (address, value)."""

    txid: str
    spends: tuple[tuple[str, int], ...]
    outputs: tuple[tuple[str, int], ...]
    coinbase: bool


@dataclass(frozen=True, slots=True)
class Block:
    """A parsed block whose proof of work and merkle root have been checked."""

    hash: str
    prev_hash: str
    merkle_root: str
    time: int
    bits: int
    size: int
    txs: tuple[RawTx, ...]
    p2pk_outputs: int
    script_outputs: int


@dataclass
class BlockReport:
    """What a block read saw: counts, and the inputs it could not resolve (spends of outputs it never read)."""

    files: int = 0
    skipped_files: int = 0
    blocks: int = 0
    bytes: int = 0
    txs: int = 0
    coinbase_txs: int = 0
    inputs: int = 0
    unresolved_inputs: int = 0
    partial_txs: int = 0
    outputs: int = 0
    p2pk_outputs: int = 0
    script_outputs: int = 0
    transfers: int = 0

    def summary(self) -> str:
        """One paragraph for people: what was read and what stays unresolved."""
        return (
            f"{self.blocks:,} blocks ({self.bytes:,} bytes, {self.files} files; {self.skipped_files} other files"
            f" skipped), {self.txs:,} transactions"
            f" ({self.coinbase_txs:,} coinbase), {self.inputs:,} inputs, {self.outputs:,} outputs;"
            f" {self.unresolved_inputs:,} inputs unresolved (they spend outputs not read yet) in"
            f" {self.partial_txs:,} transactions, each paid by `{UNRESOLVED}` with the least value it must have;"
            f" {self.p2pk_outputs:,} P2PK outputs shown as the key's P2PKH address,"
            f" {self.script_outputs:,} other scripts as `script:<hex>`"
        )


class OutpointIndex(Protocol):
    """Unspent outputs by (txid, vout): what an input spends."""

    def settle(
        self, created: list[tuple[str, int, str, int]], spent: list[tuple[str, int]]
    ) -> list[tuple[str, int] | None]:
        """Add a block's outputs (txid, vout, address, value), then take the (address, value) each spend uses."""
        ...


class MemoryOutpoints:
    """An outpoint index in a dict: for runs that fit in memory."""

    def __init__(self) -> None:
        self.unspent: dict[tuple[str, int], tuple[str, int]] = {}

    def settle(
        self, created: list[tuple[str, int, str, int]], spent: list[tuple[str, int]]
    ) -> list[tuple[str, int] | None]:
        """Add a block's outputs, then take the ones its inputs spend (None for an unknown outpoint)."""
        unspent = self.unspent
        for txid, vout, address, value in created:
            unspent[(txid, vout)] = (address, value)
        return [unspent.pop(key, None) for key in spent]


class DuckDBOutpoints:
    """An outpoint index in a DuckDB table (`btc_utxos`), kept in the ledger file across loads."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        con.execute("CREATE TABLE IF NOT EXISTS btc_utxos (txid VARCHAR, vout INTEGER, address VARCHAR, value BIGINT)")

    def settle(
        self, created: list[tuple[str, int, str, int]], spent: list[tuple[str, int]]
    ) -> list[tuple[str, int] | None]:
        """Add a block's outputs, then take the ones its inputs spend (None for an unknown outpoint)."""
        if created:
            new = _frame(("txid", "vout", "address", "value"), created)  # noqa: F841 - scanned by DuckDB by name
            self.con.execute("INSERT INTO btc_utxos SELECT txid, vout, address, value FROM new")
        if not spent:
            return []
        spends = _frame(("txid", "vout"), spent)
        spends["i"] = np.arange(len(spent), dtype=np.int64)
        rows = self.con.execute(
            "SELECT s.i, u.address, u.value FROM spends s JOIN btc_utxos u USING (txid, vout)"
        ).fetchall()
        self.con.execute("DELETE FROM btc_utxos WHERE (txid, vout) IN (SELECT (txid, vout) FROM spends)")
        found: list[tuple[str, int] | None] = [None] * len(spent)
        for i, address, value in rows:
            found[i] = (address, value)
        return found


def _frame(names: tuple[str, ...], rows: list[Any]) -> dict[str, np.ndarray[Any, Any]]:
    """Rows as a dict of numpy columns that DuckDB can scan."""
    columns = list(zip(*rows, strict=True))
    return {
        name: np.array(col, dtype=np.int64 if isinstance(col[0], int) else object)
        for name, col in zip(names, columns, strict=True)
    }


def sha256d(data: bytes) -> bytes:
    """Bitcoin's double SHA-256."""
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def base58check(payload: bytes) -> str:
    """Base58Check encoding of a version byte + payload."""
    raw = payload + sha256d(payload)[:4]
    number = int.from_bytes(raw, "big")
    chars = []
    while number:
        number, rest = divmod(number, 58)
        chars.append(_B58[rest])
    pad = len(raw) - len(raw.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(chars))


def _polymod(values: list[int], check: int = 1) -> int:
    """The BCH checksum of BIP 173 over `values`, continuing from `check`."""
    for value in values:
        check = ((check & 0x1FFFFFF) << 5) ^ value ^ _GEN_TABLE[check >> 25]
    return check


_HRP_CHECK = _polymod([3, 3, 0, 2, 3])  # the human-readable part "bc", expanded per BIP 173


def segwit_address(version: int, program: bytes) -> str:
    """A mainnet segwit address: Bech32 for version 0, Bech32m for 1 and later (BIP 173, BIP 350)."""
    bits = len(program) * 8
    pad = -bits % 5
    number, groups = int.from_bytes(program, "big") << pad, (bits + pad) // 5
    data = [version] + [(number >> 5 * (groups - 1 - i)) & 31 for i in range(groups)]
    mod = _polymod([*data, 0, 0, 0, 0, 0, 0], _HRP_CHECK) ^ (_BECH32_CONST if version == 0 else _BECH32M_CONST)
    return "bc1" + "".join([_BECH32[d] for d in data] + [_BECH32[(mod >> 5 * (5 - i)) & 31] for i in range(6)])


def hash160(data: bytes) -> bytes:
    """RIPEMD-160 of SHA-256: the key hash of P2PKH."""
    return hashlib.new("ripemd160", hashlib.sha256(data).digest()).digest()


def script_address(script: bytes) -> tuple[str, str]:
    """The address a scriptPubKey pays and its kind; P2PK pays the P2PKH address of its key (no address of its own)."""
    n = len(script)
    if n == 25 and script[:3] == b"\x76\xa9\x14" and script[23:] == b"\x88\xac":
        return base58check(b"\x00" + script[3:23]), "p2pkh"
    if n == 23 and script[:2] == b"\xa9\x14" and script[22] == 0x87:
        return base58check(b"\x05" + script[2:22]), "p2sh"
    if 4 <= n <= 42 and script[1] == n - 2 and (script[0] == 0 or 0x51 <= script[0] <= 0x60):
        version = script[0] - 0x50 if script[0] else 0
        if (version == 0 and n in (22, 34)) or version > 0:
            return segwit_address(version, script[2:]), "segwit"
    if ((n == 35 and script[0] == 33) or (n == 67 and script[0] == 65)) and script[-1] == 0xAC:
        return base58check(b"\x00" + hash160(script[1:-1])), "p2pk"
    return "script:" + script.hex(), "script"


class _Bad(Exception):
    """Malformed bytes at a position inside the block being parsed."""

    def __init__(self, pos: int, problem: str) -> None:
        super().__init__(problem)
        self.pos, self.problem = pos, problem


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """A CompactSize integer at `pos` and the position after it."""
    first = data[pos]
    if first < 0xFD:
        return first, pos + 1
    if first == 0xFD:
        return _U16.unpack_from(data, pos + 1)[0], pos + 3
    if first == 0xFE:
        return _U32.unpack_from(data, pos + 1)[0], pos + 5
    return _U64.unpack_from(data, pos + 1)[0], pos + 9


def _parse_tx(data: bytes, pos: int, scripts: list[bytes]) -> tuple[bytes, list[tuple[bytes, int]], list[int], int]:
    """One transaction at `pos`: its txid (internal order), spent outpoints, output values (scripts appended), end."""
    end, start = len(data), pos
    segwit = data[pos + 4] == 0 and data[pos + 5] == 1
    pos = body = pos + 6 if segwit else pos + 4
    count, pos = _varint(data, pos)
    if count * 41 > end - pos:
        raise _Bad(pos, f"{count} inputs cannot fit in the {end - pos} bytes left")
    spends = []
    for _ in range(count):
        spends.append((data[pos : pos + 32], _U32.unpack_from(data, pos + 32)[0]))
        length, pos = _varint(data, pos + 36)
        pos += length + 4
    count, pos = _varint(data, pos)
    if count * 9 > end - pos:
        raise _Bad(pos, f"{count} outputs cannot fit in the {end - pos} bytes left")
    values = []
    for _ in range(count):
        value = _U64.unpack_from(data, pos)[0]
        if value > MAX_MONEY:
            raise _Bad(pos, f"output value {value} exceeds 21 million BTC")
        length, pos = _varint(data, pos + 8)
        if pos + length > end:
            raise _Bad(pos, f"script of {length} bytes runs past the end")
        values.append(value)
        scripts.append(data[pos : pos + length])
        pos += length
    body_end = pos
    if segwit:
        for _ in spends:
            items, pos = _varint(data, pos)
            for _ in range(items):
                length, pos = _varint(data, pos)
                pos += length
                if pos > end:
                    raise _Bad(pos, "witness runs past the end")
    pos += 4
    if pos > end:
        raise _Bad(end, "transaction runs past the end")
    plain = data[start : start + 4] + data[body:body_end] + data[pos - 4 : pos] if segwit else data[start:pos]
    return sha256d(plain), spends, values, pos


def merkle_root(txids: list[bytes]) -> bytes:
    """The merkle root of txids in internal byte order (the last one paired with itself on odd levels)."""
    level = txids
    while len(level) > 1:
        if len(level) % 2:
            level = [*level, level[-1]]
        level = [sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def _check_header(header: bytes, where: str) -> tuple[str, int, int, bytes, bytes]:
    """The block hash, time and bits, merkle root and previous hash of a header whose proof of work holds."""
    _version, prev, merkle, time, bits, _nonce = _HEADER.unpack(header)
    digest = sha256d(header)
    block_hash = digest[::-1].hex()
    exponent, mantissa = bits >> 24, bits & 0x007FFFFF
    target = mantissa << 8 * (exponent - 3) if exponent >= 3 else mantissa >> 8 * (3 - exponent)
    if not mantissa or bits & 0x00800000 or int.from_bytes(digest, "little") > target:
        raise InputError(f"{where} block {block_hash}", f"header hash is above the target its bits 0x{bits:08x} set")
    return block_hash, time, bits, merkle, prev


def parse_block(data: bytes, where: str, offset: int = 0) -> Block:
    """Parse and check one serialized block; `where` and `offset` place it in its file for error messages."""
    if len(data) < 81:
        raise InputError(f"{where} @ byte {offset}", f"{len(data)} bytes is too short for a block")
    block_hash, time, bits, merkle, prev = _check_header(data[:80], where)
    scripts: list[bytes] = []
    kinds: dict[str, int] = {}
    txs, ids, pos = [], [], 80
    try:
        count, pos = _varint(data, 80)
        if count * 60 > len(data) - pos or not count:
            raise _Bad(80, f"a count of {count} transactions does not fit the {len(data)}-byte block")
        for n in range(count):
            first = len(scripts)
            txid, spends, values, pos = _parse_tx(data, pos, scripts)
            ids.append(txid)
            txs.append(_raw_tx(txid, spends, values, scripts[first:], n == 0, kinds))
        if pos != len(data):
            raise _Bad(pos, f"{len(data) - pos} bytes follow the last transaction")
    except _Bad as exc:
        raise InputError(f"{where} block {block_hash} @ byte {offset + exc.pos}", exc.problem) from None
    except (IndexError, struct.error):
        raise InputError(f"{where} block {block_hash} @ byte {offset + pos}", "truncated transaction") from None
    root = merkle_root(ids)
    if root != merkle:
        raise InputError(
            f"{where} block {block_hash}", f"merkle root {root[::-1].hex()} != header's {merkle[::-1].hex()}"
        )
    return Block(
        block_hash,
        prev[::-1].hex(),
        merkle[::-1].hex(),
        time,
        bits,
        len(data),
        tuple(txs),
        kinds.get("p2pk", 0),
        kinds.get("script", 0),
    )


def _raw_tx(
    txid: bytes,
    spends: list[tuple[bytes, int]],
    values: list[int],
    scripts: list[bytes],
    first: bool,
    kinds: dict[str, int],
) -> RawTx:
    """A RawTx from parsed parts, output kinds counted in `kinds`; a first tx spending the null outpoint is coinbase."""
    coinbase = first and len(spends) == 1 and spends[0] == (_NULL_PREV, 0xFFFFFFFF)
    outpoints = () if coinbase else tuple((prev[::-1].hex(), vout) for prev, vout in spends)
    outputs = []
    for script, value in zip(scripts, values, strict=True):
        address, kind = script_address(script)
        kinds[kind] = kinds.get(kind, 0) + 1
        outputs.append((address, value))
    return RawTx(txid[::-1].hex(), outpoints, tuple(outputs), coinbase)


def block_files(paths: Iterable[Path], report: BlockReport) -> list[Path]:
    """The block files under `paths`: files as given, and in folders `blk*.dat` and raw or hex block files."""
    files: list[Path] = []
    for path in paths:
        if not path.is_dir():
            files.append(path)
            continue
        for child in sorted(path.iterdir()):
            if child.is_file() and (child.suffix in BLOCK_SUFFIXES or _is_blk(child)):
                files.append(child)
            elif child.is_file():
                report.skipped_files += 1
    return files


def _is_blk(path: Path) -> bool:
    return path.name.startswith("blk") and path.suffix == ".dat"


def raw_blocks(path: Path) -> Iterator[tuple[int, bytes]]:
    """The serialized blocks of one file, each with its byte offset: framed `blk*.dat`, one raw block, or hex."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(str(path), f"cannot read: {exc.strerror}") from exc
    key = path.parent / "xor.dat"
    if _is_blk(path) and key.is_file():
        mask = np.frombuffer(key.read_bytes(), dtype=np.uint8)
        if mask.size and mask.any():
            data = (np.frombuffer(data, dtype=np.uint8) ^ np.resize(mask, len(data))).tobytes()
    if data[:4] in MAGICS:
        yield from _framed(data, str(path))
    elif data[:160] and set(data[:160]) <= _HEX:
        try:
            yield 0, bytes.fromhex(data.decode("ascii"))
        except ValueError as exc:
            raise InputError(str(path), f"not a hex-encoded block: {exc}") from None
    else:
        yield 0, data


def _framed(data: bytes, where: str) -> Iterator[tuple[int, bytes]]:
    """Blocks of Bitcoin Core's block files: magic, 4-byte size, block; zero padding ends the file."""
    pos = 0
    while pos + 8 <= len(data) and data[pos : pos + 4] != b"\0\0\0\0":
        if data[pos : pos + 4] not in MAGICS:
            raise InputError(f"{where} @ byte {pos}", f"expected network magic, found {data[pos : pos + 4].hex()}")
        size = _U32.unpack_from(data, pos + 4)[0]
        if pos + 8 + size > len(data):
            raise InputError(f"{where} @ byte {pos}", f"block of {size} bytes is cut off at the end of the file")
        yield pos + 8, data[pos + 8 : pos + 8 + size]
        pos += 8 + size


def read_blocks(
    paths: Iterable[Path], outpoints: OutpointIndex, report: BlockReport, progress: Progress | None = None
) -> Iterator[UtxoTx]:
    """UTXO transactions of every block under `paths`, in file order, inputs resolved through `outpoints`."""
    for path in block_files(paths, report):
        report.files += 1
        for offset, data in raw_blocks(path):
            block = parse_block(data, str(path), offset)
            report.blocks += 1
            report.bytes += block.size
            report.p2pk_outputs += block.p2pk_outputs
            report.script_outputs += block.script_outputs
            yield from _utxo_txs(block, outpoints, report)
            if progress:
                progress(block.size)


def _utxo_txs(block: Block, outpoints: OutpointIndex, report: BlockReport) -> Iterator[UtxoTx]:
    """A block's transactions with each input's address and value from the outpoint index."""
    created = [
        (tx.txid, vout, address, value)
        for tx in block.txs
        for vout, (address, value) in enumerate(tx.outputs)
        if not address.startswith("script:6a")  # OP_RETURN outputs cannot be spent
    ]
    spent = [outpoint for tx in block.txs for outpoint in tx.spends]
    found = iter(outpoints.settle(created, spent))
    for tx in block.txs:
        outputs = tuple(UtxoOutput(a, v) for a, v in tx.outputs if v)
        paid = sum(o.amount for o in outputs)
        report.txs += 1
        report.outputs += len(tx.outputs)
        if tx.coinbase:
            report.coinbase_txs += 1
            yield UtxoTx(tx.txid, block.time, CHAIN, ASSET, (UtxoInput(COINBASE, paid),) if paid else (), outputs)
            continue
        resolved = [f for f in (next(found) for _ in tx.spends) if f is not None]
        inputs = [UtxoInput(a, v) for a, v in resolved if v]
        report.inputs += len(tx.spends)
        missing = len(tx.spends) - len(resolved)
        if missing:
            report.unresolved_inputs += missing
            report.partial_txs += 1
            # fees are never negative, so the unresolved inputs carry at least what the outputs pay beyond the rest
            least = paid - sum(v for _, v in resolved)
            if least > 0:
                inputs.append(UtxoInput(UNRESOLVED, least))
        yield UtxoTx(tx.txid, block.time, CHAIN, ASSET, tuple(inputs), outputs)


def load_btc_blocks(
    store: TransferStore, paths: Iterable[Path], progress: Progress | None = None, batch: int = 200_000
) -> BlockReport:
    """Read blocks into `store`, keeping unspent outputs in its DuckDB file so later loads resolve against them."""
    report = BlockReport()
    pending: list[Transfer] = []
    for tx in read_blocks(paths, DuckDBOutpoints(store.con), report, progress):
        pending.extend(flatten_utxo(tx))
        if len(pending) >= batch:
            report.transfers += store.ingest(pending)
            pending = []
    report.transfers += store.ingest(pending)
    return report
