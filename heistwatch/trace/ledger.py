"""The ledger model: account-style transfers and UTXO transactions, amounts as ints in base units.

A UTXO transaction is traced as account-style transfers through a pseudo-address for the transaction itself
(inputs pay it, it pays the outputs and the fee), so the in-transaction FIFO rule of Bitcoin taint analysis is
the same FIFO that account-style addresses follow.
"""

from __future__ import annotations

from dataclasses import dataclass

from heistwatch.errors import InputError

FEE_SINK = "<fees>"
_CASELESS = frozenset({"bc1", "tb1"})  # Bech32 prefixes: an address is all upper or all lower case (BIP 173)


@dataclass(frozen=True, slots=True)
class Transfer:
    """One movement of `amount` base units of `asset` from `src` to `dst`, at position `index` of `tx`."""

    tx: str
    ts: int
    chain: str
    asset: str
    src: str
    dst: str
    amount: int
    index: int = 0


@dataclass(frozen=True, slots=True)
class UtxoInput:
    """A spent output: the address that owned it and its value."""

    address: str
    amount: int


@dataclass(frozen=True, slots=True)
class UtxoOutput:
    """A new output paying `amount` to `address`."""

    address: str
    amount: int


@dataclass(frozen=True, slots=True)
class UtxoTx:
    """A Bitcoin-style transaction; inputs minus outputs is the miner fee."""

    tx: str
    ts: int
    chain: str
    asset: str
    inputs: tuple[UtxoInput, ...]
    outputs: tuple[UtxoOutput, ...]

    @property
    def fee(self) -> int:
        """What the inputs pay beyond the outputs."""
        return sum(i.amount for i in self.inputs) - sum(o.amount for o in self.outputs)


def tx_node(tx: str) -> str:
    """The pseudo-address a UTXO transaction's value passes through."""
    return f"tx:{tx}"


def flatten_utxo(tx: UtxoTx) -> list[Transfer]:
    """The transfers that move a UTXO transaction's value: inputs into its node, then outputs and fee out of it."""
    if tx.fee < 0:
        raise InputError(tx.tx, f"outputs exceed inputs by {-tx.fee}")
    node = tx_node(tx.tx)
    legs = [(i.address, node, i.amount) for i in tx.inputs] + [(node, o.address, o.amount) for o in tx.outputs]
    if tx.fee:
        legs.append((node, FEE_SINK, tx.fee))
    return [Transfer(tx.tx, tx.ts, tx.chain, tx.asset, s, d, a, n) for n, (s, d, a) in enumerate(legs)]


def normal_address(address: str) -> str:
    """EVM (EIP-55 checksums mix cases) and Bech32 addresses compare case-insensitively; Base58 is case-sensitive."""
    return address.lower() if address[:3].lower() in _CASELESS or address[:2] in ("0x", "0X") else address


def check_transfer(t: Transfer) -> Transfer:
    """`t` if its amount is a non-negative int, else an InputError naming the transaction."""
    if type(t.amount) is not int or not 0 <= t.amount < 1 << 125:
        raise InputError(f"{t.tx}#{t.index}", f"amount must be an int in base units in [0, 2**125), got {t.amount!r}")
    return t
