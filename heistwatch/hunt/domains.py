"""Lookalike domains in the exchange's DNS, proxy and mail logs and in certificate-transparency dumps.

Logs are read with the log hunt's readers (JSON lines, CSV, Zeek; plain, gzip or zstd) and its field maps: the
fields that hold hosts, URLs and e-mail addresses give the hosts judged. Certificate-transparency dumps are JSON
lines with names in `all_domains`, `dns_names`, `common_name`, `name_value` (crt.sh) or certstream's
`data.leaf_cert.all_domains`, or plain text with names on each line. Every host is judged by a `LookalikeFinder`.

Speed: a caseless Hyperscan prefilter finds the lines that can hold a lookalike, and only those are looked at. Its
patterns: each target label's skeleton regex (its ASCII confusable spellings) within the target's typo distance
(Levenshtein, approximate matching), the label's transpositions, the dnstwist permutations (without suffix) that
those do not match already, `xn--`, raw UTF-8 host names and JSON `\\uXXXX` escapes of non-ASCII characters. A typo
that lies next to a two-character confusable (`rn` for `m`) may escape it; every other rule of `lookalike` is
covered. A candidate line in plain ASCII is parsed only when a run of host characters through a match is a
lookalike (the brand's own traffic is not parsed), so malformed lines are reported where they hold a lookalike;
`prefilter=False` parses and checks every line.

State: with `state_path`, a JSON file `{"version": 1, "seen": {"TARGET|DOMAIN": {"first_reported", "last_seen",
"technique"}}}` remembers the lookalike domains reported before, and a run reports only the others
(`report_all` reports every one, marking which are new). The file is replaced atomically after each run.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy

from heistwatch.errors import InputError
from heistwatch.hunt.fields import DEFAULT_FIELDS, FieldMap
from heistwatch.hunt.logs import (
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
from heistwatch.hunt.lookalike import Lookalike, LookalikeFinder, skeleton_regex

try:
    import hyperscan
except ImportError:  # pragma: no cover - exercised where the wheel is missing
    hyperscan = None  # type: ignore[assignment]

CT_FIELDS = FieldMap(
    hosts=(
        *("all_domains", "dns_names", "common_name", "name_value", "domains", "domain", "san", "subject_alt_names"),
        *("data.leaf_cert.all_domains", "leaf_cert.all_domains", "subject.CN", "subject.common_name"),
    ),
    time=("seen", "not_before", "entry_timestamp", "timestamp", "data.seen"),
)
_NEWLINE = 10
HOST_ROLES = ("hosts", "urls", "emails")
MAX_HOSTS = 10
STATE_VERSION = 1
_RUNS = re.compile(r"[\w.-]+")
_HOST_BYTES = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"
_TO_SPACE = bytes(byte if byte in _HOST_BYTES else 32 for byte in range(256))
_EMAIL_HOST = re.compile(r"@([^\s<>,;\"'()\[\]@]+)")
_UTF8_HOST = rb"[\xc2-\xf4][\x80-\xbf]+(?:[a-z0-9-]|[\xc2-\xf4][\x80-\xbf]+)*\.(?:[a-z]|[\xc2-\xf4])"
_JSON_ESCAPE = rb"\\u(?:00[89a-f][0-9a-f]|0[1-9a-f][0-9a-f]{2}|[1-9a-f][0-9a-f]{3})"
SPLIT_BYTES = 32 << 20
MIN_SPLIT_BYTES = 4 << 20
Progress = Callable[[int, int], None]
_SCANNER: tuple[LookalikeFinder, DomainPrefilter | None] | None = None


@dataclass(frozen=True)
class DomainSighting:
    """A lookalike domain seen in one input: its first occurrence, how often, and whether earlier runs reported it."""

    lookalike: Lookalike
    host: str
    file: str
    line: int
    field: str
    source: str
    count: int
    hosts: tuple[str, ...]
    first_seen: str | None
    last_seen: str | None
    new: bool


@dataclass(frozen=True)
class DomainReport:
    """What a lookalike hunt found (new ones only, unless asked for all) and what it could not read."""

    sightings: tuple[DomainSighting, ...]
    problems: tuple[Problem, ...]
    problem_count: int
    files: int
    bytes: int
    lines: int
    new: int
    known: int


@dataclass
class _Hit:
    lookalike: Lookalike
    host: str
    line: int
    field: str
    hosts: dict[str, None]
    first: str | None
    last: str | None
    count: int = 1


@dataclass(frozen=True)
class _Task:
    path: str
    source: str
    start: int
    end: int | None
    size: int


@dataclass
class _FileResult:
    hits: dict[tuple[str, str], _Hit] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    lines: int = 0


def prefilter_patterns(finder: LookalikeFinder) -> list[tuple[bytes, int]]:
    """(regex, edit distance) pairs whose caseless matches cover every line that can hold a lookalike."""
    out: dict[bytes, int] = {}
    for target in finder.targets:
        regex = skeleton_regex(target.skeleton) if target.name.label.isascii() else None
        if regex is not None:
            out[regex.encode()] = max(out.get(regex.encode(), 0), target.max_distance)
        else:
            out[re.escape(target.name.label).encode()] = 0
            out[re.escape(target.domain.rpartition(".")[0]).encode()] = 0
        label = target.name.label
        if target.max_distance == 1:
            for i in range(len(label) - 1):
                out.setdefault(re.escape(label[:i] + label[i + 1] + label[i] + label[i + 2 :]).encode(), 0)
    for always in (b"xn--", _UTF8_HOST, _JSON_ESCAPE):
        out[always] = 0
    covered = DomainPrefilter(sorted(out.items())) if hyperscan is not None else None
    for stem in finder.stems:
        if "xn--" not in stem and (covered is None or not covered.match_ends(stem.encode())):
            out.setdefault(re.escape(stem).encode(), 0)  # a permutation no pattern above matches already
    return sorted(out.items())


class DomainPrefilter:
    """A compiled Hyperscan database of the finder's prefilter patterns."""

    def __init__(self, patterns: list[tuple[bytes, int]]) -> None:
        database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        ext = [(hyperscan.HS_EXT_FLAG_EDIT_DISTANCE if d else 0, 0, 0, 0, d, 0) for _, d in patterns]
        database.compile(
            expressions=[p for p, _ in patterns],
            ids=list(range(len(patterns))),
            elements=len(patterns),
            flags=[hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_ALLOWEMPTY] * len(patterns),
            ext=ext,
        )
        self._db: Any = database
        self._scratch = hyperscan.Scratch(database)

    @classmethod
    def build(cls, finder: LookalikeFinder) -> DomainPrefilter | None:
        """The prefilter for a finder, or None without Hyperscan (then every line is read)."""
        return cls(prefilter_patterns(finder)) if hyperscan is not None else None

    def match_ends(self, block: bytes) -> list[int]:
        """The end offsets of every pattern match in `block` (unsorted, repeats possible)."""
        ends: list[int] = []

        def on_match(_id: int, _start: int, end: int, _flags: int, _context: object) -> None:
            ends.append(end)

        self._db.scan(block, match_event_handler=on_match, scratch=self._scratch)
        return ends


def hunt_domains(
    logs: Iterable[str | Path],
    finder: LookalikeFinder,
    *,
    ct: Iterable[str | Path] = (),
    state_path: str | Path | None = None,
    report_all: bool = False,
    now: str | None = None,
    progress: Progress | None = None,
    prefilter: bool = True,
    workers: int = 2,
) -> DomainReport:
    """Lookalikes of the finder's targets in log files and certificate-transparency dumps.

    With `state_path`, only lookalike domains that no earlier run with that file reported are returned (all of them
    with `report_all`), and the file then remembers this run's. `now` stamps the state (default: the clock);
    `prefilter=False` parses every line, so malformed lines are found everywhere; large plain files are split
    among `workers` forked processes.
    """
    global _SCANNER
    inputs = [(Path(p), "log") for p in logs] + [(Path(p), "ct") for p in ct]
    tasks = [task for path, source in inputs for task in _plan(path, source, workers)]
    seen = _load_state(state_path)
    _SCANNER = (finder, DomainPrefilter.build(finder) if prefilter else None)
    results: list[_FileResult] = []
    total, done = sum(task.size for task in tasks), 0
    try:
        for task, result in _run(tasks, workers):
            results.append(result)
            done += task.size
            if progress:
                progress(done, total)
    finally:
        _SCANNER = None
    sightings, problems, problem_count, lines = _join(tasks, results, seen)
    new = sum(s.new for s in sightings)
    if state_path is not None:
        _save_state(Path(state_path), seen, sightings, now or datetime.now(UTC).isoformat(timespec="seconds"))
    shown = [s for s in sightings if report_all or s.new]
    return DomainReport(
        sightings=tuple(sorted(shown, key=lambda s: (-s.lookalike.score, s.lookalike.target, s.lookalike.domain))),
        problems=tuple(problems[:MAX_PROBLEMS]),
        problem_count=problem_count,
        files=len(inputs),
        bytes=total,
        lines=lines,
        new=new,
        known=len(sightings) - new,
    )


def _plan(path: Path, source: str, workers: int) -> list[_Task]:
    """One task per compressed or small file; a large plain one in byte ranges, as many as keep workers busy."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(str(path), f"cannot read the file: {exc.strerror}") from None
    if workers <= 1 or size <= MIN_SPLIT_BYTES or compression(path):
        return [_Task(str(path), source, 0, None, size)]
    count = -(-max(-(-size // SPLIT_BYTES), 1) // workers) * workers
    step = -(-size // count)
    return [
        _Task(str(path), source, start, min(start + step, size), min(step, size - start))
        for start in range(0, size, step)
    ]


def _run(tasks: list[_Task], workers: int) -> Iterator[tuple[_Task, _FileResult]]:
    """Results in task order: forked worker processes, or this process for one worker or one task."""
    if workers <= 1 or len(tasks) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        yield from ((task, _scan_task(task)) for task in tasks)
        return
    with multiprocessing.get_context("fork").Pool(min(workers, len(tasks))) as pool:
        yield from zip(tasks, pool.imap(_scan_task, tasks), strict=True)


def _scan_task(task: _Task) -> _FileResult:
    """Every lookalike in one task's lines; a read error ends it with a problem, keeping what was found so far."""
    assert _SCANNER is not None, "hunt_domains sets the scanner before any task runs"
    finder, prefilter = _SCANNER
    path, result = Path(task.path), _FileResult()
    try:
        head = read_head(path)
        detected = detect_format(head)
        fmt = ("jsonl" if detected == "jsonl" else "text") if task.source == "ct" else detected
        parser = LineParser(fmt, head)
        fields = CT_FIELDS if task.source == "ct" else DEFAULT_FIELDS[fmt]
        with open_log(path) as stream:
            offset = task.start
            if task.start:
                stream.seek(task.start - 1)
                offset += len(stream.readline()) - 1  # the line holding byte start - 1 belongs to the previous task
            for block in read_blocks(stream, None if task.end is None else task.end - offset):
                if block is None:
                    result.lines += 1
                    count_problem(result, task.path, result.lines, f"line longer than {MAX_LINE_BYTES} bytes skipped")
                    continue
                _scan_block(block, parser, fields, finder, prefilter, result, task.path)
    except STREAM_ERRORS as exc:
        count_problem(result, task.path, result.lines + 1, f"cannot read further: {exc}")
    return result


def _join(
    tasks: list[_Task], results: list[_FileResult], seen: Mapping[str, Any]
) -> tuple[list[DomainSighting], list[Problem], int, int]:
    """Sightings (one per target and lookalike domain), problems, their count and lines, with task-relative line
    numbers made absolute per file."""
    sightings: list[DomainSighting] = []
    problems: list[Problem] = []
    offsets: dict[str, int] = {}
    for task, result in zip(tasks, results, strict=True):
        offset = offsets.get(task.path, 0)
        sightings += _sightings(task, result, seen, offset)
        problems += [Problem(p.file, p.line + offset, p.problem) for p in result.problems]
        offsets[task.path] = offset + result.lines
    return _first_per_domain(sightings), problems, sum(r.problem_count for r in results), sum(offsets.values())


def _scan_block(
    block: bytes,
    parser: LineParser,
    fields: FieldMap,
    finder: LookalikeFinder,
    prefilter: DomainPrefilter | None,
    result: _FileResult,
    path: str,
) -> None:
    """Judge the candidate lines of one block of whole lines; line numbers continue from `result.lines`."""
    newlines = numpy.flatnonzero(numpy.frombuffer(block, numpy.uint8) == _NEWLINE)
    count = len(newlines) + (not block.endswith(b"\n"))
    bounds = numpy.concatenate(([-1], newlines, [len(block)]))
    if prefilter is None:
        for index in range(count):
            raw = block[int(bounds[index]) + 1 : int(bounds[index + 1])]
            _judge_line(raw, result.lines + index + 1, None, parser, fields, finder, result, path)
    else:
        ends = numpy.unique(numpy.array(prefilter.match_ends(block), dtype=numpy.int64))
        indexes, firsts = numpy.unique(numpy.searchsorted(newlines, ends - 1), return_index=True)
        for index, line_ends in zip(indexes.tolist(), numpy.split(ends, firsts[1:]) if len(ends) else [], strict=True):
            start = int(bounds[index]) + 1
            raw = block[start : int(bounds[index + 1])]
            hints = (line_ends - start).tolist()
            _judge_line(raw, result.lines + index + 1, hints, parser, fields, finder, result, path)
    result.lines += count


def _judge_line(
    raw: bytes,
    line: int,
    hints: list[int] | None,
    parser: LineParser,
    fields: FieldMap,
    finder: LookalikeFinder,
    result: _FileResult,
    path: str,
) -> None:
    """Parse one line and record the lookalikes among its hosts; malformed input becomes a problem.

    `hints` are the prefilter's match ends in the line. A plain ASCII line (no escapes: every host a field holds is
    then a run of host characters in it) none of whose runs through a match end is a lookalike is passed over
    unparsed: most candidate lines are the brand's own traffic. Every lookalike host holds a match that ends inside
    it, so this loses none.
    """
    if hints is not None and raw.isascii() and b"\\" not in raw and not _lookalike_near(raw, hints, finder):
        return
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        count_problem(result, path, line, f"undecodable bytes at column {exc.start + 1}, read as U+FFFD")
        text = raw.decode("utf-8", "replace")
    try:
        record = parser.parse(text.rstrip("\r"))
    except ValueError as exc:
        count_problem(result, path, line, str(exc))
        return
    if record is None:
        return
    counted: set[tuple[str, str]] = set()  # a lookalike counts once per line, whatever fields repeat it
    for name, host in record_hosts(record, fields):
        for lookalike in finder.classify(host):
            key = (lookalike.target, lookalike.domain)
            _add(result, lookalike, host, line, name, _timestamp(record, fields), again=key in counted)
            counted.add(key)


def _lookalike_near(raw: bytes, ends: list[int], finder: LookalikeFinder) -> bool:
    """True when the run of host-name characters holding the last byte of some match is a lookalike."""
    runs = raw.translate(_TO_SPACE)
    tried = set()
    for end in ends:
        start = runs.rfind(b" ", 0, end) + 1
        if start not in tried and 0 < end <= len(runs) and runs[end - 1] != 32:
            tried.add(start)
            stop = runs.find(b" ", end)
            if finder.classify(runs[start : len(runs) if stop < 0 else stop].strip(b".").decode()):
                return True
    return False


def record_hosts(record: Record, fields: FieldMap) -> list[tuple[str, str]]:
    """(field name, host) for every host in a record's host, URL and e-mail fields (free text: host-shaped tokens)."""
    if TEXT_FIELD in record:
        runs = (run.strip(".") for run in _RUNS.findall(str(record[TEXT_FIELD])))
        return [(TEXT_FIELD, run) for run in runs if "." in run]
    out: list[tuple[str, str]] = []
    by_name = fields.by_name
    for name, value in record.items():
        for role in by_name.get(name, ()):
            if role in HOST_ROLES:
                out += [(name, host) for host in _hosts_in(role, value)]
    for name, parts, role in fields.nested:
        if role in HOST_ROLES and parts[0] in record and name not in record:
            out += [(name, host) for host in _hosts_in(role, _nested(record, parts))]
    return out


def _hosts_in(role: str, value: object) -> list[str]:
    """The hosts in one field's value: a string or a list of strings, names split on whitespace and commas."""
    out: list[str] = []
    for text in (value,) if isinstance(value, str) else value if isinstance(value, list) else ():
        if not isinstance(text, str):
            continue
        if role == "emails":
            out += _EMAIL_HOST.findall(text)
            continue
        items = text.replace(",", " ").split() if " " in text or "," in text or "\n" in text else (text,)
        out += [_url_host(item) if role == "urls" or "://" in item else item for item in items]
    return out


def _url_host(url: str) -> str:
    """The host part of a URL, or of what follows its scheme (with user info and port, which hosts drop)."""
    rest = url.partition("://")[2] or url
    end = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    return rest[:end].rpartition("@")[2]


def _nested(record: Mapping[str, object], parts: Iterable[str]) -> object:
    value: object = record
    for part in parts:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _timestamp(record: Record, fields: FieldMap) -> str | None:
    for name in fields.time:
        value = record.get(name) if "." not in name or name in record else _nested(record, name.split("."))
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value)
    return None


def _add(
    result: _FileResult, lookalike: Lookalike, host: str, line: int, name: str, seen: str | None, *, again: bool
) -> None:
    """Record one host that is a lookalike; `again` when the line already counted that lookalike."""
    key = (lookalike.target, lookalike.domain)
    hit = result.hits.get(key)
    if hit is None:
        result.hits[key] = _Hit(lookalike, host, line, name, {host: None}, seen, seen)
        return
    hit.count += not again
    if len(hit.hosts) < MAX_HOSTS:
        hit.hosts[host] = None
    if seen is not None:
        hit.first = seen if hit.first is None else min(hit.first, seen, key=time_key)
        hit.last = seen if hit.last is None else max(hit.last, seen, key=time_key)


def _sightings(task: _Task, result: _FileResult, seen: Mapping[str, Any], offset: int) -> Iterator[DomainSighting]:
    for (target, domain), hit in result.hits.items():
        yield DomainSighting(
            lookalike=hit.lookalike,
            host=hit.host,
            file=task.path,
            line=hit.line + offset,
            field=hit.field,
            source=task.source,
            count=hit.count,
            hosts=tuple(hit.hosts),
            first_seen=hit.first,
            last_seen=hit.last,
            new=f"{target}|{domain}" not in seen,
        )


def _first_per_domain(sightings: list[DomainSighting]) -> list[DomainSighting]:
    """One sighting per (target, lookalike domain): the first input's, with counts and hosts of all inputs."""
    merged: dict[tuple[str, str], DomainSighting] = {}
    for s in sightings:
        key = (s.lookalike.target, s.lookalike.domain)
        first = merged.get(key)
        if first is None:
            merged[key] = s
            continue
        hosts = tuple(dict.fromkeys(first.hosts + s.hosts))[:MAX_HOSTS]
        times = [t for t in (first.first_seen, first.last_seen, s.first_seen, s.last_seen) if t is not None]
        merged[key] = replace(
            first,
            count=first.count + s.count,
            hosts=hosts,
            first_seen=min(times, key=time_key) if times else None,
            last_seen=max(times, key=time_key) if times else None,
        )
    return list(merged.values())


def _load_state(path: str | Path | None) -> dict[str, Any]:
    """The lookalike domains earlier runs reported (none when there is no state file yet)."""
    if path is None or not Path(path).exists():
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("version") != STATE_VERSION or not isinstance(data.get("seen"), dict):
            raise ValueError(f"version {data.get('version')!r}")
    except (ValueError, AttributeError, UnicodeDecodeError) as exc:
        raise InputError(str(path), f"not a lookalike state file ({exc}); delete it to start over") from None
    return dict(data["seen"])


def _save_state(path: Path, seen: dict[str, Any], sightings: list[DomainSighting], now: str) -> None:
    for s in sightings:
        key = f"{s.lookalike.target}|{s.lookalike.domain}"
        entry = seen.setdefault(key, {"first_reported": now, "technique": s.lookalike.technique})
        entry["last_seen"] = now
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps({"version": STATE_VERSION, "seen": seen}, indent=1), encoding="utf-8")
    os.replace(temporary, path)
