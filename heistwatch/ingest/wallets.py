"""Checksum validation of Bitcoin addresses: Base58Check (P2PKH, P2SH) and Bech32 / Bech32m (BIP 173, BIP 350)."""

from __future__ import annotations

import hashlib

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {char: index for index, char in enumerate(_B58)}
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_INDEX = {char: index for index, char in enumerate(_BECH32)}
_BECH32_CONST, _BECH32M_CONST = 1, 0x2BC830A3
_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def valid_btc(address: str) -> bool:
    """Whether `address` is a checksum-valid mainnet Bitcoin address."""
    if address[:3].lower() == "bc1":
        return _valid_bech32(address)
    return _valid_base58(address)


def _valid_base58(address: str) -> bool:
    """Base58Check with a mainnet P2PKH (0x00) or P2SH (0x05) version byte."""
    number = 0
    for char in address:
        if char not in _B58_INDEX:
            return False
        number = number * 58 + _B58_INDEX[char]
    pad = len(address) - len(address.lstrip("1"))
    raw = b"\x00" * pad + number.to_bytes((number.bit_length() + 7) // 8, "big")
    if len(raw) != 25 or raw[0] not in (0, 5):
        return False
    return hashlib.sha256(hashlib.sha256(raw[:-4]).digest()).digest()[:4] == raw[-4:]


def _polymod(values: list[int]) -> int:
    """The BCH checksum of BIP 173."""
    check = 1
    for value in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for bit in range(5):
            check ^= _GEN[bit] if (top >> bit) & 1 else 0
    return check


def _valid_bech32(address: str) -> bool:
    """Bech32 for witness v0, Bech32m for v1 and later, with the `bc` prefix and a sane length."""
    if address != address.lower() and address != address.upper():
        return False
    address = address.lower()
    data = [_BECH32_INDEX.get(char, -1) for char in address[3:]]
    if -1 in data or not 14 <= len(address) <= 90 or len(data) < 7:
        return False
    hrp = [ord(c) >> 5 for c in "bc"] + [0] + [ord(c) & 31 for c in "bc"]
    const = _polymod(hrp + data)
    version = data[0]
    return (version == 0 and const == _BECH32_CONST) or (0 < version <= 16 and const == _BECH32M_CONST)
