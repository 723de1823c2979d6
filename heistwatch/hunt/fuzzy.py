"""Fuzzy hashes of scanned files (TLSH, ssdeep) and the nearest known malware family by TLSH distance.

The family index answers "which known sample is closest to this TLSH?" exactly, as comparing against every stored
hash would, but without doing so. TLSH's distance is a header part (log length, two quartile ratios, checksum)
plus a body part over 128 two-bit quartile codes (|a - b|, with a difference of 3 counting 6). It is not a metric,
but it is never below one: the circular differences of the header fields plus the plain L1 distance of the codes.
The index groups the stored digests by header (length and quartile ratios), splits each group into leaves around
centre samples (ball partitioning by that metric), and keeps each row's metric distance to its leaf's centre,
sorted. A query
1. prices the header difference of every leaf (one header per leaf) and its metric distance to every centre;
2. takes the exact distances of the leaf with the nearest centre, whose minimum is an upper bound of the answer;
3. by the triangle inequality, a row at metric distance r from its centre is at least |d(query, centre) - r| from
   the query, plus the header price: only the rows whose bound is within the answer so far can be nearer, and in
   each leaf they are one contiguous run of the sorted rows, which is all that is read.
Exact distances use the codes as two bit planes (high and low bits, two 64-bit words each), so the distance to a
row is a handful of XORs and popcounts. Samples of one large family are close to each other and cannot be told
apart by bounds, so a query next to one reads most of that family: the cost grows with the largest family near
the query, not with the size of the index. `benchmarks/hunt_files.py` measures it against brute force
(`nearest_exact`, which uses a byte lookup table: the reference the tests compare both with `tlsh.diff`).
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

LEAF_SIZE = 512
BRANCHING = 16
SEED = 20260101
DEFAULT_THRESHOLD = 50
_FORMAT_VERSION = 2
_BODY_BYTES = 32
_DIGEST_HEX = 70  # 3 header bytes and 32 body bytes, after the "T1" version prefix
_UNBOUNDED = 1 << 30
_LEAF_SHIFT = 16  # sort key of a row: its leaf << 16 | its distance to the leaf's centre (at most 384)
_TLSH_FAR_CODES = 6  # what TLSH counts for codes 3 apart; the metric counts 3
_METRIC_FAR_CODES = 3
_FAMILY_COLUMNS = ("family", "signature")
_TLSH_COLUMNS = ("tlsh",)
_SHA256_COLUMNS = ("sha256", "sha256_hash")
_NO_VALUE = {"", "n/a", "none", "null", "tnull"}
UInt8s = npt.NDArray[numpy.uint8]
UInt64s = npt.NDArray[numpy.uint64]
Ints = npt.NDArray[numpy.int64]
Rows = slice | Ints


def _pair_distance_table() -> npt.NDArray[numpy.int32]:
    """TLSH body distance between every two bytes: per two-bit code |a-b|, with a difference of 3 counting 6."""
    values = numpy.arange(256)
    table = numpy.zeros((256, 256), dtype=numpy.int32)
    for shift in range(0, 8, 2):
        diff = numpy.abs(((values[:, None] >> shift) & 3) - ((values[None, :] >> shift) & 3))
        table += numpy.where(diff == 3, 6, diff)
    return table


def _bit_table(first: int) -> UInt8s:
    """For every byte, the nibble of its bits first, first + 2, first + 4 and first + 6 (one bit of each code)."""
    values = numpy.arange(256)
    table = numpy.zeros(256, dtype=numpy.uint8)
    for k in range(4):
        table |= (((values >> (first + 2 * k)) & 1) << k).astype(numpy.uint8)
    return table


_BYTE_DISTANCE = _pair_distance_table()
_HIGH_BITS, _LOW_BITS = _bit_table(1), _bit_table(0)


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

    def take(self, rows: Ints) -> _Digests:
        """The given rows, in that order."""
        return _Digests(self.checksum[rows], self.lvalue[rows], self.q1[rows], self.q2[rows], self.body[:, rows])

    def qratios(self) -> UInt8s:
        """Both quartile ratios in one byte (q1 in the high nibble)."""
        return ((self.q1 << 4) | self.q2).astype(numpy.uint8)


@dataclass(frozen=True)
class _Planes:
    """Codes as bit planes: the high bits (hi0, hi1) and low bits (lo0, lo1) of 128 codes, two 64-bit words each."""

    hi0: UInt64s
    hi1: UInt64s
    lo0: UInt64s
    lo1: UInt64s

    @classmethod
    def of(cls, body: UInt8s) -> _Planes:
        """Planes of byte-major bodies (32 x n): each byte's four codes give a nibble to each plane."""
        rows = body.T
        words = [_pack(table[rows]) for table in (_HIGH_BITS, _LOW_BITS)]
        return cls(words[0][:, 0].copy(), words[0][:, 1].copy(), words[1][:, 0].copy(), words[1][:, 1].copy())

    def pick(self, rows: Rows) -> _Planes:
        """The given rows (a slice reads without copying)."""
        return _Planes(self.hi0[rows], self.hi1[rows], self.lo0[rows], self.lo1[rows])


def _pack(nibbles: UInt8s) -> UInt64s:
    """32 nibbles a row into two 64-bit words a row."""
    packed = numpy.ascontiguousarray(nibbles[:, 0::2] | (nibbles[:, 1::2] << 4))
    return packed.view("<u8").astype(numpy.uint64)


def _body_distance(rows: _Planes, other: _Planes, far_codes: int) -> Ints:
    """Body distances, row by row (`other` is one query or one row per row): |a-b| per code, 3 apart counting
    `far_codes` (6 as TLSH counts, 3 for the metric L1 distance).

    With x1, x0 the XOR of high and low bits, a code differs by 1 when only x0 is set, by 2 when only x1 is, and
    when both are set by 1 or 3 as the code's two bits differ (s) or not; summed over codes that is
    pc(x0) + 2 pc(x1) + (w - 3) pc(x1 & x0) + (1 - w) pc(x1 & x0 & s).
    """
    total = numpy.zeros(len(rows.hi0), dtype=numpy.int64)
    for hi, lo, ohi, olo in ((rows.hi0, rows.lo0, other.hi0, other.lo0), (rows.hi1, rows.lo1, other.hi1, other.lo1)):
        x1, x0 = hi ^ ohi, lo ^ olo
        both = x1 & x0
        total += numpy.bitwise_count(x0)
        total += 2 * numpy.bitwise_count(x1).astype(numpy.int64)
        if far_codes != 3:
            total += (far_codes - 3) * numpy.bitwise_count(both).astype(numpy.int64)
        total += (1 - far_codes) * numpy.bitwise_count(both & (ohi ^ olo)).astype(numpy.int64)
    return total


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


def _distances(stored: _Digests, query: _Digests, rows: Ints | None) -> Ints:
    """TLSH distances (with the length term, as `tlsh.diff`) from the one query to the given stored rows."""

    def pick(column: UInt8s) -> UInt8s:
        return column if rows is None else column[rows]

    ldiff = _circular(pick(stored.lvalue), int(query.lvalue[0]), 256)
    total = numpy.where(ldiff <= 1, ldiff, ldiff * 12)
    for column, value in ((stored.q1, query.q1), (stored.q2, query.q2)):
        qdiff = _circular(pick(column), int(value[0]), 16)
        total += numpy.where(qdiff <= 1, qdiff, (qdiff - 1) * 12)
    total += pick(stored.checksum) != query.checksum[0]
    for j in range(_BODY_BYTES):
        row = _BYTE_DISTANCE[query.body[j, 0]]
        total += row[stored.body[j] if rows is None else stored.body[j, rows]]
    return total


@dataclass(frozen=True)
class _Query:
    """One decoded query: its checksum, its planes and, per possible header value, the TLSH header price."""

    checksum: int
    planes: _Planes
    length_price: Ints  # by the stored length byte
    ratio_price: Ints  # by the stored quartile-ratio byte

    @classmethod
    def of(cls, digest: str) -> _Query:
        decoded = _decode([digest])
        values = numpy.arange(256, dtype=numpy.uint8)
        ldiff = _circular(values, int(decoded.lvalue[0]), 256)
        ratio_price = numpy.zeros(256, dtype=numpy.int64)
        for nibble, value in ((values >> 4, decoded.q1[0]), (values & 0x0F, decoded.q2[0])):
            qdiff = _circular(nibble.astype(numpy.uint8), int(value), 16)
            ratio_price += numpy.where(qdiff <= 1, qdiff, (qdiff - 1) * 12)
        return cls(
            int(decoded.checksum[0]),
            _Planes.of(decoded.body),
            numpy.where(ldiff <= 1, ldiff, ldiff * 12),
            ratio_price,
        )


def _partition(planes: _Planes, rows: Ints, leaf_size: int, branching: int, rng: numpy.random.Generator) -> list[Ints]:
    """Leaves of at most `leaf_size` rows (row 0 of each is its centre), by splitting around random centres.

    The rows share a header, so the split looks at the body only. Copies of one digest, which no split separates,
    stay together as one leaf of any size.
    """
    leaves: list[Ints] = []
    stack = [rows]
    while stack:
        group = stack.pop()
        if len(group) <= leaf_size:
            leaves.append(group)
            continue
        centres = rng.choice(group, min(branching, -(-len(group) // leaf_size)), replace=False)
        members = planes.pick(group)
        spread = numpy.stack([_body_distance(members, planes.pick(centre), _METRIC_FAR_CODES) for centre in centres])
        nearest = numpy.argmin(spread, axis=0)
        for i, centre in enumerate(centres):
            nearest[group == centre] = i  # a centre identical to an earlier one still heads its own part
        for i, centre in enumerate(centres):
            part = group[nearest == i]
            ordered = numpy.concatenate([[centre], part[part != centre]])
            copies = not spread[i, nearest == i].any()
            (leaves if copies else stack).append(ordered)
    return leaves


def _cluster(
    digests: _Digests, planes: _Planes, leaf_size: int, branching: int, seed: int
) -> tuple[Ints, Ints, npt.NDArray[numpy.uint16]]:
    """The rows reordered leaf by leaf, where each leaf starts, and each reordered row's distance to its centre.

    Within a leaf the rows are sorted by that distance, with the centre itself (distance 0) first.
    """
    rng = numpy.random.default_rng(seed)
    header = (digests.lvalue.astype(numpy.int64) << 8) | digests.qratios()
    by_header = numpy.argsort(header, kind="stable")
    groups = numpy.split(by_header, numpy.flatnonzero(numpy.diff(header[by_header])) + 1) if len(header) else []
    leaves = [leaf for group in groups for leaf in _partition(planes, group, leaf_size, branching, rng)]
    sizes = numpy.array([len(leaf) for leaf in leaves], dtype=numpy.int64)
    rows = numpy.concatenate(leaves) if leaves else numpy.zeros(0, dtype=numpy.int64)
    centres = rows[numpy.repeat(numpy.cumsum(sizes) - sizes, sizes)]
    spread = _body_distance(planes.pick(rows), planes.pick(centres), _METRIC_FAR_CODES)
    order = numpy.lexsort((spread, numpy.repeat(numpy.arange(len(leaves)), sizes)))
    starts = numpy.concatenate([[0], numpy.cumsum(sizes)]).astype(numpy.int64)
    return rows[order], starts, spread[order].astype(numpy.uint16)


class FamilyIndex:
    """Known samples' TLSH digests with their families, searchable for the exact nearest one (see the module doc)."""

    def __init__(
        self,
        digests: _Digests,
        family_of: npt.NDArray[numpy.int32],
        families: list[str],
        sha256: UInt8s,
        *,
        leaf_size: int = LEAF_SIZE,
        branching: int = BRANCHING,
        seed: int = SEED,
    ) -> None:
        """Split the digests into leaves (which reorders the rows) and derive the search columns."""
        if leaf_size < 1 or branching < 2:
            raise ValueError(f"need leaf_size >= 1 and branching >= 2, not {leaf_size} and {branching}")
        order, starts, spread = _cluster(digests, _Planes.of(digests.body), leaf_size, branching, seed)
        self._restore(
            {
                "digests": digests.take(order),
                "family_of": family_of[order],
                "families": families,
                "sha256": sha256[order],
                "leaf_starts": starts,
                "spread": spread,
            }
        )

    @classmethod
    def from_known(
        cls,
        known: Iterable[KnownHash],
        *,
        leaf_size: int = LEAF_SIZE,
        branching: int = BRANCHING,
        seed: int = SEED,
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
            leaf_size=leaf_size,
            branching=branching,
            seed=seed,
        )

    def _restore(self, state: dict[str, Any]) -> None:
        """Take the stored state and derive the search columns from it (they are not pickled or saved)."""
        self._digests: _Digests = state["digests"]
        self._family_of: npt.NDArray[numpy.int32] = state["family_of"]
        self._families: list[str] = state["families"]
        self._sha256: UInt8s = state["sha256"]
        self._leaf_starts: Ints = state["leaf_starts"]
        self._spread: npt.NDArray[numpy.uint16] = state["spread"]
        self._planes = _Planes.of(self._digests.body)
        centres = self._leaf_starts[:-1]
        ends = self._leaf_starts[1:] - 1
        self._centres = self._planes.pick(centres)
        self._centre_length = self._digests.lvalue[centres]
        self._centre_ratios = self._digests.qratios()[centres]
        self._leaf_max = self._spread[ends].astype(numpy.int64)
        leaf = numpy.repeat(numpy.arange(len(centres), dtype=numpy.int64), numpy.diff(self._leaf_starts))
        self._sort_key = (leaf << _LEAF_SHIFT) | self._spread

    def __len__(self) -> int:
        return len(self._family_of)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the digests and the leaves, not the search columns derived from them."""
        return {
            "digests": self._digests,
            "family_of": self._family_of,
            "families": self._families,
            "sha256": self._sha256,
            "leaf_starts": self._leaf_starts,
            "spread": self._spread,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._restore(state)

    def nearest(self, digest: str, threshold: int = DEFAULT_THRESHOLD, within: int | None = None) -> Neighbour | None:
        """The nearest stored sample, exactly: the one `nearest_exact` finds, ties included.

        `within` bounds the search (faster for digests far from everything): None is then returned when no stored
        sample is that close. None is also returned for an empty index.
        """
        if not len(self):
            return None
        found = self._search(_Query.of(digest), _UNBOUNDED if within is None else within)
        return None if found is None else self._neighbour(*found, threshold)

    def _search(self, query: _Query, limit: int) -> tuple[int, int] | None:
        """(row, distance) of the nearest row, if one is within `limit`."""
        header = query.length_price[self._centre_length] + query.ratio_price[self._centre_ratios]
        centre = _body_distance(self._centres, query.planes, _METRIC_FAR_CODES)
        floor = header + numpy.maximum(centre - self._leaf_max, 0)
        first = int(numpy.argmin(header + centre))
        start, end = int(self._leaf_starts[first]), int(self._leaf_starts[first + 1])
        distances = self._exact(query, slice(start, end), int(header[first]))
        best_row = start + int(numpy.argmin(distances))
        best = int(distances[best_row - start])
        bound = min(best, limit)
        leaves = numpy.flatnonzero(floor <= bound)
        leaves = leaves[leaves != first]
        slack = bound - header[leaves]
        key = leaves << _LEAF_SHIFT
        lows = numpy.searchsorted(self._sort_key, key + numpy.maximum(centre[leaves] - slack, 0))
        highs = numpy.searchsorted(self._sort_key, key + numpy.minimum(centre[leaves] + slack, 0xFFFF), "right")
        lengths = highs - lows
        total = int(lengths.sum())
        if total:
            rows = numpy.repeat(lows - numpy.cumsum(lengths) + lengths, lengths) + numpy.arange(total)
            distances = self._exact(query, rows, numpy.repeat(header[leaves], lengths))
            nearest = int(numpy.argmin(distances))
            distance, row = int(distances[nearest]), int(rows[nearest])
            if (distance, row) < (best, best_row):
                best, best_row = distance, row
        return (best_row, best) if best <= limit else None

    def _exact(self, query: _Query, rows: Rows, header: int | Ints) -> Ints:
        """TLSH distances to the rows, whose header price (without the checksum) is known."""
        distances = _body_distance(self._planes.pick(rows), query.planes, _TLSH_FAR_CODES) + header
        distances += self._digests.checksum[rows] != query.checksum
        return distances

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
        """Write the index as a numpy .npz file: the digests in leaf order and the leaves, so loading is quick."""
        d = self._digests
        with path.open("wb") as out:
            numpy.savez_compressed(
                out,
                version=numpy.array(_FORMAT_VERSION),
                checksum=d.checksum,
                lvalue=d.lvalue,
                q1=d.q1,
                q2=d.q2,
                body=d.body,
                family_of=self._family_of,
                families=numpy.array(self._families, dtype=str),
                sha256=self._sha256,
                leaf_starts=self._leaf_starts,
                spread=self._spread,
            )

    @classmethod
    def load(cls, path: Path) -> FamilyIndex:
        """Read an index written by `save` (format 1, which kept no leaves, is indexed again)."""
        try:
            with numpy.load(path, allow_pickle=False) as data:
                version = int(data["version"])
                if version not in (1, _FORMAT_VERSION):
                    raise InputError(str(path), f"family index format {version} is not supported")
                digests = _Digests(data["checksum"], data["lvalue"], data["q1"], data["q2"], data["body"])
                families = [str(f) for f in data["families"]]
                if version == 1:
                    return cls(digests, data["family_of"], families, data["sha256"])
                index = cls.__new__(cls)
                index._restore(
                    {
                        "digests": digests,
                        "family_of": data["family_of"],
                        "families": families,
                        "sha256": data["sha256"],
                        "leaf_starts": data["leaf_starts"],
                        "spread": data["spread"],
                    }
                )
                return index
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
