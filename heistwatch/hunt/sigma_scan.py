"""Scanning one log file with the planned rules: what any engine finds, recorded into the report.

An engine returns a file's hits as DuckDB row numbers; this module maps them to the file's lines (DuckDB drops
lines it rejects, such as over-long ones), reads the matched lines the engine did not keep, reports malformed
lines with their location, and turns hits into matches. The straightforward engine lives here too: one SELECT per
file with every rule's whole expression evaluated on every line; the distinct-value engine (sigma_eval) must find
exactly what it finds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import orjson

from heistwatch.hunt.logs import Problem, compression
from heistwatch.hunt.sigma_plan import MAX_LINE_BYTES, KindPlan, read_lines_sql, records_sql
from heistwatch.hunt.sigma_report import MAX_PROBLEMS_PER_FILE, SigmaMatch, SigmaReport, add_problem


@dataclass
class FileHits:
    """What an engine found in one file: the last row number, malformed rows, and rows with their rules' indices."""

    last: int
    bad: list[int] = field(default_factory=list)
    hits: dict[int, list[int]] = field(default_factory=dict)
    raw: dict[int, str] = field(default_factory=dict)


_CHUNK = 4 << 20
Engine = Callable[[duckdb.DuckDBPyConnection, Path, KindPlan, str], FileHits]


@dataclass
class FileScan:
    """One file scanned: what the engine found and the lines DuckDB rejected, or why the file could not be read."""

    path: Path
    plan: KindPlan
    found: FileHits | None = None
    rejected: list[tuple[int, str, str]] = field(default_factory=list)
    error: str = ""


def scan_file(con: duckdb.DuckDBPyConnection, path: Path, plan: KindPlan, n: int, engine: Engine) -> FileScan:
    """Run every planned rule over one file, touching only `con` (so files can be scanned in parallel)."""
    rejects = f"rejects_{n}"
    try:
        found = engine(con, path, plan, rejects)
        rejected = rejected_lines(con, rejects)
        unread = [row for row in sorted(found.hits) if row not in found.raw]
        found.raw |= read_raw(con, path, unread, dropped_lines(rejected), rejects)
    except (duckdb.Error, orjson.JSONDecodeError, OSError) as exc:  # OSError: reading matched lines again
        return FileScan(path, plan, error=f"cannot read: {str(exc).splitlines()[0]}")
    return FileScan(path, plan, found, rejected)


def record_scan(report: SigmaReport, scan: FileScan) -> None:
    """One scanned file into the report; a file DuckDB could not read is reported and the hunt goes on."""
    if scan.found is None:
        add_problem(report, Problem(str(scan.path), 0, scan.error))
        return
    _record_file(report, scan.path, scan.plan, scan.found, scan.rejected)


def _record_file(
    report: SigmaReport, path: Path, plan: KindPlan, found: FileHits, rejected: list[tuple[int, str, str]]
) -> None:
    """Matches, malformed and rejected lines of one file into the report, with the file's own line numbers."""
    dropped = dropped_lines(rejected)
    problems = [
        Problem(str(path), line, f"{kind.lower()}: {message.splitlines()[0]}") for line, kind, message in rejected
    ]
    problems += [Problem(str(path), physical_line(n, dropped), "malformed JSON") for n in sorted(found.bad)]
    report.problems.extend(problems[:MAX_PROBLEMS_PER_FILE])
    report.problem_count += len(problems)
    report.lines += physical_line(found.last, dropped)
    for n in sorted(found.hits):
        line, record = physical_line(n, dropped), parse_record(found.raw[n])
        report.matches.extend(SigmaMatch(plan.rules[i][0], str(path), line, record) for i in found.hits[n])


def dropped_lines(rejected: Sequence[tuple[int, str, str]]) -> list[int]:
    """The rejected lines DuckDB returned no row for (it keeps lines with bad encoding, read as Latin-1)."""
    return [line for line, kind, _ in rejected if kind != "INVALID ENCODING"]


def physical_line(ordinal: int, dropped: Sequence[int]) -> int:
    """The file line of the n-th row DuckDB returned, given the lines it dropped (too long) in ascending order."""
    line = ordinal
    for skipped in dropped:
        if skipped <= line:
            line += 1
    return line


def parse_record(raw: str) -> Any:
    """A matched line as its JSON value (the line was read as Latin-1: its bytes are the file's)."""
    data = raw.encode("latin-1")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:  # bad UTF-8 inside a string: keep the text, marking the bad bytes
        return json.loads(data.decode("utf-8", "replace"))


def rejected_lines(con: duckdb.DuckDBPyConnection, rejects: str) -> list[tuple[int, str, str]]:
    """The lines DuckDB's reader rejected (it creates the table only when it rejects one), then drops the table."""
    try:
        rows = con.execute(f"SELECT line, error_type, error_message FROM {rejects} ORDER BY line").fetchall()
    except duckdb.CatalogException:
        return []
    con.execute(f"DROP TABLE IF EXISTS {rejects}; DROP TABLE IF EXISTS {rejects}_scan")
    return [(int(line), str(kind), str(message)) for line, kind, message in rows]


def sql_hits(con: duckdb.DuckDBPyConnection, path: Path, plan: KindPlan, rejects: str) -> FileHits:
    """The straightforward engine: one SELECT over the file with every rule's expression on every line."""
    hits = ", ".join(f"CASE WHEN {sql} THEN {i} END" for i, (_, sql) in enumerate(plan.rules))
    query = (
        "SELECT coalesce(max(n), 0), list(struct_pack(n, raw, bad, hits)) FILTER (WHERE bad OR len(hits) > 0) FROM ("
        f" SELECT n, raw, CASE WHEN v IS NULL THEN trim(raw) <> '' ELSE false END AS bad,"
        f" CASE WHEN v IS NOT NULL THEN list_filter([{hits}], lambda x: x IS NOT NULL) ELSE [] END AS hits"
        f" FROM ({records_sql(path, plan, rejects)}))"
    )
    last, rows = con.execute(query).fetchone() or (0, None)
    found = FileHits(int(last))
    for row in rows or ():
        if row["bad"]:
            found.bad.append(int(row["n"]))
        else:
            found.hits[int(row["n"])] = list(row["hits"])
            found.raw[int(row["n"])] = row["raw"]
    return found


def read_raw(
    con: duckdb.DuckDBPyConnection, path: Path, rows: Sequence[int], dropped: Sequence[int], rejects: str
) -> dict[int, str]:
    """The raw lines of the given DuckDB row numbers (the file's lines `dropped` were rejected), read again.

    An uncompressed file is read in Python, an order of magnitude faster than DuckDB's line reader; DuckDB reads
    compressed files and files with a carriage return (its line breaks are not only "\\n" there).
    """
    if not rows:
        return {}
    if not compression(path):
        lines = {physical_line(n, dropped): n for n in rows}
        found = plain_lines(path, lines)
        if found is not None:
            return {lines[line]: raw for line, raw in found.items()}
    again = rejects + "_raw"
    query = f"SELECT ordinality, raw FROM {read_lines_sql(path, again)} WHERE ordinality IN (SELECT unnest($1))"
    read = {int(n): str(raw) for n, raw in con.execute(query, [[int(n) for n in rows]]).fetchall()}
    rejected_lines(con, again)
    return read


def plain_lines(path: Path, wanted: Collection[int]) -> dict[int, str] | None:
    """Lines (1-based, split at "\\n") of an uncompressed file, read as Latin-1; None when it holds a "\\r"."""
    targets, found, k, first, tail = sorted(set(wanted)), {}, 0, 1, b""
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            if b"\r" in chunk:
                return None
            block = tail + chunk
            end = block.rfind(b"\n") + 1
            block, tail = block[:end], block[end:]
            count = block.count(b"\n")
            if k < len(targets) and targets[k] < first + count:
                lines = block.split(b"\n")
                while k < len(targets) and targets[k] < first + count:
                    found[targets[k]] = lines[targets[k] - first].decode("latin-1")
                    k += 1
            first += count
            if len(tail) > MAX_LINE_BYTES:  # DuckDB dropped this line: no row of it is wanted, only its number
                tail = b""
    if tail and k < len(targets) and targets[k] == first:
        found[first] = tail.decode("latin-1")
    return found
