"""Hunting indicators in logs: files split into byte-range tasks, run on worker processes, sightings aggregated.

Resuming: with `state_path`, every finished task (a whole compressed file, or a byte range of a plain file) is
written to a small JSON state file as `{"version": 1, "tasks": {KEY: RESULT}}`, KEY being
`path|size|mtime_ns|start|end` and RESULT the task's line count, aggregated hits and problems. A later run with
the same state file skips the tasks it finds there (a changed file gets new keys) and reports the same result
as one uninterrupted run. The state records a fingerprint of the indicators and options; a run with other
indicators or options refuses the file rather than reuse stale results. The file is replaced atomically after
each task.
"""

from __future__ import annotations

import gc
import hashlib
import json
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy

from heistwatch.errors import InputError
from heistwatch.hunt.fields import DEFAULT_FIELDS, FieldMap
from heistwatch.hunt.logs import (
    FORMATS,
    MAX_LINE_BYTES,
    MAX_PROBLEMS,
    STREAM_ERRORS,
    TEXT_FIELD,
    LineParser,
    Problem,
    Record,
    compression,
    count_problem,
    detect_format,
    open_log,
    read_blocks,
    read_head,
    time_key,
)
from heistwatch.hunt.matcher import IndicatorSet, Match
from heistwatch.hunt.prefilter import Prefilter, prefilter_for
from heistwatch.model.sightings import Sighting

SPLIT_BYTES = 32 << 20
MIN_SPLIT_BYTES = 4 << 20
RAW_CHARS = 512
_NEWLINE = 10
Progress = Callable[[int, int], None]
# (kind, value) -> [observed, line, field, raw, first_seen, last_seen, count]
Hits = dict[tuple[str, str], list[Any]]


@dataclass(frozen=True)
class HuntReport:
    """What a log hunt found and what it could not read."""

    sightings: tuple[Sighting, ...]
    problems: tuple[Problem, ...]
    problem_count: int
    files: int
    bytes: int
    lines: int
    resumed_tasks: int = 0


@dataclass(frozen=True)
class _Task:
    path: str
    start: int
    end: int | None
    size: int
    key: str


@dataclass
class _Result:
    lines: int = 0
    hits: Hits = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0


@dataclass(frozen=True)
class _Scanner:
    """Everything a worker needs, inherited by forked workers rather than pickled."""

    indicators: IndicatorSet
    prefilter: Prefilter | None
    fields: Mapping[str, FieldMap]
    scan_text: bool
    log_format: str | None


_SCANNER: _Scanner | None = None


def hunt_logs(
    paths: Iterable[str | Path],
    indicator_set: IndicatorSet,
    *,
    workers: int = 2,
    progress: Progress | None = None,
    fields: Mapping[str, FieldMap] | None = None,
    scan_text: bool = False,
    prefilter: bool = True,
    state_path: str | Path | None = None,
    log_format: str | None = None,
) -> HuntReport:
    """Sightings of the set's indicators in log files (format and compression detected per file).

    `log_format` forces one format (jsonl, csv, zeek, or text: free-text lines scanned for observable shapes)
    instead of detecting it; `fields` overrides the field map per format; `scan_text` also runs the ingest extractor
    over each candidate line's whole text (slow); `prefilter=False` parses every line, so malformed lines are
    found everywhere, not only among lines that contain an indicator literal.
    """
    global _SCANNER
    tasks = [task for path in paths for task in _plan(Path(path), workers)]
    maps = {**DEFAULT_FIELDS, **(fields or {})}
    if log_format is not None and log_format not in FORMATS:
        raise InputError(log_format, f"unknown log format (known: {', '.join(FORMATS)})")
    fingerprint = _fingerprint(indicator_set, maps, scan_text, prefilter, log_format) if state_path else ""
    state = _load_state(state_path, fingerprint)
    done = {task.key: state[task.key] for task in tasks if task.key in state}
    resumed = len(done)
    _SCANNER = _Scanner(indicator_set, prefilter_for(indicator_set) if prefilter else None, maps, scan_text, log_format)
    try:
        _run_all(tasks, done, workers, (state_path, fingerprint), progress)
    finally:
        _SCANNER = None
    return _report(tasks, done, indicator_set, resumed)


def _run_all(
    tasks: list[_Task],
    done: dict[str, _Result],
    workers: int,
    state: tuple[str | Path | None, str],
    progress: Progress | None,
) -> None:
    """Run the tasks not yet done, saving the state and reporting progress after each."""
    total, finished = sum(task.size for task in tasks), sum(task.size for task in tasks if task.key in done)
    for task, result in _run([task for task in tasks if task.key not in done], workers):
        done[task.key] = result
        finished += task.size
        _save_state(*state, done)
        if progress:
            progress(finished, total)


def _plan(path: Path, workers: int) -> list[_Task]:
    """One task per compressed file; a plain one in byte ranges of at most SPLIT_BYTES, as many as keep all
    workers busy (a multiple of `workers`) once the file is larger than MIN_SPLIT_BYTES."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise InputError(str(path), f"cannot read the log file: {exc.strerror}") from None
    ranges: list[tuple[int, int | None]] = [(0, None)]
    if stat.st_size > MIN_SPLIT_BYTES and not compression(path):
        count = -(-stat.st_size // SPLIT_BYTES)
        count = -(-count // max(workers, 1)) * max(workers, 1)
        step = -(-stat.st_size // count)
        ranges = [(start, min(start + step, stat.st_size)) for start in range(0, stat.st_size, step)]
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    return [
        _Task(str(path), start, end, (end or stat.st_size) - start, f"{key}|{start}|{end}") for start, end in ranges
    ]


def _run(tasks: list[_Task], workers: int) -> Iterator[tuple[_Task, _Result]]:
    """Results as tasks finish: forked worker processes, or this process for one worker or one task."""
    if workers <= 1 or len(tasks) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        yield from ((task, _scan_task(task)) for task in tasks)
        return
    gc.freeze()  # keeps forked workers from copying the indicator tables when the collector walks them
    try:
        with multiprocessing.get_context("fork").Pool(min(workers, len(tasks))) as pool:
            yield from zip(tasks, pool.imap(_scan_task, tasks), strict=True)
    finally:
        gc.unfreeze()


def _scan_task(task: _Task) -> _Result:
    """Scan one task's lines; read errors end the task with a problem, keeping what was found so far."""
    scanner = _SCANNER
    assert scanner is not None, "hunt_logs sets the scanner before any task runs"
    result = _Result()
    try:
        head = read_head(Path(task.path))
        parser = LineParser(scanner.log_format or detect_format(head), head)
        with open_log(Path(task.path)) as stream:
            _scan_stream(scanner, parser, stream, task, result)
    except STREAM_ERRORS as exc:
        count_problem(result, task.path, result.lines + 1, f"cannot read further: {exc}")
    return result


def _scan_stream(scanner: _Scanner, parser: LineParser, stream: Any, task: _Task, result: _Result) -> None:
    """Feed every candidate line of the task's range to the verifier."""
    offset = task.start
    if task.start:
        stream.seek(task.start - 1)
        offset += len(stream.readline()) - 1  # the line holding byte start - 1 belongs to the previous range
    fields = scanner.fields[parser.format]
    lines = 0
    for block in read_blocks(stream, None if task.end is None else task.end - offset):
        if block is None:
            lines += 1
            count_problem(result, task.path, lines, f"line longer than {MAX_LINE_BYTES} bytes skipped")
            continue
        newline = numpy.frombuffer(block, numpy.uint8) == _NEWLINE
        for line_no, raw in _candidates(scanner.prefilter, block, newline):
            _verify(scanner, parser, fields, raw, lines + line_no, task.path, result)
        lines += int(numpy.count_nonzero(newline)) + (not block.endswith(b"\n"))
    result.lines = lines


def _candidates(prefilter: Prefilter | None, block: bytes, newline: Any) -> Iterator[tuple[int, bytes]]:
    """(line number in the block, line) for the lines worth parsing: all of them, or the prefilter's.

    `newline` marks the block's newline bytes; counting them between candidates numbers the lines without
    building the list of every line end.
    """
    if prefilter is None:
        yield from ((i, line) for i, line in enumerate(block.split(b"\n"), 1) if line)
        return
    line_no, counted = 1, 0
    for start in prefilter.line_starts(block):
        line_no += int(numpy.count_nonzero(newline[counted:start]))
        counted = start
        stop = block.find(b"\n", start)
        yield line_no, block[start : stop if stop >= 0 else len(block)]


def _verify(
    scanner: _Scanner, parser: LineParser, fields: FieldMap, raw: bytes, line_no: int, path: str, result: _Result
) -> None:
    """Parse one line and record what it matches; malformed input becomes a problem."""
    if len(raw) > MAX_LINE_BYTES:
        count_problem(result, path, line_no, f"line longer than {MAX_LINE_BYTES} bytes skipped")
        return
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        count_problem(result, path, line_no, f"undecodable bytes at column {exc.start + 1}, read as U+FFFD")
        text = raw.decode("utf-8", "replace")
    try:
        record = parser.parse(text.rstrip("\r"))
    except ValueError as exc:
        count_problem(result, path, line_no, str(exc))
        return
    if parser.format == "text":
        found = [(TEXT_FIELD, m) for m in scanner.indicators.match_line(text)]
    else:
        found = scanner.indicators.match_record(record, fields) if record is not None else []
    if scanner.scan_text:
        found += [("(text)", m) for m in _free_text(scanner.indicators, text)]
        found = list({(m.kind, m.value): (name, m) for name, m in reversed(found)}.values())
    if found:
        _add_hits(result.hits, found, line_no, text, _timestamp(record, fields))


def _free_text(indicators: IndicatorSet, text: str) -> list[Match]:
    """Matches among the observables the ingest extractor finds in a line."""
    from heistwatch.ingest import document_from_string, extract_indicators  # heavy; only when asked

    found = extract_indicators(document_from_string(text))
    return [m for item in found for m in indicators.match_value(item.kind, item.value)]


def _timestamp(record: Record | None, fields: FieldMap) -> str | None:
    """The record's time as written, numbers (epoch seconds) as plain text."""
    if record is None:
        return None
    for name in fields.time:
        value = record.get(name)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value)
    return None


def _add_hits(hits: Hits, found: list[tuple[str, Match]], line_no: int, text: str, seen: str | None) -> None:
    seen_key = time_key(seen) if seen else None
    for name, match in found:
        key = (match.kind, match.value)
        entry = hits.get(key)
        if entry is None:
            hits[key] = [match.observed, line_no, name, text[:RAW_CHARS], seen_key, seen_key, 1]
            continue
        entry[6] += 1
        if seen_key:
            entry[4] = min(entry[4], seen_key) if entry[4] else seen_key
            entry[5] = max(entry[5], seen_key) if entry[5] else seen_key


def _report(tasks: list[_Task], done: Mapping[str, _Result], indicators: IndicatorSet, resumed: int) -> HuntReport:
    """Join the tasks of each file in order (line numbers become absolute) and aggregate per file and indicator."""
    sightings: list[Sighting] = []
    problems: list[Problem] = []
    lines = 0
    for path in dict.fromkeys(task.path for task in tasks):
        merged: Hits = {}
        offset = 0
        for task in (t for t in tasks if t.path == path):
            result = done[task.key]
            _merge(merged, result.hits, offset)
            problems += [Problem(p.file, p.line + offset, p.problem) for p in result.problems]
            offset += result.lines
        lines += offset
        sightings += _sightings(path, merged, indicators)
    return HuntReport(
        sightings=tuple(sorted(sightings, key=lambda s: (s.file, s.line, s.indicator_id))),
        problems=tuple(problems[:MAX_PROBLEMS]),
        problem_count=sum(r.problem_count for r in done.values()),
        files=len({task.path for task in tasks}),
        bytes=sum(task.size for task in tasks),
        lines=lines,
        resumed_tasks=resumed,
    )


def _merge(merged: Hits, hits: Hits, offset: int) -> None:
    """Fold one task's hits (lines relative to the task) into the file's, keeping the first occurrence."""
    for key, (observed, line, name, raw, first, last, count) in hits.items():
        entry = merged.get(key)
        if entry is None:
            merged[key] = [observed, line + offset, name, raw, first, last, count]
            continue
        entry[6] += count
        entry[4] = min((t for t in (entry[4], first) if t), default=None)
        entry[5] = max((t for t in (entry[5], last) if t), default=None)


def _sightings(path: str, merged: Hits, indicators: IndicatorSet) -> Iterator[Sighting]:
    for (kind, value), (observed, line, name, raw, first, last, count) in merged.items():
        for ident in indicators.ids(kind, value):
            yield Sighting(
                indicator_id=ident,
                kind=kind,
                value=indicators.original(ident, value),
                observed=observed,
                file=path,
                line=line,
                field=name,
                raw=raw,
                first_seen=first[2] if first else None,
                last_seen=last[2] if last else None,
                count=count,
            )


def _fingerprint(
    indicators: IndicatorSet, maps: Mapping[str, FieldMap], scan_text: bool, prefilter: bool, log_format: str | None
) -> str:
    """A digest of what a hunt looks for and how, so a state file is only reused by the same hunt."""
    digest = hashlib.sha256(repr((sorted(maps.items()), scan_text, prefilter, log_format)).encode())
    for kind in sorted(indicators.kinds()):
        digest.update(kind.encode())
        for key in sorted(indicators.keys(kind)):
            digest.update(b"\0" + key.encode())
    return digest.hexdigest()


def _load_state(path: str | Path | None, fingerprint: str) -> dict[str, _Result]:
    """Finished tasks from a state file (none when there is no file yet)."""
    if path is None or not Path(path).exists():
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("version") != 1:
            raise ValueError(f"version {data.get('version')!r}")
        tasks = {key: _result_from_json(value) for key, value in data["tasks"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(str(path), f"not a hunt state file ({exc}); delete it to start over") from None
    if data.get("fingerprint") != fingerprint:
        raise InputError(str(path), "state of a hunt with other indicators or options; delete it to start over")
    return tasks


def _save_state(path: str | Path | None, fingerprint: str, done: Mapping[str, _Result]) -> None:
    if path is None:
        return
    tasks = {key: _result_to_json(result) for key, result in done.items()}
    temporary = Path(f"{path}.tmp")
    temporary.write_text(json.dumps({"version": 1, "fingerprint": fingerprint, "tasks": tasks}), encoding="utf-8")
    os.replace(temporary, path)


def _result_to_json(result: _Result) -> dict[str, Any]:
    return {
        "lines": result.lines,
        "hits": [[kind, value, *entry] for (kind, value), entry in result.hits.items()],
        "problems": [[p.file, p.line, p.problem] for p in result.problems],
        "problem_count": result.problem_count,
    }


def _result_from_json(data: dict[str, Any]) -> _Result:
    hits: Hits = {(h[0], h[1]): [*h[2:6], *(tuple(t) if t else None for t in h[6:8]), h[8]] for h in data["hits"]}
    problems = [Problem(*p) for p in data["problems"]]
    return _Result(data["lines"], hits, problems, data["problem_count"])
