"""Streaming log readers: JSON lines, CSV with a header and Zeek TSV, plain, gzip or zstd compressed.

Files are read in large blocks cut at line ends, so a caller can prefilter a whole block before parsing any line;
a line belongs to the byte range in which it starts, which lets one file be split among workers. One record per
physical line: a CSV record with a quoted line break is reported as malformed, like any other bad line.
"""

from __future__ import annotations

import csv
import gzip
import json
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol, cast

from heistwatch.errors import InputError

try:
    import orjson

    _loads: Callable[[bytes | str], object] = orjson.loads
except ImportError:  # pragma: no cover - orjson is a dependency; the standard library is the fallback
    _loads = json.loads

try:
    import zstandard
except ImportError:  # pragma: no cover
    zstandard = None  # type: ignore[assignment]

FORMATS = ("jsonl", "csv", "zeek", "text")
TEXT_FIELD = "(line)"
BLOCK_BYTES = 1 << 20  # small enough to stay in cache from the read through the prefilter scan (faster than 4 MB)
MAX_LINE_BYTES = 1 << 20
_GZIP, _ZSTD = b"\x1f\x8b", b"\x28\xb5\x2f\xfd"
Record = Mapping[str, object]
STREAM_ERRORS: tuple[type[Exception], ...] = (OSError, EOFError, zlib.error) + (
    (zstandard.ZstdError,) if zstandard is not None else ()
)


@dataclass(frozen=True)
class Problem:
    """Input that could not be read as a record: which file, which line (0 for the file itself), what."""

    file: str
    line: int
    problem: str


MAX_PROBLEMS = 100  # problems a hunt keeps with their location; all are counted


class ProblemTally(Protocol):
    """Where a hunt's worker counts its problems and keeps the first `MAX_PROBLEMS`."""

    problem_count: int
    problems: list[Problem]


def count_problem(tally: ProblemTally, path: str, line: int, problem: str) -> None:
    """Count a problem, and keep it with its location while fewer than `MAX_PROBLEMS` are kept."""
    tally.problem_count += 1
    if len(tally.problems) < MAX_PROBLEMS:
        tally.problems.append(Problem(path, line, problem))


def compression(path: Path) -> str:
    """ "gzip", "zstd" or "" (plain), from the file's first bytes."""
    with path.open("rb") as raw:
        magic = raw.read(4)
    if magic.startswith(_GZIP):
        return "gzip"
    return "zstd" if magic == _ZSTD else ""


def open_log(path: Path) -> IO[bytes]:
    """The decompressed byte stream of a log file."""
    kind = compression(path)
    if kind == "gzip":
        return cast(IO[bytes], gzip.open(path, "rb"))
    if kind == "zstd":
        if zstandard is None:
            raise InputError(str(path), "zstd-compressed, and the zstandard package is not installed")
        return zstandard.ZstdDecompressor().stream_reader(path.open("rb"), read_across_frames=True, closefd=True)
    return path.open("rb")


def detect_format(head: bytes) -> str:
    """The format a file's first line suggests: zeek (`#separator`), jsonl (`{`), otherwise csv."""
    text = head.lstrip()
    if text.startswith(b"#separator") or text.startswith(b"#fields"):
        return "zeek"
    return "jsonl" if text.startswith(b"{") else "csv"


def read_head(path: Path, limit: int = 64 << 10) -> bytes:
    """The first bytes of the decompressed file, enough to hold its header lines."""
    with open_log(path) as stream:
        return stream.read(limit)


def read_blocks(stream: IO[bytes], end: int | None) -> Iterator[bytes | None]:
    """Blocks of whole lines from the stream position, up to the line holding byte `end` - 1 (None: to the end).

    A line that outgrows MAX_LINE_BYTES before its end is skipped and stands as None in the output.
    """
    carry, position, skipping = b"", 0, False
    while (end is None or position < end) and (chunk := stream.read(BLOCK_BYTES)):
        if skipping:
            newline = chunk.find(b"\n")
            position += len(chunk) if newline < 0 else newline + 1
            chunk, skipping = (b"", True) if newline < 0 else (chunk[newline + 1 :], False)
            if end is not None and position >= end:
                return  # the skipped line ran past the range; what follows belongs to the next one
        cut = chunk.rfind(b"\n") + 1
        if end is not None and position + len(carry) + cut > end:
            yield from _range_end(stream, carry + chunk, max(end - position - 1, 0))
            return
        if cut:
            yield b"".join((carry, memoryview(chunk)[:cut]))
            position, carry = position + len(carry) + cut, chunk[cut:]
        else:
            carry += chunk
        if len(carry) > MAX_LINE_BYTES:
            yield None
            position, carry, skipping = position + len(carry), b"", True
    if carry and (end is None or position < end):
        yield carry


def _range_end(stream: IO[bytes], data: bytes, at: int) -> Iterator[bytes | None]:
    """`data` through the end of the line holding offset `at`, reading on when that line runs past the chunk.

    A last line longer than MAX_LINE_BYTES stands as None, after the whole lines before it.
    """
    stop = data.find(b"\n", at)
    while stop < 0 and len(data) - at <= MAX_LINE_BYTES and (more := stream.read(BLOCK_BYTES)):
        searched, data = len(data), data + more
        stop = data.find(b"\n", searched)
    if stop >= 0 or len(data) - at <= MAX_LINE_BYTES:
        yield data if stop < 0 else data[: stop + 1]
        return
    line_start = data.rfind(b"\n", 0, at) + 1
    if line_start:
        yield data[:line_start]
    yield None


class LineParser:
    """Turns one decoded line of a format into a record (field name to value); ValueError when malformed.

    The `text` format has no fields: its record is the whole line under the name `(line)`, scanned as free text.
    """

    def __init__(self, fmt: str, head: bytes) -> None:
        if fmt not in FORMATS:
            raise InputError(fmt, f"unknown log format (known: {', '.join(FORMATS)})")
        self.format = fmt
        self.separator = "\t"
        self.columns: list[str] = []
        lines = head.decode("utf-8", "replace").splitlines()
        if fmt == "csv" and lines:
            self.columns = _csv_row(lines[0], quiet=True)
        for line in lines if fmt == "zeek" else ():
            self.header(line)

    def header(self, line: str) -> bool:
        """Read a Zeek `#` line (separator, fields); True when the line is a header or comment."""
        if not line.startswith("#"):
            return False
        name, _, rest = line.partition(" " if line.startswith("#separator") else self.separator)
        if name == "#separator":
            self.separator = rest.strip().encode("ascii").decode("unicode_escape") or "\t"
        elif name == "#fields":
            self.columns = rest.split(self.separator)
        return True

    def parse(self, line: str) -> Record | None:
        """The record on one line, or None for a header or blank line."""
        if not line.strip():
            return None
        if self.format == "jsonl":
            return _json_record(line)
        if self.format == "text":
            return {TEXT_FIELD: line}
        if self.format == "zeek":
            return None if self.header(line) else self._row(line.split(self.separator), {"-", "(empty)"})
        row = _csv_row(line)
        return None if row == self.columns else self._row(row, {""})

    def _row(self, values: list[str], unset: set[str]) -> Record:
        if len(values) != len(self.columns):
            raise ValueError(f"{len(values)} fields where the header has {len(self.columns)}")
        return {name: value for name, value in zip(self.columns, values, strict=True) if value not in unset}


def _csv_row(line: str, *, quiet: bool = False) -> list[str]:
    """The cells of one CSV line; ValueError when it is not one (or no cells, if `quiet`)."""
    try:
        return next(csv.reader([line]), [])
    except csv.Error as exc:
        if quiet:
            return []
        raise ValueError(f"not a CSV record: {exc}") from None


def _json_record(line: str) -> Record:
    try:
        value = _loads(line)
    except ValueError as exc:
        raise ValueError(f"not JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(value, dict):
        raise ValueError("a JSON line that is not an object")
    return value


def time_key(seen: str) -> tuple[int, float, str]:
    """A sort key for a log's timestamp that keeps its spelling: epoch seconds compare as numbers, text as text."""
    try:
        return 0, float(seen), seen
    except ValueError:
        return 1, 0.0, seen
