"""Fuzzy hashes of scanned files (TLSH, ssdeep) and the nearest known malware family by TLSH distance.

The family index answers "which known sample is closest to this TLSH?" without comparing against every stored
hash. TLSH's body is 128 two-bit quartile codes; a variant of a file moves a few codes by one quartile, and only
a move across the median flips a code's high bit, so the high bits are the most stable part of the digest. The
index keeps `TABLES` hash tables, each keyed on `BITS` randomly chosen high bits (bit-sampling LSH); a query
gathers the rows that share a key with it in any table and ranks them by the exact TLSH distance (header and
body, as `tlsh.diff` computes it). A neighbour that no table brings up is missed, so the answer is approximate:
`benchmarks/hunt_files.py` measures how often it equals brute force, which `nearest_exact` provides.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy
import numpy.typing as npt
import ppdeep  # type: ignore[import-untyped]
import tlsh  # type: ignore[import-not-found]

from heistwatch.errors import InputError
from heistwatch.hunt.logs import Problem

TABLES = 32
BITS = 16
SEED = 20260101
DEFAULT_THRESHOLD = 50
_FORMAT_VERSION = 1
_BODY_BYTES = 32
_PRUNE_BYTES = 8
_REST = range(_PRUNE_BYTES, _BODY_BYTES)
_DIGEST_HEX = 70  # 3 header bytes and 32 body bytes, after the "T1" version prefix
_FAMILY_COLUMNS = ("family", "signature")
_TLSH_COLUMNS = ("tlsh",)
_SHA256_COLUMNS = ("sha256", "sha256_hash")
_NO_VALUE = {"", "n/a", "none", "null", "tnull"}
UInt8s = npt.NDArray[numpy.uint8]
Ints = npt.NDArray[numpy.int64]


def _pair_distance_table() -> npt.NDArray[numpy.int32]:
    """TLSH body distance between every two bytes: per two-bit code |a-b|, with a difference of 3 counting 6."""
    values = numpy.arange(256)
    table = numpy.zeros((256, 256), dtype=numpy.int32)
    for shift in range(0, 8, 2):
        diff = numpy.abs(((values[:, None] >> shift) & 3) - ((values[None, :] >> shift) & 3))
        table += numpy.where(diff == 3, 6, diff)
    return table


_BYTE_DISTANCE = _pair_distance_table()


def tlsh_digest(data: bytes) -> str | None:
    """The TLSH digest ("T1" + 70 hex digits), or None when the data is too short or too uniform to hash."""
    digest: str = tlsh.hash(data)
    return None if digest == "TNULL" else digest


def ssdeep_digest(data: bytes) -> str:
    """The ssdeep (context-triggered piecewise) hash, computed with the pure-Python `ppdeep`."""
    digest: str = ppdeep.hash(data)
    return digest


@dataclass(frozen=True)
class KnownHash:
    """A stored sample: its family, TLSH digest and (where known) SHA-256."""

    family: str
    tlsh: str
    sha256: str = ""


@dataclass(frozen=True)
class Neighbour:
    """The nearest stored sample to a query, and whether it is close enough to name the family."""

    family: str
    distance: int
    sha256: str
    tlsh: str
    threshold: int

    @property
    def matched(self) -> bool:
        """True when the distance is within the threshold: the file is taken as a variant of the family."""
        return self.distance <= self.threshold

    @property
    def verdict(self) -> str:
        """A short verdict, e.g. "AppleJeus (distance 23 <= 50)"."""
        sign = "<=" if self.matched else ">"
        word = self.family if self.matched else f"no known family (nearest {self.family})"
        return f"{word} (distance {self.distance} {sign} {self.threshold})"


@dataclass(frozen=True)
class _Digests:
    """Decoded TLSH digests, one column per field; the body is stored byte-major (32 x n) for column scans."""

    checksum: UInt8s
    lvalue: UInt8s
    q1: UInt8s
    q2: UInt8s
    body: UInt8s


def _swap_nibbles(values: UInt8s) -> UInt8s:
    return (((values & 0x0F) << 4) | (values >> 4)).astype(numpy.uint8)


def _decode(digests: list[str], where: str = "TLSH") -> _Digests:
    """Decode digests; TLSH writes its header bytes with swapped nibbles."""
    raw = numpy.zeros((len(digests), 3 + _BODY_BYTES), dtype=numpy.uint8)
    for i, digest in enumerate(digests):
        raw[i] = numpy.frombuffer(_digest_bytes(digest, where), dtype=numpy.uint8)
    header = _swap_nibbles(raw[:, :3])
    return _Digests(
        checksum=numpy.ascontiguousarray(header[:, 0]),
        lvalue=numpy.ascontiguousarray(header[:, 1]),
        q1=numpy.ascontiguousarray(header[:, 2] >> 4),
        q2=numpy.ascontiguousarray(header[:, 2] & 0x0F),
        body=numpy.ascontiguousarray(raw[:, 3:].T),
    )


def _digest_bytes(digest: str, where: str) -> bytes:
    text = digest.strip()
    if text[:2].upper() == "T1":
        text = text[2:]
    if len(text) != _DIGEST_HEX:
        raise InputError(where, f"not a TLSH digest (expected 70 hex digits after 'T1'): {digest[:80]!r}")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise InputError(where, f"not a TLSH digest (not hexadecimal): {digest[:80]!r}") from None


def _circular(a: UInt8s, b: int, modulus: int) -> Ints:
    diff: Ints = numpy.abs(a.astype(numpy.int64) - b)
    return numpy.minimum(diff, modulus - diff)


def _distances(stored: _Digests, query: _Digests, rows: Ints | None, body_bytes: range = range(_BODY_BYTES)) -> Ints:
    """TLSH distances (with the length term, as `tlsh.diff`) from the one query to the given stored rows.

    Over only some body bytes the sum is a lower bound of the distance, since every byte adds a non-negative term.
    """

    def pick(column: UInt8s) -> UInt8s:
        return column if rows is None else column[rows]

    ldiff = _circular(pick(stored.lvalue), int(query.lvalue[0]), 256)
    total = numpy.where(ldiff <= 1, ldiff, ldiff * 12)
    for column, value in ((stored.q1, query.q1), (stored.q2, query.q2)):
        qdiff = _circular(pick(column), int(value[0]), 16)
        total += numpy.where(qdiff <= 1, qdiff, (qdiff - 1) * 12)
    total += pick(stored.checksum) != query.checksum[0]
    return total + _body_distances(stored, query, rows, body_bytes)


def _body_distances(stored: _Digests, query: _Digests, rows: Ints | None, body_bytes: range) -> Ints:
    total = numpy.zeros(len(stored.lvalue) if rows is None else len(rows), dtype=numpy.int64)
    for j in body_bytes:
        row = _BYTE_DISTANCE[query.body[j, 0]]
        total += row[stored.body[j] if rows is None else stored.body[j, rows]]
    return total


def _nearest_row(stored: _Digests, query: _Digests, rows: Ints) -> tuple[int, int]:
    """(row, distance) of the nearest of the rows, exactly, pruning with the distance over the first body bytes."""
    partial = _distances(stored, query, rows, range(_PRUNE_BYTES))
    first = int(numpy.argmin(partial))
    bound = int(partial[first]) + int(_body_distances(stored, query, rows[first : first + 1], _REST)[0])
    keep = rows[partial <= bound]
    distances = partial[partial <= bound] + _body_distances(stored, query, keep, _REST)
    best = int(numpy.argmin(distances))  # ties go to the lowest row: rows are sorted
    return int(keep[best]), int(distances[best])


def _high_bits(body: UInt8s) -> UInt8s:
    """The high bit of each of the 128 two-bit codes, one row per code (128 x n)."""
    return numpy.stack([(body[j] >> (2 * k + 1)) & 1 for j in range(_BODY_BYTES) for k in range(4)])


class FamilyIndex:
    """Known samples' TLSH digests with their families, searchable for the nearest one by bit-sampling LSH."""

    def __init__(
        self,
        digests: _Digests,
        family_of: npt.NDArray[numpy.int32],
        families: list[str],
        sha256: UInt8s,
        tables: int = TABLES,
        bits: int = BITS,
        seed: int = SEED,
    ) -> None:
        self._digests = digests
        self._family_of = family_of
        self._families = families
        self._sha256 = sha256
        self._tables, self._bits, self._seed = tables, bits, seed
        rng = numpy.random.default_rng(seed)
        self._selected = numpy.stack([rng.choice(128, bits, replace=False) for _ in range(tables)])
        self._shifts = numpy.arange(bits, dtype=numpy.uint32)
        self._offsets, self._order = self._build_tables()

    @classmethod
    def from_known(
        cls, known: Iterable[KnownHash], *, tables: int = TABLES, bits: int = BITS, seed: int = SEED
    ) -> FamilyIndex:
        """Index stored samples (e.g. a MalwareBazaar export) by their TLSH digests."""
        rows = list(known)
        families = sorted({row.family for row in rows})
        number = {name: i for i, name in enumerate(families)}
        sha256 = numpy.zeros((len(rows), 32), dtype=numpy.uint8)
        for i, row in enumerate(rows):
            if row.sha256:
                sha256[i] = numpy.frombuffer(bytes.fromhex(row.sha256), dtype=numpy.uint8)
        return cls(
            _decode([row.tlsh for row in rows], "known TLSH"),
            numpy.array([number[row.family] for row in rows], dtype=numpy.int32),
            families,
            sha256,
            tables,
            bits,
            seed,
        )

    def __len__(self) -> int:
        return len(self._family_of)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the hash tables, which the receiving process rebuilds (they are larger than the data)."""
        state = dict(self.__dict__)
        del state["_offsets"], state["_order"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._offsets, self._order = self._build_tables()

    def _keys(self, high: UInt8s, tables: slice) -> npt.NDArray[numpy.uint32]:
        """The given tables' keys for each digest (tables x n), from the digests' high bits (128 x n)."""
        bits = high[self._selected[tables]].astype(numpy.uint32) << self._shifts[:, None]
        keys: npt.NDArray[numpy.uint32] = bits.sum(axis=1, dtype=numpy.uint32)
        return keys

    def _build_tables(self) -> tuple[npt.NDArray[numpy.int64], npt.NDArray[numpy.int32]]:
        """Per table, the stored rows grouped by key (a stable sort) and where each key's group starts."""
        high = _high_bits(self._digests.body)
        offsets = numpy.zeros((self._tables, (1 << self._bits) + 1), dtype=numpy.int64)
        order = numpy.zeros((self._tables, len(self)), dtype=numpy.int32)
        for t in range(self._tables):
            keys = self._keys(high, slice(t, t + 1))[0]
            order[t] = numpy.argsort(keys, kind="stable")
            offsets[t, 1:] = numpy.cumsum(numpy.bincount(keys, minlength=1 << self._bits))
        return offsets, order

    def _candidates(self, query: _Digests) -> Ints:
        """Stored rows sharing at least one table key with the (decoded) query."""
        keys = self._keys(_high_bits(query.body), slice(None))[:, 0].astype(numpy.int64)
        table = numpy.arange(self._tables)
        starts, ends = self._offsets[table, keys], self._offsets[table, keys + 1]
        found = numpy.zeros(len(self), dtype=bool)
        for t in range(self._tables):
            found[self._order[t, starts[t] : ends[t]]] = True
        return numpy.flatnonzero(found)

    def nearest(self, digest: str, threshold: int = DEFAULT_THRESHOLD) -> Neighbour | None:
        """The nearest stored sample among the candidates, or None when no table brings one up."""
        query = _decode([digest])
        rows = self._candidates(query)
        if not len(rows):
            return None
        return self._neighbour(*_nearest_row(self._digests, query, rows), threshold)

    def nearest_exact(self, digest: str, threshold: int = DEFAULT_THRESHOLD) -> Neighbour | None:
        """The nearest stored sample by brute force over every row: the reference for `nearest`."""
        if not len(self):
            return None
        distances = _distances(self._digests, _decode([digest]), None)
        best = int(numpy.argmin(distances))
        return self._neighbour(best, int(distances[best]), threshold)

    def _neighbour(self, row: int, distance: int, threshold: int) -> Neighbour:
        sha = self._sha256[row]
        return Neighbour(
            family=self._families[self._family_of[row]],
            distance=distance,
            sha256=sha.tobytes().hex() if sha.any() else "",
            tlsh=self._digest_text(row),
            threshold=threshold,
        )

    def _digest_text(self, row: int) -> str:
        d = self._digests
        header = numpy.array([d.checksum[row], d.lvalue[row], (d.q1[row] << 4) | d.q2[row]], dtype=numpy.uint8)
        return "T1" + (_swap_nibbles(header).tobytes() + d.body[:, row].tobytes()).hex().upper()

    def save(self, path: Path) -> None:
        """Write the index as a numpy .npz file (the hash tables are rebuilt on load)."""
        d = self._digests
        with path.open("wb") as out:
            numpy.savez_compressed(
                out,
                version=numpy.array(_FORMAT_VERSION),
                params=numpy.array([self._tables, self._bits, self._seed]),
                checksum=d.checksum,
                lvalue=d.lvalue,
                q1=d.q1,
                q2=d.q2,
                body=d.body,
                family_of=self._family_of,
                families=numpy.array(self._families, dtype=str),
                sha256=self._sha256,
            )

    @classmethod
    def load(cls, path: Path) -> FamilyIndex:
        """Read an index written by `save`."""
        try:
            with numpy.load(path, allow_pickle=False) as data:
                if int(data["version"]) != _FORMAT_VERSION:
                    raise InputError(str(path), f"family index format {int(data['version'])} is not supported")
                tables, bits, seed = (int(v) for v in data["params"])
                digests = _Digests(data["checksum"], data["lvalue"], data["q1"], data["q2"], data["body"])
                return cls(
                    digests, data["family_of"], [str(f) for f in data["families"]], data["sha256"], tables, bits, seed
                )
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(str(path), f"not a family index: {exc}") from None


def read_known_hashes(path: Path) -> tuple[list[KnownHash], list[Problem]]:
    """Known samples from a CSV (MalwareBazaar export, or family,tlsh[,sha256] columns) or a JSON list of objects.

    Rows without a family or a usable TLSH are skipped; malformed ones are returned as problems with their line.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(str(path), f"cannot read: {exc.strerror or exc}") from None
    rows = _json_rows(path, text) if text.lstrip().startswith(("[", "{")) else _csv_rows(path, text)
    known: list[KnownHash] = []
    problems: list[Problem] = []
    for line, row in rows:
        family, digest, sha = (_field(row, names) for names in (_FAMILY_COLUMNS, _TLSH_COLUMNS, _SHA256_COLUMNS))
        if family.lower() in _NO_VALUE or digest.lower() in _NO_VALUE:
            continue
        try:
            _digest_bytes(digest, str(path))
            if sha and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha.lower())):
                raise InputError(str(path), f"not a SHA-256: {sha[:80]!r}")
        except InputError as exc:
            problems.append(Problem(str(path), line, exc.problem))
            continue
        known.append(KnownHash(family=family, tlsh=digest.upper(), sha256=sha.lower()))
    return known, problems


def _field(row: dict[str, str], names: tuple[str, ...]) -> str:
    for name in names:
        value = row.get(name)
        if value is not None:
            return str(value).strip()
    return ""


def _csv_rows(path: Path, text: str) -> Iterator[tuple[int, dict[str, str]]]:
    """CSV rows keyed by lower-case column; MalwareBazaar's `# "first_seen_utc", ...` header line is understood."""
    lines = text.splitlines()
    header_at = next(
        (i for i, line in enumerate(lines) if "tlsh" in line.lower() and not line.lstrip("# ").startswith("#")), None
    )
    if header_at is None:
        raise InputError(str(path), "no header with a 'tlsh' column")
    header = next(csv.reader([lines[header_at].lstrip("# ")], skipinitialspace=True))
    columns = [name.strip().lower() for name in header]
    missing = [names[0] for names in (_FAMILY_COLUMNS, _TLSH_COLUMNS) if not set(names) & set(columns)]
    if missing:
        raise InputError(str(path), f"no {' or '.join(missing)} column in the header")
    body = io.StringIO("\n".join(lines[header_at + 1 :]))
    for number, values in enumerate(csv.reader(body, skipinitialspace=True), start=header_at + 2):
        if values and not values[0].startswith("#"):
            yield number, dict(zip(columns, values, strict=False))


def _json_rows(path: Path, text: str) -> Iterator[tuple[int, dict[str, str]]]:
    """Objects of a JSON list (or of a `data` list, as MalwareBazaar's API answers); the line is the item number."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}", f"not JSON: {exc.msg}") from None
    items = data.get("data") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise InputError(str(path), "expected a JSON list of {family, tlsh, sha256} objects")
    for number, item in enumerate(items, start=1):
        if isinstance(item, dict):
            yield number, {str(k).lower(): "" if v is None else str(v) for k, v in item.items()}


def load_family_index(path: Path) -> tuple[FamilyIndex, list[Problem]]:
    """A saved index (.npz), or one built from a CSV/JSON of known samples, with the rows that could not be read."""
    if path.suffix == ".npz":
        return FamilyIndex.load(path), []
    known, problems = read_known_hashes(path)
    if not known:
        raise InputError(str(path), "no rows with a family and a TLSH digest")
    return FamilyIndex.from_known(known), problems
