"""Hunting files: folders walked, archives opened within limits, each file scanned with YARA-X, TLSH and hashes.

Everything a file holds is scanned: the file itself, then the members of zip, tar, 7z and gzip/bzip2/xz archives,
recursively, each named by its path inside the archives (`a.zip!inner/b.exe`). Limits guard against zip bombs
and deep nesting: bytes of one file or member, bytes unpacked from one file on disk, members read from it, and
nesting depth. Whatever a limit stops, a symlink loop, or an unreadable or damaged file is a `Problem` with its
location, and the hunt goes on. Files on disk are shared among worker processes, each loading the rules once.
"""

from __future__ import annotations

import bz2
import hashlib
import io
import lzma
import multiprocessing
import os
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import py7zr
import yara_x

from heistwatch.hunt.fuzzy import DEFAULT_THRESHOLD, FamilyIndex, Neighbour, ssdeep_digest, tlsh_digest
from heistwatch.hunt.logs import Problem
from heistwatch.hunt.yara_scan import RuleMatch, YaraScanner, deserialize_rules, serialize_rules
from heistwatch.model import Indicator
from heistwatch.model.sightings import Sighting

MAX_PROBLEMS = 100
HASH_KINDS = ("md5", "sha1", "sha256")
BATCH_BYTES = 16 << 20
BATCH_FILES = 64
_ZIP, _GZIP, _BZIP2, _XZ, _7Z = b"PK\x03\x04", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"7z\xbc\xaf\x27\x1c"
_COMPRESSED = {_GZIP: "gzip", _BZIP2: "bzip2", _XZ: "xz"}
_ARCHIVE_ERRORS = (
    zipfile.BadZipFile,
    tarfile.TarError,
    py7zr.exceptions.ArchiveError,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    ValueError,
    RuntimeError,
    NotImplementedError,
    KeyError,
    IndexError,
)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Limits:
    """How far archives are opened: bytes per file or member, bytes and members unpacked per file, nesting."""

    max_depth: int = 5
    max_bytes: int = 128 << 20
    max_total: int = 1 << 30
    max_members: int = 10_000


@dataclass(frozen=True)
class Item:
    """One file's content: on disk, or inside archives (`a.zip!inner/b.exe`)."""

    location: str
    data: bytes


@dataclass
class _Budget:
    """What may still be unpacked from one file on disk."""

    bytes: int
    members: int


@dataclass(frozen=True)
class ScannedFile:
    """One scanned file or member: size, hashes, and the nearest known family (when an index is given).

    MD5 and SHA-1 are computed only when indicators of that kind are hunted for: at 200-300 MB/s they would cost
    more than the YARA scan itself.
    """

    file: str
    size: int
    sha256: str
    md5: str | None = None
    sha1: str | None = None
    tlsh: str | None = None
    ssdeep: str | None = None
    nearest: Neighbour | None = None


@dataclass(frozen=True)
class FileFinding:
    """A file that a YARA rule matched ("yara"), that is a variant of a known family ("family"), or whose hash is
    an indicator in the knowledge base ("indicator")."""

    file: str
    sha256: str
    kind: str
    name: str
    rule: RuleMatch | None = None
    neighbour: Neighbour | None = None
    sighting: Sighting | None = None


@dataclass(frozen=True)
class FileHuntReport:
    """What a file hunt found, what it scanned, and what it could not read (the first `MAX_PROBLEMS`)."""

    findings: tuple[FileFinding, ...]
    scanned: tuple[ScannedFile, ...]
    problems: tuple[Problem, ...]
    problem_count: int
    files: int
    bytes: int


def walk_paths(paths: Iterable[Path]) -> Iterator[Path | Problem]:
    """Regular files under the paths, each once, following symlinks; loops and unreadable entries are problems."""
    seen: set[tuple[int, int]] = set()
    for top in paths:
        stack: list[tuple[Path, frozenset[tuple[int, int]]]] = [(top, frozenset())]
        while stack:
            path, ancestors = stack.pop()
            try:
                info = path.stat()
            except OSError as exc:
                yield Problem(str(path), 0, f"cannot read: {exc.strerror or exc}")
                continue
            key = (info.st_dev, info.st_ino)
            if stat.S_ISDIR(info.st_mode) and key in ancestors:
                yield Problem(str(path), 0, "symlink loop: the folder contains itself; not entered again")
            elif key in seen:
                continue
            elif stat.S_ISDIR(info.st_mode):
                seen.add(key)
                try:
                    names = sorted(os.listdir(path), reverse=True)
                except OSError as exc:
                    yield Problem(str(path), 0, f"cannot list the folder: {exc.strerror or exc}")
                    continue
                stack.extend((path / name, ancestors | {key}) for name in names)
            elif stat.S_ISREG(info.st_mode):
                seen.add(key)
                yield path
            else:
                yield Problem(str(path), 0, "not a regular file (device, pipe or socket); skipped")


def iter_contents(path: Path, limits: Limits) -> Iterator[Item | Problem]:
    """The file and, recursively, every archive member in it, within the limits."""
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            yield Problem(str(path), 0, f"{size:,} bytes is over the {limits.max_bytes:,}-byte limit; not scanned")
            return
        data = path.read_bytes()
    except OSError as exc:
        yield Problem(str(path), 0, f"cannot read: {exc.strerror or exc}")
        return
    yield from _expand(str(path), data, 0, limits, _Budget(limits.max_total, limits.max_members))


def _archive_kind(data: bytes) -> str:
    """ "zip", "tar", "7z", "gzip", "bzip2", "xz" or "" from the first bytes."""
    if data.startswith(_ZIP):
        return "zip"
    if data.startswith(_7Z):
        return "7z"
    if data[257:262] == b"ustar":
        return "tar"
    return next((kind for magic, kind in _COMPRESSED.items() if data.startswith(magic)), "")


def _expand(location: str, data: bytes, depth: int, limits: Limits, budget: _Budget) -> Iterator[Item | Problem]:
    """The content itself, then its members if it is an archive and the nesting limit allows."""
    yield Item(location, data)
    kind = _archive_kind(data)
    if not kind:
        return
    if depth >= limits.max_depth:
        yield Problem(location, 0, f"{kind} archive nested deeper than {limits.max_depth} levels; members not scanned")
        return
    members = _compressed_members(kind, location, data, limits, budget) if kind in _COMPRESSED.values() else None
    try:
        for entry in members or _members(kind, location, data, limits, budget):
            if isinstance(entry, Problem):
                yield entry
            else:
                yield from _expand(entry.location, entry.data, depth + 1, limits, budget)
    except _ARCHIVE_ERRORS as exc:
        yield Problem(location, 0, f"damaged {kind} archive: {exc}")


def _members(kind: str, location: str, data: bytes, limits: Limits, budget: _Budget) -> Iterator[Item | Problem]:
    if kind == "zip":
        return _zip_members(location, data, limits, budget)
    if kind == "tar":
        return _tar_members(location, data, limits, budget)
    return _7z_members(location, data, limits, budget)


def _admit(location: str, declared: int, limits: Limits, budget: _Budget) -> Problem | None:
    """Why a member may not be read (over a limit), taking one member from the budget when it may."""
    if budget.members <= 0:
        return Problem(location, 0, f"over the {limits.max_members:,}-member limit for one file; not scanned")
    budget.members -= 1
    if declared > limits.max_bytes:
        return Problem(location, 0, f"{declared:,} bytes is over the {limits.max_bytes:,}-byte limit; not scanned")
    if declared > budget.bytes:
        return Problem(location, 0, f"over the {limits.max_total:,}-byte unpacking limit for one file; not scanned")
    return None


def _take(location: str, content: bytes, limits: Limits, budget: _Budget) -> Item | Problem:
    """The unpacked member, or a problem when it unpacked past a limit its header did not declare."""
    if len(content) > min(limits.max_bytes, budget.bytes):
        return Problem(location, 0, "unpacks past the size limits (a decompression bomb?); not scanned")
    budget.bytes -= len(content)
    return Item(location, content)


def _zip_members(location: str, data: bytes, limits: Limits, budget: _Budget) -> Iterator[Item | Problem]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            name = f"{location}!{info.filename}"
            refused = _admit(name, info.file_size, limits, budget)
            if refused is None and info.flag_bits & 1:
                refused = Problem(name, 0, "encrypted member; not scanned")
            if refused is not None:
                yield refused
                continue
            try:
                with archive.open(info) as member:
                    content = member.read(min(limits.max_bytes, budget.bytes) + 1)
            except _ARCHIVE_ERRORS as exc:
                yield Problem(name, 0, f"cannot unpack: {exc}")
                continue
            yield _take(name, content, limits, budget)


def _tar_members(location: str, data: bytes, limits: Limits, budget: _Budget) -> Iterator[Item | Problem]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        for info in archive:
            if not info.isfile():
                continue
            name = f"{location}!{info.name}"
            refused = _admit(name, info.size, limits, budget)
            member = archive.extractfile(info) if refused is None else None
            if member is None:
                yield refused or Problem(name, 0, "cannot unpack")
                continue
            yield _take(name, member.read(min(limits.max_bytes, budget.bytes) + 1), limits, budget)


def _7z_members(location: str, data: bytes, limits: Limits, budget: _Budget) -> Iterator[Item | Problem]:
    """7z members, checked against the limits by their declared sizes before anything is unpacked."""
    with py7zr.SevenZipFile(io.BytesIO(data)) as archive:
        if archive.needs_password():
            yield Problem(location, 0, "encrypted 7z archive; members not scanned")
            return
        wanted: list[str] = []
        for info in archive.list():
            if info.is_directory or info.is_symlink:
                continue
            refused = _admit(f"{location}!{info.filename}", info.uncompressed, limits, budget)
            if refused is not None:
                yield refused
            else:
                wanted.append(info.filename)
        if not wanted:
            return
        factory = py7zr.io.BytesIOFactory(limits.max_bytes + 1)
        archive.extract(targets=wanted, factory=factory)
        for name in wanted:
            product = factory.products.get(name)
            if product is None:
                yield Problem(f"{location}!{name}", 0, "cannot unpack")
                continue
            product.seek(0)
            yield _take(f"{location}!{name}", product.read(), limits, budget)


def _compressed_members(
    kind: str, location: str, data: bytes, limits: Limits, budget: _Budget
) -> Iterator[Item | Problem]:
    """A gzip/bzip2/xz stream's content: a tar's members (`a.tgz!dir/b`), or one member named without the suffix."""
    inner = f"{location}!{PurePosixPath(location.rsplit('!', 1)[-1]).stem}"
    refused = _admit(inner, 0, limits, budget)
    if refused is not None:
        yield refused
        return
    content = _decompress(kind, data, min(limits.max_bytes, budget.bytes) + 1)
    if _archive_kind(content) == "tar":
        budget.members += 1  # the tar's own members count instead
        yield from _tar_members(location, content, limits, budget)
    else:
        yield _take(inner, content, limits, budget)


def _decompress(kind: str, data: bytes, limit: int) -> bytes:
    """Decompress at most `limit` bytes (all concatenated gzip members); a truncated stream raises EOFError."""
    if kind == "bzip2":
        bzip = bz2.BZ2Decompressor()
        return bzip.decompress(data, max_length=limit)
    if kind == "xz":
        return lzma.LZMADecompressor().decompress(data, max_length=limit)
    out = bytearray()
    while data and len(out) < limit:
        stream = zlib.decompressobj(wbits=47)
        out += stream.decompress(data, limit - len(out))
        if stream.unconsumed_tail:
            break
        if not stream.eof:
            raise EOFError("compressed stream ends early")
        data = stream.unused_data
    return bytes(out)


@dataclass
class _Result:
    scanned: list[ScannedFile] = field(default_factory=list)
    findings: list[FileFinding] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    bytes: int = 0


class _Hunter:
    """Everything one process needs to scan files: rules, family index, hash indicators, options."""

    def __init__(
        self,
        rules: bytes | None,
        index: FamilyIndex | None,
        hashes: Mapping[str, Indicator],
        fuzzy: bool,
        ssdeep: bool,
        limits: Limits,
        threshold: int,
    ) -> None:
        self.scanner = YaraScanner(deserialize_rules(rules)) if rules is not None else None
        self.index, self.hashes, self.ssdeep, self.limits, self.threshold = index, hashes, ssdeep, limits, threshold
        self.fuzzy = fuzzy or index is not None
        self.kinds = ["sha256", *sorted({i.kind for i in hashes.values()} - {"sha256"})]

    def hunt(self, paths: list[str]) -> _Result:
        result = _Result()
        for path in paths:
            for entry in iter_contents(Path(path), self.limits):
                if isinstance(entry, Problem):
                    result.problems.append(entry)
                else:
                    self._scan(entry, result)
        return result

    def _scan(self, item: Item, result: _Result) -> None:
        digests = {kind: hashlib.new(kind, item.data).hexdigest() for kind in self.kinds}
        sha256 = digests["sha256"]
        fuzzy = tlsh_digest(item.data) if self.fuzzy else None
        nearest = self.index.nearest(fuzzy, self.threshold) if self.index is not None and fuzzy else None
        result.bytes += len(item.data)
        result.scanned.append(
            ScannedFile(
                item.location,
                len(item.data),
                sha256,
                digests.get("md5"),
                digests.get("sha1"),
                fuzzy,
                ssdeep_digest(item.data) if self.ssdeep else None,
                nearest,
            )
        )
        if nearest is not None and nearest.matched:
            result.findings.append(FileFinding(item.location, sha256, "family", nearest.family, neighbour=nearest))
        for kind, digest in digests.items():
            indicator = self.hashes.get(digest)
            if indicator is not None and indicator.kind == kind:
                sighting = Sighting(indicator.id, kind, indicator.value, digest, item.location, 0, kind, "")
                result.findings.append(FileFinding(item.location, sha256, "indicator", digest, sighting=sighting))
        if self.scanner is None:
            return
        try:
            matches = self.scanner.scan(item.location, item.data)
        except (yara_x.ScanError, yara_x.TimeoutError) as exc:
            result.problems.append(Problem(item.location, 0, f"YARA scan failed: {exc}"))
            return
        result.findings.extend(FileFinding(item.location, sha256, "yara", m.rule, rule=m) for m in matches)


_HUNTER: _Hunter | None = None


def _start_worker(*args: object) -> None:
    global _HUNTER
    _HUNTER = _Hunter(*args)  # type: ignore[arg-type]


def _hunt_batch(paths: list[str]) -> _Result:
    assert _HUNTER is not None, "the pool initializer sets the hunter"
    return _HUNTER.hunt(paths)


def _batches(files: list[Path]) -> list[list[str]]:
    """Files grouped into tasks of at most `BATCH_FILES` files or about `BATCH_BYTES` bytes."""
    batches: list[list[str]] = []
    size = 0
    for path in files:
        try:
            length = path.stat().st_size
        except OSError:
            length = 0
        if not batches or len(batches[-1]) >= BATCH_FILES or size + length > BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(str(path))
        size += length
    return batches


def hunt_files(
    paths: Iterable[Path],
    *,
    rules: yara_x.Rules | None = None,
    index: FamilyIndex | None = None,
    indicators: Iterable[Indicator] = (),
    fuzzy: bool = True,
    ssdeep: bool = False,
    limits: Limits = Limits(),
    threshold: int = DEFAULT_THRESHOLD,
    workers: int = 2,
    progress: Progress | None = None,
) -> FileHuntReport:
    """Scan files and folders (and the archives in them) with YARA-X rules, the family index and hash indicators.

    `fuzzy` computes each file's TLSH (always, when an index is given); at about 40 MB/s it is the slowest step.

    Worker processes are started fresh ("spawn") and each loads the rules once; YARA-X's scanner keeps the GIL,
    so threads would not scan in parallel.
    """
    problems: list[Problem] = []
    files: list[Path] = []
    for entry in walk_paths(paths):
        if isinstance(entry, Problem):
            problems.append(entry)
        else:
            files.append(entry)
    hashes = {i.value.lower(): i for i in indicators if i.kind in HASH_KINDS}
    args = (serialize_rules(rules) if rules is not None else None, index, hashes, fuzzy, ssdeep, limits, threshold)
    batches = _batches(files)
    total = _Result()
    for done, result in enumerate(_run(batches, args, workers), start=1):
        total.scanned.extend(result.scanned)
        total.findings.extend(result.findings)
        problems.extend(result.problems)
        total.bytes += result.bytes
        if progress is not None:
            progress(done, len(batches))
    return FileHuntReport(
        findings=tuple(total.findings),
        scanned=tuple(total.scanned),
        problems=tuple(problems[:MAX_PROBLEMS]),
        problem_count=len(problems),
        files=len(total.scanned),
        bytes=total.bytes,
    )


def _run(batches: list[list[str]], args: tuple[object, ...], workers: int) -> Iterator[_Result]:
    """Batch results in order: from worker processes, or from this process for one worker or one batch."""
    if workers <= 1 or len(batches) <= 1:
        hunter = _Hunter(*args)  # type: ignore[arg-type]
        yield from (hunter.hunt(batch) for batch in batches)
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(workers, len(batches)), initializer=_start_worker, initargs=args) as pool:
        yield from pool.imap(_hunt_batch, batches)
