"""Hunting files: folders walked, archives opened within limits, each file scanned with YARA-X, TLSH and hashes.

Everything a file holds is scanned: the file itself, then the members of zip, tar, 7z and gzip/bzip2/xz archives,
recursively, each named by its path inside the archives (`a.zip!inner/b.exe`). Limits guard against zip bombs
and deep nesting: bytes of one file or member, bytes unpacked from one file on disk, members read from it, and
nesting depth. Whatever a limit stops, a symlink loop, or an unreadable or damaged file is a `Problem` with its
location, and the hunt goes on. Files on disk are handed out in tasks of about equal size to this process and
worker processes that are kept between hunts (`FileHunter`), each loading the rules once.
"""

from __future__ import annotations

import bz2
import contextlib
import hashlib
import io
import lzma
import multiprocessing
import os
import stat
import tarfile
import threading
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing import connection
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext
from operator import itemgetter
from pathlib import Path, PurePosixPath

import py7zr
import yara_x

from heistwatch.hunt.fuzzy import DEFAULT_THRESHOLD, FamilyIndex, Neighbour, ssdeep_digest, tlsh_digest
from heistwatch.hunt.logs import MAX_PROBLEMS, Problem
from heistwatch.hunt.yara_scan import RuleMatch, YaraScanner, deserialize_rules, serialize_rules
from heistwatch.model import Indicator
from heistwatch.model.sightings import Sighting

HASH_KINDS = ("md5", "sha1", "sha256")
BATCH_BYTES = 16 << 20  # bytes of one task at most (and files, below): see plan_tasks
BATCH_FILES = 64
MIN_TASK_BYTES = 1 << 20
TASKS_PER_WORKER = 8
AHEAD = 2  # tasks sent to a worker process before it finishes one, so that it never waits for the next
PARALLEL_BYTES = 64 << 20  # a smaller hunt ends before a worker would be ready (it takes 0.4-0.7 s to start)
STOP_TIMEOUT_S = 5
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
    more than the YARA scan itself. SHA-256 (about 1.5 GB/s, a third of the scan's time) is computed for every file
    when the hunt asks for it (`sha256`) or hunts for SHA-256 indicators, and otherwise only for files with findings.
    """

    file: str
    size: int
    sha256: str | None
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
    """What a file hunt found, what it scanned (and in how many processes), and what it could not read (the first
    `MAX_PROBLEMS`)."""

    findings: tuple[FileFinding, ...]
    scanned: tuple[ScannedFile, ...]
    problems: tuple[Problem, ...]
    problem_count: int
    files: int
    bytes: int
    processes: int = 1


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


def iter_contents(path: Path | str, limits: Limits) -> Iterator[Item | Problem]:
    """The file and, recursively, every archive member in it, within the limits."""
    location = str(path)
    try:
        with open(path, "rb", buffering=0) as file:
            size = os.fstat(file.fileno()).st_size
            if size > limits.max_bytes:
                yield Problem(location, 0, f"{size:,} bytes is over the {limits.max_bytes:,}-byte limit; not scanned")
                return
            data = file.read()
    except OSError as exc:
        yield Problem(location, 0, f"cannot read: {exc.strerror or exc}")
        return
    yield from _expand(location, data, 0, limits, _Budget(limits.max_total, limits.max_members))


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


Task = list[tuple[int, str]]


@dataclass
class _Result:
    """What one task found; each entry carries its file's place in the walk, so the report keeps walk order."""

    scanned: list[tuple[int, ScannedFile]] = field(default_factory=list)
    findings: list[tuple[int, FileFinding]] = field(default_factory=list)
    problems: list[tuple[int, Problem]] = field(default_factory=list)
    bytes: int = 0
    pid: int = 0


class _Hunter:
    """Everything one process needs to scan files: rules, family index, hash indicators, options."""

    def __init__(
        self,
        rules: yara_x.Rules | bytes | None,
        index: FamilyIndex | None,
        hashes: Mapping[str, Indicator],
        fuzzy: bool,
        ssdeep: bool,
        sha256: bool,
        limits: Limits,
        threshold: int,
    ) -> None:
        if isinstance(rules, bytes):
            rules = deserialize_rules(rules)
        self.scanner = YaraScanner(rules) if rules is not None else None
        self.index, self.hashes, self.ssdeep, self.limits, self.threshold = index, hashes, ssdeep, limits, threshold
        self.fuzzy = fuzzy or index is not None
        kinds = {i.kind for i in hashes.values()} | ({"sha256"} if sha256 else set())
        self.kinds = sorted(kinds, key=lambda kind: (kind != "sha256", kind))  # digests of every file, SHA-256 first

    def hunt(self, task: Task) -> _Result:
        """Scan a task's files and the archive members in them."""
        result = _Result(pid=os.getpid())
        for order, path in task:
            for entry in iter_contents(path, self.limits):
                if isinstance(entry, Problem):
                    result.problems.append((order, entry))
                else:
                    self._scan(order, entry, result)
        return result

    def _scan(self, order: int, item: Item, result: _Result) -> None:
        digests = {kind: hashlib.new(kind, item.data).hexdigest() for kind in self.kinds}
        fuzzy = tlsh_digest(item.data) if self.fuzzy else None
        nearest = self.index.nearest(fuzzy, self.threshold) if self.index is not None and fuzzy else None
        family = nearest if nearest is not None and nearest.matched else None
        sightings = self._sightings(digests, item.location)
        matches = self._match(order, item, result)
        sha256 = digests.get("sha256")
        if family is not None or sightings or matches:
            sha256 = sha256 or hashlib.sha256(item.data).hexdigest()
            found = _findings(item.location, sha256, family, sightings, matches)
            result.findings.extend((order, finding) for finding in found)
        ssdeep = ssdeep_digest(item.data) if self.ssdeep else None
        scanned = ScannedFile(
            item.location, len(item.data), sha256, digests.get("md5"), digests.get("sha1"), fuzzy, ssdeep, nearest
        )
        result.scanned.append((order, scanned))
        result.bytes += len(item.data)

    def _sightings(self, digests: Mapping[str, str], location: str) -> list[Sighting]:
        """The hash indicators among the item's digests (each of its own kind), as sightings."""
        found: list[Sighting] = []
        for kind, digest in digests.items():
            indicator = self.hashes.get(digest)
            if indicator is not None and indicator.kind == kind:
                found.append(Sighting(indicator.id, kind, indicator.value, digest, location, 0, kind, ""))
        return found

    def _match(self, order: int, item: Item, result: _Result) -> tuple[RuleMatch, ...]:
        """The rules matching the item; a scan that fails is a problem and matches nothing."""
        if self.scanner is None:
            return ()
        try:
            return self.scanner.scan(item.location, item.data)
        except (yara_x.ScanError, yara_x.TimeoutError) as exc:
            result.problems.append((order, Problem(item.location, 0, f"YARA scan failed: {exc}")))
            return ()


def _findings(
    location: str, sha256: str, family: Neighbour | None, sightings: list[Sighting], matches: tuple[RuleMatch, ...]
) -> list[FileFinding]:
    """One item's findings: its known family, then hash indicators, then YARA rules."""
    found = [FileFinding(location, sha256, "family", family.family, neighbour=family)] if family is not None else []
    found += [FileFinding(location, sha256, "indicator", s.observed, sighting=s) for s in sightings]
    found += [FileFinding(location, sha256, "yara", m.rule, rule=m) for m in matches]
    return found


def _serve(tasks: Connection, results: Connection) -> None:
    """A worker process: load the rules once, say it is ready (its pid), then scan each task until told to stop."""
    hunter = _Hunter(*tasks.recv())
    results.send(os.getpid())
    while (task := tasks.recv()) is not None:
        results.send(hunter.hunt(task))


class _Worker:
    """One worker process, fed through pipes that this process writes and reads itself between its own tasks: YARA-X
    keeps the GIL while this process scans, so a thread could not feed the worker meanwhile.

    The options (the serialized rules, the family index, the hash indicators) go down the task pipe from a thread
    that waits while the new interpreter starts: passed as the process's arguments, they would hold this process
    in `start()` until the worker had imported everything (about half a second).
    """

    def __init__(self, context: SpawnContext, options: tuple[object, ...]) -> None:
        task_reader, self._tasks = context.Pipe(duplex=False)
        self._results, result_writer = context.Pipe(duplex=False)
        _widen(self._tasks, result_writer)
        self.process = context.Process(target=_serve, args=(task_reader, result_writer), daemon=True)
        self.process.start()
        task_reader.close()
        result_writer.close()
        self.pid = 0
        self.running: deque[Task] = deque()
        self._handover = threading.Thread(target=self._hand_over, args=(options,), daemon=True)
        self._handover.start()

    def _hand_over(self, options: tuple[object, ...]) -> None:
        with contextlib.suppress(OSError):  # a worker that died is found out by `receive`
            self._tasks.send(options)

    def send(self, task: Task) -> None:
        self._tasks.send(task)
        self.running.append(task)

    def receive(self, block: bool) -> Iterator[tuple[Task, _Result]]:
        """Finished tasks waiting in the pipe (waiting for the first when `block`); a worker that died ends with the
        tasks it was running, each file a problem."""
        if block and self.process.sentinel in connection.wait([self._results, self.process.sentinel]):
            self.process.join()  # it is exiting; its pipe may close a moment after its sentinel
        ended = not self.process.is_alive()  # asked first: once it has exited, all it sent is in the pipe
        try:
            while self._results.poll():
                message = self._results.recv()
                if isinstance(message, int):
                    self._handover.join()  # done: the worker read the options before it said it was ready
                    self.pid = message
                else:
                    yield self.running.popleft(), message
        except (EOFError, OSError):
            ended = True
        if ended:
            yield from ((task, _lost(task)) for task in self.running)
            self.running.clear()
            self.pid = -1

    def stop(self) -> None:
        """Let the worker finish its task and exit; one still starting is ended at once, as it holds no work."""
        if self.pid > 0:
            with contextlib.suppress(OSError):
                self._tasks.send(None)
            self.process.join(STOP_TIMEOUT_S)
        if self.process.is_alive():
            self.process.terminate()
        self.process.join()
        self._handover.join()
        self._tasks.close()
        self._results.close()


def _widen(*pipes: Connection) -> None:
    """Pipes of 1 MB (Linux), so that neither side blocks on a full pipe while the other one scans."""
    with contextlib.suppress(ImportError, AttributeError, OSError):
        import fcntl  # POSIX only; elsewhere pipes keep their size

        for pipe in pipes:
            fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)


def _lost(task: Task) -> _Result:
    """Each of a task's files as a problem: the worker process died before it sent what it found."""
    lost = "the worker process scanning it stopped (crashed or was killed); not scanned"
    return _Result(problems=[(order, Problem(path, 0, lost)) for order, path in task])


def plan_tasks(sizes: Sequence[int], workers: int) -> list[list[int]]:
    """Files (by their place in `sizes`) grouped into tasks of about equal bytes, the largest first.

    Tasks aim at 1/`TASKS_PER_WORKER` of each worker's share (between `MIN_TASK_BYTES` and `BATCH_BYTES`, at most
    `BATCH_FILES` files), so the workers finish together; a file larger than that is a task of its own. Largest
    first leaves only small tasks for the end, when one worker may wait for another.
    """
    target = min(BATCH_BYTES, max(MIN_TASK_BYTES, sum(sizes) // (max(workers, 1) * TASKS_PER_WORKER)))
    tasks: list[list[int]] = []
    filled = target
    for number in sorted(range(len(sizes)), key=lambda n: -sizes[n]):
        if filled + sizes[number] > target or len(tasks[-1]) >= BATCH_FILES:
            tasks.append([])
            filled = 0
        tasks[-1].append(number)
        filled += sizes[number]
    return tasks


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # reported as a problem when the task reads it


class FileHunter:
    """A file hunt's settings and its worker processes, kept from one hunt to the next.

    This process scans too. `workers - 1` worker processes start ("spawn": YARA-X's scanner keeps the GIL, so
    threads would not scan in parallel), load the rules once each, and join in when they are ready: each is sent
    `AHEAD` tasks so it never waits for the next, and sends back only what it found. A hunt of less than
    `PARALLEL_BYTES` does not start them (it ends before they would be ready), but uses them once started.
    """

    def __init__(
        self,
        *,
        rules: yara_x.Rules | None = None,
        index: FamilyIndex | None = None,
        indicators: Iterable[Indicator] = (),
        fuzzy: bool = True,
        ssdeep: bool = False,
        sha256: bool = True,
        limits: Limits = Limits(),
        threshold: int = DEFAULT_THRESHOLD,
        workers: int = 2,
    ) -> None:
        hashes = {i.value.lower(): i for i in indicators if i.kind in HASH_KINDS}
        self._options = (index, hashes, fuzzy, ssdeep, sha256, limits, threshold)
        self._rules = rules
        self._local = _Hunter(rules, *self._options)
        self.workers = workers
        self._pool: list[_Worker] = []

    def __enter__(self) -> FileHunter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the worker processes now and wait until they have loaded the rules (hunts start them on need)."""
        self._start()
        for worker in self._pool:
            while worker.pid == 0:
                for _ in worker.receive(block=True):
                    pass  # nothing was sent yet: no task can finish here

    def close(self) -> None:
        """Stop the worker processes."""
        for worker in self._pool:
            worker.stop()
        self._pool = []

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the worker processes that are ready."""
        return [worker.pid for worker in self._pool if worker.pid > 0]

    def hunt(self, paths: Iterable[Path], progress: Progress | None = None) -> FileHuntReport:
        """Scan files and folders (and the archives in them); `progress(bytes done, bytes in all)` after each task."""
        walked: list[Path] = []
        problems: list[Problem] = []
        for entry in walk_paths(paths):
            if isinstance(entry, Problem):
                problems.append(entry)
            else:
                walked.append(entry)
        sizes = [_size(path) for path in walked]
        tasks = [[(n, str(walked[n])) for n in task] for task in plan_tasks(sizes, self.workers)]
        total, done = sum(sizes), 0
        if total >= PARALLEL_BYTES and len(tasks) > 1:
            self._start()
        collected = _Result()
        pids: set[int] = set()
        for task, result in self._results(deque(tasks)):
            collected.scanned += result.scanned
            collected.findings += result.findings
            collected.problems += result.problems
            collected.bytes += result.bytes
            pids.add(result.pid)
            done += sum(sizes[order] for order, _ in task)
            if progress is not None:
                progress(done, total)
        problems += [problem for _, problem in sorted(collected.problems, key=itemgetter(0))]
        scanned = tuple(scanned for _, scanned in sorted(collected.scanned, key=itemgetter(0)))
        return FileHuntReport(
            findings=tuple(finding for _, finding in sorted(collected.findings, key=itemgetter(0))),
            scanned=scanned,
            problems=tuple(problems[:MAX_PROBLEMS]),
            problem_count=len(problems),
            files=len(scanned),
            bytes=collected.bytes,
            processes=len(pids - {0}),
        )

    def _start(self) -> None:
        if self._pool or self.workers <= 1:
            return
        options = (serialize_rules(self._rules) if self._rules is not None else None, *self._options)
        context = multiprocessing.get_context("spawn")
        self._pool = [_Worker(context, options) for _ in range(self.workers - 1)]

    def _results(self, queue: deque[Task]) -> Iterator[tuple[Task, _Result]]:
        """Each task and its result as they finish: the workers' tasks and, between them, this process's own (it
        keeps the last task for itself rather than wait for a worker)."""
        while queue or any(worker.running for worker in self._pool):
            for worker in self._pool:
                yield from worker.receive(block=not queue and bool(worker.running))
                while len(queue) > 1 and worker.pid > 0 and len(worker.running) < AHEAD:
                    self._send(worker, queue)
            if queue:
                task = queue.popleft()
                yield task, self._local.hunt(task)
        for worker in self._pool:
            if worker.pid < 0:
                worker.stop()
        self._pool = [worker for worker in self._pool if worker.pid >= 0]

    @staticmethod
    def _send(worker: _Worker, queue: deque[Task]) -> None:
        """Hand the next task to the worker; if it has died, the task stays for the others."""
        try:
            worker.send(queue[0])
            queue.popleft()
        except OSError:
            worker.pid = -1  # the next receive reports what it was running


def hunt_files(
    paths: Iterable[Path],
    *,
    rules: yara_x.Rules | None = None,
    index: FamilyIndex | None = None,
    indicators: Iterable[Indicator] = (),
    fuzzy: bool = True,
    ssdeep: bool = False,
    sha256: bool = True,
    limits: Limits = Limits(),
    threshold: int = DEFAULT_THRESHOLD,
    workers: int = 2,
    progress: Progress | None = None,
) -> FileHuntReport:
    """Scan files and folders (and the archives in them) with YARA-X rules, the family index and hash indicators.

    `fuzzy` computes each file's TLSH (always, when an index is given); at about 40 MB/s it is the slowest step.
    `sha256=False` leaves out the SHA-256 of scanned files without findings (see `ScannedFile`), a third of the
    time of a hunt without TLSH.
    One hunt with its own `FileHunter`: to hunt again with the same rules, keep a `FileHunter` instead.
    """
    with FileHunter(
        rules=rules,
        index=index,
        indicators=indicators,
        fuzzy=fuzzy,
        ssdeep=ssdeep,
        sha256=sha256,
        limits=limits,
        threshold=threshold,
        workers=workers,
    ) as hunter:
        return hunter.hunt(paths, progress)
