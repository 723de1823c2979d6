"""Sigma rules: loaded with pySigma, run locally on the exchange's JSON-lines logs with DuckDB, exported for a SIEM.

Each rule's parsed condition tree is translated to one DuckDB boolean expression (not through pySigma's
text-template backend: local runs need NULL-safe negation, one lower-cased column per field shared by every rule,
and the list of fields a rule reads, to report rules the logs cannot answer). All the rules for one kind of log
become one SELECT with one hit list per record, so every log file is read once, whatever the number of rules.
Sigma semantics kept: strings match case-insensitively unless `|cased`; a field a record lacks matches nothing,
so `not filter` holds for it. Rules that cannot run (correlations, keywords, unknown log sources, fields the logs
lack, regular expressions RE2 refuses) are reported with the reason, never dropped.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import orjson
import yaml
from sigma.collection import SigmaCollection
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.plugins import InstalledSigmaPlugins
from sigma.rule import SigmaRule
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaType,
    SpecialChars,
)

from heistwatch.errors import InputError
from heistwatch.hunt.logs import Problem, compression, read_head
from heistwatch.hunt.sigma_pipeline import LogKind, build_pipeline, detect_kind, kind_for_logsource

SAMPLE_BYTES = 256 << 10
MAX_LINE_BYTES = 16 << 20
MAX_PROBLEMS_PER_FILE = 100
_RE_SPECIAL = re.compile(r"([\\^$.|?*+()\[\]{}])")
_TECHNIQUE = re.compile(r"t\d{4}(?:\.\d{3})?")
_COMPARE = {CompareOperators.LT: "<", CompareOperators.LTE: "<=", CompareOperators.GT: ">", CompareOperators.GTE: ">="}
_RE_FLAGS = {
    SigmaRegularExpressionFlag.IGNORECASE: "i",
    SigmaRegularExpressionFlag.MULTILINE: "m",
    SigmaRegularExpressionFlag.DOTALL: "s",
}


@dataclass(frozen=True)
class RuleInfo:
    """What a match shows of its rule; `author` must be shown with every alert (Detection Rule License 1.1)."""

    id: str
    title: str
    level: str
    author: str
    tags: tuple[str, ...]
    techniques: tuple[str, ...]
    logsource: str
    file: str
    line: int


@dataclass(frozen=True)
class LoadedRule:
    """A parsed rule (pySigma's object, never mutated here) and what a match shows of it."""

    info: RuleInfo
    rule: SigmaRule | SigmaCorrelationRule = field(compare=False)


@dataclass(frozen=True)
class RuleProblem:
    """A rule file, or one rule in it, that could not be loaded: file, line (0 when unknown), what."""

    file: str
    line: int
    problem: str


@dataclass(frozen=True)
class RuleSet:
    """The rules loaded from files and folders, and the files or rules that failed to load."""

    rules: tuple[LoadedRule, ...]
    problems: tuple[RuleProblem, ...]


@dataclass(frozen=True)
class SkippedRule:
    """A rule that was not run on the logs, and why."""

    rule: RuleInfo
    reason: str


@dataclass(frozen=True)
class SigmaMatch:
    """One log record a rule matched: the rule, where the record is, and the record itself."""

    rule: RuleInfo
    file: str
    line: int
    record: Any


@dataclass
class SigmaReport:
    """What a Sigma hunt found, which rules it ran and skipped, and what it could not read."""

    matches: list[SigmaMatch] = field(default_factory=list)
    applied: list[RuleInfo] = field(default_factory=list)
    skipped: list[SkippedRule] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    files: int = 0
    lines: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class Conversion:
    """One rule in a SIEM's query language, or why it could not be converted."""

    rule: RuleInfo
    queries: tuple[str, ...]
    error: str | None = None


class Unsupported(Exception):
    """A rule uses a Sigma feature the local DuckDB runner does not implement."""


# ---------------------------------------------------------------- loading


def load_rules(paths: Iterable[Path]) -> RuleSet:
    """Every Sigma rule in the given .yml/.yaml files and folders; a broken file is reported and the rest load."""
    rules: list[LoadedRule] = []
    problems: list[RuleProblem] = []
    for path in paths:
        if not path.exists():
            raise InputError(str(path), "no such rule file or folder")
        files = sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml")) if path.is_dir() else [path]
        for file in files:
            loaded, failed = _load_file(file)
            rules.extend(loaded)
            problems.extend(failed)
    return RuleSet(tuple(rules), tuple(problems))


def _load_file(path: Path) -> tuple[list[LoadedRule], list[RuleProblem]]:
    """The rules of one file, or the reasons it cannot be read (with the YAML line where the parser gives it)."""
    try:
        text = path.read_text(encoding="utf-8")
        starts = _document_lines(text)
        collection = SigmaCollection.from_yaml(
            text, collect_errors=True, source=SigmaRuleLocation(path), resolve_references=False
        )
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return [], [RuleProblem(str(path), mark.line + 1 if mark else 0, f"not valid YAML: {exc}")]
    except (OSError, UnicodeDecodeError) as exc:
        return [], [RuleProblem(str(path), 0, f"cannot read: {exc}")]
    except SigmaError as exc:
        return [], [RuleProblem(str(path), _error_line(exc, 0), str(exc))]
    rules, problems = [], [RuleProblem(str(path), _error_line(e, 0), str(e)) for e in collection.errors]
    for n, rule in enumerate(collection.rules):
        line = starts[n] if n < len(starts) else 1
        if rule.errors:
            problems.extend(RuleProblem(str(path), _error_line(e, line), str(e)) for e in rule.errors)
            continue
        rules.append(LoadedRule(_info(rule, path, line), rule))
    return rules, problems


def _document_lines(text: str) -> list[int]:
    """First line of each non-empty YAML document, in order (pySigma gives rules no line numbers)."""
    return [node.start_mark.line + 1 for node in yaml.compose_all(text, Loader=yaml.SafeLoader) if node is not None]


def _error_line(error: SigmaError, default: int) -> int:
    source = getattr(error, "source", None)
    return source.line if source is not None and source.line is not None else default


def _info(rule: SigmaRule | SigmaCorrelationRule, path: Path, line: int) -> RuleInfo:
    tags = tuple(f"{t.namespace}.{t.name}" for t in rule.tags)
    techniques = tuple(
        t.name.upper() for t in rule.tags if t.namespace == "attack" and _TECHNIQUE.fullmatch(t.name.lower())
    )
    logsource = getattr(rule, "logsource", None)
    where = (
        " ".join(f"{k}={v}" for k in ("product", "category", "service") if (v := getattr(logsource, k, None)))
        if logsource is not None
        else "correlation"
    )
    return RuleInfo(
        id=str(rule.id or ""),
        title=rule.title,
        level=rule.level.name.lower() if rule.level else "",
        author=rule.author or "",
        tags=tags,
        techniques=techniques,
        logsource=where,
        file=str(path),
        line=line,
    )


# ---------------------------------------------------------------- rule -> SQL


def column(name: str, *, lowered: bool) -> str:
    """The quoted SQL column that holds a record field as read (`c:`) or lower-cased (`l:`)."""
    return '"' + ("l:" if lowered else "c:") + name.replace('"', '""') + '"'


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _literal(text: str) -> str:
    """A value as it appears in lines read as Latin-1: every byte is a character, so bad UTF-8 cannot fail a read."""
    return _sql_string(text.encode("utf-8").decode("latin-1"))


def rule_sql(rule: SigmaRule) -> tuple[str, frozenset[str]]:
    """One DuckDB boolean expression for a rule (already field-mapped), and the record fields it reads."""
    fields: set[str] = set()
    parts = [_condition(cond.parsed, fields) for cond in rule.detection.parsed_condition]
    return (parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"), frozenset(fields)


def _condition(node: Any, fields: set[str]) -> str:
    if isinstance(node, ConditionNOT):
        return f"(NOT coalesce({_condition(node.args[0], fields)}, false))"
    if isinstance(node, ConditionAND):
        return "(" + " AND ".join(_condition(arg, fields) for arg in node.args) + ")"
    if isinstance(node, ConditionOR):
        return _or(node.args, fields)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        if node.field is None:
            raise Unsupported("a value without a field (keyword search)")
        fields.add(node.field)
        return _value(node.field, node.value, fields)
    if isinstance(node, ConditionValueExpression):
        raise Unsupported("keywords (full-text search without a field)")
    raise Unsupported(f"condition element {type(node).__name__}")


def _or(args: Sequence[Any], fields: set[str]) -> str:
    """OR of the arguments; case-insensitive string tests on one field become one IN list and one RE2 alternation.

    One regular expression per field instead of a `contains` per value: RE2 runs the alternation in one pass
    (about ten times faster for the user-agent lists of SigmaHQ's proxy rules).
    """
    equal: dict[str, list[str]] = {}
    patterns: dict[str, list[SigmaString]] = {}
    rest: list[str] = []
    for arg in args:
        value = getattr(arg, "value", None)
        if (
            isinstance(arg, ConditionFieldEqualsValueExpression)
            and arg.field is not None
            and type(value) is SigmaString
            and not value.contains_placeholder()
        ):
            fields.add(arg.field)
            if value.contains_special():
                patterns.setdefault(arg.field, []).append(value)
            else:
                equal.setdefault(arg.field, []).append(value.original.lower())
        else:
            rest.append(_condition(arg, fields))
    for name, values in equal.items():
        listed = ", ".join(_literal(v) for v in dict.fromkeys(values))
        rest.append(f"{column(name, lowered=True)} IN ({listed})")
    for name, strings in patterns.items():
        if len(strings) == 1:
            rest.append(_string(name, strings[0], cased=False))
            continue
        alternation = "|".join(dict.fromkeys(_regex(s) for s in strings))
        rest.append(f"regexp_matches({column(name, lowered=True)}, {_literal('(?s)' + alternation)})")
    return rest[0] if len(rest) == 1 else "(" + " OR ".join(rest) + ")"


def _regex(value: SigmaString) -> str:
    """A lower-cased Sigma string with wildcards as an RE2 pattern, anchored where the string has no `*`."""
    star = SpecialChars.WILDCARD_MULTI
    parts = list(value.s)
    head = "" if parts and parts[0] == star else "^"
    tail = "" if parts and parts[-1] == star else "$"
    while parts and parts[0] == star:
        parts.pop(0)
    while parts and parts[-1] == star:
        parts.pop()
    body = "".join(
        ".*" if p == star else "." if p == SpecialChars.WILDCARD_SINGLE else _RE_SPECIAL.sub(r"\\\1", str(p).lower())
        for p in parts
    )
    return head + body + tail


def _value(name: str, value: SigmaType, fields: set[str]) -> str:
    """The test of one field against one Sigma value."""
    if isinstance(value, SigmaString):
        return _string(name, value, cased=isinstance(value, SigmaCasedString))
    if isinstance(value, SigmaExpansion):
        return "(" + " OR ".join(_value(name, v, fields) for v in value.values) + ")"
    if isinstance(value, SigmaRegularExpression):
        flags = "".join(sorted(_RE_FLAGS[f] for f in value.flags))
        pattern = (f"(?{flags})" if flags else "") + str(value.regexp)
        if error := _re2_error(pattern):
            raise Unsupported(f"a regular expression DuckDB (RE2) cannot run: {error}")
        return f"regexp_matches({column(name, lowered=False)}, {_literal(pattern)})"
    if isinstance(value, SigmaCIDRExpression):
        prefixes = [SigmaString(p) for p in value.expand()]
        return "(" + " OR ".join(_string(name, p, cased=False) for p in prefixes) + ")"
    if isinstance(value, SigmaBool | SigmaNumber):
        number = str(value).lower()
        return f"{column(name, lowered=True)} = {_literal(number)}"
    if isinstance(value, SigmaCompareExpression):
        op = _COMPARE.get(value.op)
        if op is None:
            raise Unsupported(f"comparison {value.op.name}")
        return f"(TRY_CAST({column(name, lowered=False)} AS DOUBLE) {op} {value.number.number})"
    if isinstance(value, SigmaNull):
        return f"({column(name, lowered=False)} IS NULL)"
    if isinstance(value, SigmaExists):
        return f"({column(name, lowered=False)} IS {'NOT ' if value.exists else ''}NULL)"
    if isinstance(value, SigmaFieldReference):
        if value.starts_with or value.ends_with:
            raise Unsupported("field references with startswith/endswith")
        fields.add(value.field)
        return f"({column(name, lowered=True)} = {column(value.field, lowered=True)})"
    raise Unsupported(f"value type {type(value).__name__}")


def _string(name: str, value: SigmaString, *, cased: bool) -> str:
    """A Sigma string test: equality, prefix, suffix, substring, or LIKE for wildcards inside."""
    if value.contains_placeholder():
        raise Unsupported("placeholders (%name%) that need a list from the user")
    parts = [p.lower() if isinstance(p, str) and not cased else p for p in value.s]
    target = column(name, lowered=not cased)
    inner = parts[1:-1] if len(parts) >= 2 else []
    star = SpecialChars.WILDCARD_MULTI
    if all(isinstance(p, str) for p in parts):
        return f"{target} = {_literal(''.join(parts))}"  # type: ignore[arg-type]
    if len(parts) == 3 and parts[0] == star and parts[2] == star and isinstance(parts[1], str):
        return f"contains({target}, {_literal(parts[1])})"
    if len(parts) == 2 and parts[1] == star and isinstance(parts[0], str):
        return f"starts_with({target}, {_literal(parts[0])})"
    if len(parts) == 2 and parts[0] == star and isinstance(parts[1], str):
        return f"ends_with({target}, {_literal(parts[1])})"
    if parts == [star] or (not inner and all(p == star for p in parts)):
        return f"({target} IS NOT NULL)"
    return f"{target} LIKE {_literal(''.join(_like(p) for p in parts))} ESCAPE '\\'"


def _like(part: str | SpecialChars | Placeholder) -> str:
    if part == SpecialChars.WILDCARD_MULTI:
        return "%"
    if part == SpecialChars.WILDCARD_SINGLE:
        return "_"
    text = str(part)
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# ---------------------------------------------------------------- logs


@dataclass
class _LogGroup:
    """The files of one kind of log and the record keys their first lines hold (key -> JSON path parts)."""

    kind: LogKind
    files: list[Path] = field(default_factory=list)
    keys: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _flatten(record: dict[str, Any], prefix: tuple[str, ...], out: dict[str, tuple[str, ...]], depth: int) -> None:
    for key, value in record.items():
        parts = (*prefix, str(key))
        out.setdefault(".".join(parts), parts)
        if isinstance(value, dict) and depth < 4:
            _flatten(value, parts, out, depth + 1)


def sample_keys(path: Path) -> dict[str, tuple[str, ...]]:
    """Record keys (dotted for nested objects) in a JSON-lines file's first lines, with their JSON path parts."""
    head = read_head(path, SAMPLE_BYTES)
    lines = head.splitlines()
    if len(head) >= SAMPLE_BYTES:
        lines = lines[:-1]  # the last line may be cut
    keys: dict[str, tuple[str, ...]] = {}
    for line in lines:
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(record, dict):
            _flatten(record, (), keys, 0)
    return keys


def _group_logs(paths: Sequence[Path], report: SigmaReport) -> dict[str, _LogGroup]:
    """Log files grouped by kind; unreadable files and files of no known kind are reported."""
    groups: dict[str, _LogGroup] = {}
    for path in paths:
        try:
            keys = sample_keys(path)
        except (OSError, EOFError, InputError, ValueError) as exc:
            _problem(report, Problem(str(path), 0, f"cannot read: {exc}"))
            continue
        kind = detect_kind(keys)
        if kind is None:
            _problem(report, Problem(str(path), 0, "not a proxy, DNS or process-creation JSON-lines log"))
            continue
        group = groups.setdefault(kind.name, _LogGroup(kind))
        group.files.append(path)
        for key, parts in keys.items():
            group.keys.setdefault(key, parts)
    return groups


def _problem(report: SigmaReport, problem: Problem) -> None:
    report.problem_count += 1
    report.problems.append(problem)


def _json_path(parts: tuple[str, ...]) -> str:
    return "$." + ".".join('"' + p.replace('"', '\\"') + '"' for p in parts)


def _field_sql(kind: LogKind, keys: dict[str, tuple[str, ...]], name: str, paths: dict[str, int]) -> str | None:
    """SQL over the extracted values `v` for a record field or a derived field; None when the logs lack it."""

    def key_sql(key: str) -> str:
        index = paths.setdefault(_json_path(keys[key]), len(paths) + 1)
        return f"v[{index}]"

    if name in keys:
        return key_sql(name)
    derived = kind.derived.get(name)
    if derived is None:
        return None
    inputs = {p: next((k for k in cands if k in keys), None) for p, cands in derived.inputs.items()}
    if not (any(inputs.values()) if derived.any_input else all(inputs.values())):
        return None
    return derived.template.format(**{p: key_sql(k) if k else "NULL" for p, k in inputs.items()})


@dataclass
class KindPlan:
    """The rules to run on one kind of log, its files, the fields the rules read, and the JSON paths to extract."""

    kind: str
    files: list[Path]
    rules: list[tuple[RuleInfo, str]] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    paths: dict[str, int] = field(default_factory=dict)


def _plan(group: _LogGroup, rules: Sequence[tuple[LoadedRule, SigmaRule]], report: SigmaReport) -> KindPlan:
    """Field-map and translate the rules for one kind of log; those that cannot run are reported as skipped."""
    plan = KindPlan(group.kind.name, group.files)
    pipeline = build_pipeline(group.kind, group.keys)
    for loaded, rule in rules:
        mapped = copy.deepcopy(rule)
        try:
            pipeline.apply(mapped)
            sql, needed = rule_sql(mapped)
        except (Unsupported, SigmaError) as exc:
            report.skipped.append(SkippedRule(loaded.info, f"not supported locally: {exc}"))
            continue
        paths = dict(plan.paths)
        resolved = {n: _field_sql(group.kind, group.keys, n, paths) for n in sorted(needed)}
        missing = [n for n, s in resolved.items() if s is None]
        if missing:
            reason = f"needs fields the {group.kind.name} logs lack: {', '.join(missing)}"
            report.skipped.append(SkippedRule(loaded.info, reason))
            continue
        plan.paths = paths
        plan.fields.update({n: s for n, s in resolved.items() if s is not None})
        plan.rules.append((loaded.info, sql))
    return plan


@functools.cache
def _re2_error(pattern: str) -> str | None:
    """DuckDB's (RE2's) complaint about a rule's regular expression; None when it compiles."""
    con = duckdb.connect()
    try:
        con.execute(f"SELECT regexp_matches('', {_literal(pattern)})").fetchall()
    except duckdb.Error as exc:
        return str(exc).splitlines()[0]
    finally:
        con.close()
    return None


def read_lines_sql(path: Path, rejects: str) -> str:
    """DuckDB's reader for one log file as (ordinality, raw line); rejected lines go to the table `rejects`."""
    kind = compression(path) or "none"
    return (
        f"read_csv({_sql_string(str(path))}, columns={{'raw': 'VARCHAR'}}, delim='\\x01', header=false, quote='',"
        f" escape='', auto_detect=false, strict_mode=false, null_padding=true, compression={_sql_string(kind)},"
        f" encoding='latin-1', max_line_size={MAX_LINE_BYTES}, store_rejects=true,"
        f" rejects_table={_sql_string(rejects)}, rejects_scan={_sql_string(rejects + '_scan')}) WITH ORDINALITY"
    )


def records_sql(path: Path, plan: KindPlan, rejects: str) -> str:
    """A SELECT of (n, raw, v, one read and one lower-cased column per field) over one file's lines."""
    paths = "[" + ", ".join(_literal(p) for p in plan.paths) + "]"
    columns = "".join(
        f", {sql} AS {column(n, lowered=False)}, lower({sql}) AS {column(n, lowered=True)}"
        for n, sql in plan.fields.items()
    )
    return (
        f"SELECT n, raw, v{columns} FROM ("
        f" SELECT ordinality AS n, raw, CASE WHEN json_valid(raw) THEN json_extract_string(raw, {paths}) END AS v"
        f" FROM {read_lines_sql(path, rejects)} WHERE raw IS NOT NULL)"
    )


def _query(path: Path, plan: KindPlan, rejects: str) -> str:
    """One SELECT over one file: every line once, the rules' hits and the malformed lines."""
    hits = ", ".join(f"CASE WHEN {sql} THEN {i} END" for i, (_, sql) in enumerate(plan.rules))
    return (
        "SELECT coalesce(max(n), 0), list(struct_pack(n, raw, bad, hits)) FILTER (WHERE bad OR len(hits) > 0) FROM ("
        f" SELECT n, raw, v IS NULL AND trim(raw) <> '' AS bad, list_filter([{hits}], lambda x: x IS NOT NULL) AS hits"
        f" FROM ({records_sql(path, plan, rejects)}))"
    )


def _physical_line(ordinal: int, dropped: Sequence[int]) -> int:
    """The file line of the n-th row DuckDB returned, given the lines it dropped (too long) in ascending order."""
    line = ordinal
    for skipped in dropped:
        if skipped <= line:
            line += 1
    return line


def _scan(con: duckdb.DuckDBPyConnection, path: Path, plan: KindPlan, n: int, report: SigmaReport) -> None:
    """Run every planned rule over one file; matches and bad lines go into the report."""
    rejects = f"rejects_{n}"
    lines, rows = con.execute(_query(path, plan, rejects)).fetchone() or (0, None)
    rejected = _rejected(con, rejects)
    dropped = [int(line) for line, kind, _ in rejected if kind != "INVALID ENCODING"]
    found = 0
    for line, kind, message in rejected:
        found += 1
        if found <= MAX_PROBLEMS_PER_FILE:
            report.problems.append(Problem(str(path), int(line), f"{kind.lower()}: {message.splitlines()[0]}"))
    report.lines += _physical_line(int(lines), dropped)
    for row in rows or ():
        line = _physical_line(int(row["n"]), dropped)
        if row["bad"]:
            found += 1
            if found <= MAX_PROBLEMS_PER_FILE:
                report.problems.append(Problem(str(path), line, "malformed JSON"))
            continue
        record = _record(row["raw"])
        report.matches.extend(SigmaMatch(plan.rules[i][0], str(path), line, record) for i in row["hits"])
    report.problem_count += found


def _record(raw: str) -> Any:
    """A matched line as its JSON value (the line was read as Latin-1: its bytes are the file's)."""
    data = raw.encode("latin-1")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:  # bad UTF-8 inside a string: keep the text, marking the bad bytes
        return json.loads(data.decode("utf-8", "replace"))


def _rejected(con: duckdb.DuckDBPyConnection, rejects: str) -> list[tuple[int, str, str]]:
    """The lines DuckDB's reader rejected (it creates the table only when it rejects one), then drops the table."""
    try:
        rows = con.execute(f"SELECT line, error_type, error_message FROM {rejects} ORDER BY line").fetchall()
    except duckdb.CatalogException:
        return []
    con.execute(f"DROP TABLE IF EXISTS {rejects}; DROP TABLE IF EXISTS {rejects}_scan")
    return [(int(line), str(kind), str(message)) for line, kind, message in rows]


def _split_rules(rules: RuleSet, report: SigmaReport) -> dict[str, list[tuple[LoadedRule, SigmaRule]]]:
    """The rules by the kind of log their log source needs; correlations and unknown log sources are skipped."""
    by_kind: dict[str, list[tuple[LoadedRule, SigmaRule]]] = {}
    for loaded in rules.rules:
        rule = loaded.rule
        if not isinstance(rule, SigmaRule):
            report.skipped.append(SkippedRule(loaded.info, "correlation rule: needs events grouped over time"))
            continue
        kind = kind_for_logsource(rule.logsource.category)
        if kind is None:
            reason = f"log source {loaded.info.logsource or '(none)'}: runs only on proxy, dns and process_creation"
            report.skipped.append(SkippedRule(loaded.info, reason))
            continue
        by_kind.setdefault(kind.name, []).append((loaded, rule))
    return by_kind


def plan_hunt(rules: RuleSet, logs: Sequence[Path]) -> tuple[list[KindPlan], SigmaReport]:
    """Group the log files by kind and translate the rules each kind can answer; the report lists the rest."""
    report = SigmaReport()
    files = [p for path in logs for p in (sorted(path.rglob("*")) if path.is_dir() else [path]) if p.is_file()]
    by_kind = _split_rules(rules, report)
    groups = _group_logs(files, report)
    plans: list[KindPlan] = []
    for name, kind_rules in by_kind.items():
        if name not in groups:
            report.skipped.extend(SkippedRule(r.info, f"no {name} logs among the inputs") for r, _ in kind_rules)
            continue
        plan = _plan(groups[name], kind_rules, report)
        report.applied.extend(info for info, _ in plan.rules)
        plans.append(plan)
    unused = [path for name, group in groups.items() if name not in by_kind for path in group.files]
    report.files += len(unused)  # no rule reads them: counted as seen, never scanned
    return plans, report


def hunt_sigma(
    rules: RuleSet,
    logs: Sequence[Path],
    *,
    progress: Callable[[int, int], None] | None = None,
    threads: int | None = None,
) -> SigmaReport:
    """Run every rule that the logs can answer over JSON-lines logs (plain, gzip, zstd), each file read once."""
    plans, report = plan_hunt(rules, logs)
    todo = [(path, plan) for plan in plans if plan.rules for path in plan.files]
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")  # the CLI draws its own bar, per file
    if threads:
        con.execute(f"SET threads={int(threads)}")
    try:
        for n, (path, plan) in enumerate(todo):
            _scan_safely(con, path, plan, n, report)
            report.files += 1
            report.bytes += path.stat().st_size
            if progress is not None:
                progress(n + 1, len(todo))
    finally:
        con.close()
    return report


def _scan_safely(con: duckdb.DuckDBPyConnection, path: Path, plan: KindPlan, n: int, report: SigmaReport) -> None:
    """Scan one file; a file DuckDB cannot read (broken compression, I/O error) is reported and the hunt goes on."""
    try:
        _scan(con, path, plan, n, report)
    except (duckdb.Error, orjson.JSONDecodeError) as exc:
        _problem(report, Problem(str(path), 0, f"cannot read: {str(exc).splitlines()[0]}"))


# ---------------------------------------------------------------- export


@functools.cache
def _plugins() -> InstalledSigmaPlugins:
    return InstalledSigmaPlugins.autodiscover()


def targets() -> dict[str, str]:
    """The SIEM query languages installed pySigma backends convert to: name -> description."""
    return {name: str(getattr(backend, "name", name)) for name, backend in sorted(_plugins().backends.items())}


def pipelines() -> list[str]:
    """Names of the installed pySigma processing pipelines (field mappings for a SIEM's data model)."""
    return sorted(_plugins().pipelines)


def convert(
    rules: RuleSet, target: str, *, pipeline: Sequence[str] = (), output_format: str = "default"
) -> Iterator[Conversion]:
    """Each rule in the target's query language, through the named pySigma pipelines (none: Sigma's field names)."""
    backends = _plugins().backends
    if target not in backends:
        raise InputError(target, f"unknown Sigma target (installed: {', '.join(sorted(backends)) or 'none'})")
    try:
        resolved = _plugins().get_pipeline_resolver().resolve(list(pipeline), target)
    except (SigmaError, ValueError) as exc:
        raise InputError(",".join(pipeline), f"cannot use the pipeline: {exc}") from exc
    backend_class: Any = backends[target]  # pySigma types the registry's values as Backend instances
    backend = backend_class(resolved)
    if output_format not in backend.formats:
        raise InputError(output_format, f"not an output format of {target} (known: {', '.join(backend.formats)})")
    for loaded in rules.rules:
        if not isinstance(loaded.rule, SigmaRule):
            yield Conversion(loaded.info, (), "correlation rule: convert it together with the rules it names")
            continue
        try:
            queries = backend.convert_rule(copy.deepcopy(loaded.rule), output_format)
        except (SigmaError, NotImplementedError) as exc:
            yield Conversion(loaded.info, (), str(exc))
            continue
        yield Conversion(loaded.info, tuple(str(q) for q in queries))
