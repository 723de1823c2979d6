"""Which Sigma rules can run on which log files: files grouped by kind, rules field-mapped and translated.

A file's kind is told by the keys its first records hold; a rule runs on the files of the kind its log source
names, when those files hold (or let heistwatch derive) every field it reads. Rules that cannot run are reported
with the reason, never dropped.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from heistwatch.errors import InputError
from heistwatch.hunt.logs import Problem, compression, read_head
from heistwatch.hunt.sigma_load import LoadedRule, RuleInfo, RuleSet
from heistwatch.hunt.sigma_pipeline import LogKind, build_pipeline, detect_kind, kind_for_logsource
from heistwatch.hunt.sigma_report import SigmaReport, SkippedRule, add_problem
from heistwatch.hunt.sigma_sql import Node, Unsupported, column, literal, render, rule_tree, sql_string, tree_fields

SAMPLE_BYTES = 256 << 10
MAX_LINE_BYTES = 16 << 20


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
            add_problem(report, Problem(str(path), 0, f"cannot read: {exc}"))
            continue
        kind = detect_kind(keys)
        if kind is None:
            add_problem(report, Problem(str(path), 0, "not a proxy, DNS or process-creation JSON-lines log"))
            continue
        group = groups.setdefault(kind.name, _LogGroup(kind))
        group.files.append(path)
        for key, parts in keys.items():
            group.keys.setdefault(key, parts)
    return groups


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
    trees: list[Node] = field(default_factory=list)
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
            tree = rule_tree(mapped)
        except (Unsupported, SigmaError) as exc:
            report.skipped.append(SkippedRule(loaded.info, f"not supported locally: {exc}"))
            continue
        paths = dict(plan.paths)
        resolved = {n: _field_sql(group.kind, group.keys, n, paths) for n in sorted(tree_fields(tree))}
        missing = [n for n, s in resolved.items() if s is None]
        if missing:
            reason = f"needs fields the {group.kind.name} logs lack: {', '.join(missing)}"
            report.skipped.append(SkippedRule(loaded.info, reason))
            continue
        plan.paths = paths
        plan.fields.update({n: s for n, s in resolved.items() if s is not None})
        plan.rules.append((loaded.info, render(tree)))
        plan.trees.append(tree)
    return plan


def read_lines_sql(path: Path, rejects: str) -> str:
    """DuckDB's reader for one log file as (ordinality, raw line); rejected lines go to the table `rejects`."""
    kind = compression(path) or "none"
    return (
        f"read_csv({sql_string(str(path))}, columns={{'raw': 'VARCHAR'}}, delim='\\x01', header=false, quote='',"
        f" escape='', auto_detect=false, strict_mode=false, null_padding=true, compression={sql_string(kind)},"
        f" encoding='latin-1', max_line_size={MAX_LINE_BYTES}, store_rejects=true,"
        f" rejects_table={sql_string(rejects)}, rejects_scan={sql_string(rejects + '_scan')}) WITH ORDINALITY"
    )


def records_sql(path: Path, plan: KindPlan, rejects: str, *, lowered: bool = True) -> str:
    """A SELECT of (n, raw, v, one read and, if `lowered`, one lower-cased column per field) over one file's lines."""
    paths = "[" + ", ".join(literal(p) for p in plan.paths) + "]"
    columns = "".join(
        f", {sql} AS {column(n, lowered=False)}" + (f", lower({sql}) AS {column(n, lowered=True)}" if lowered else "")
        for n, sql in plan.fields.items()
    )
    return (
        f"SELECT n, raw, v{columns} FROM ("
        # try(): NULL for a line that is not JSON, with one parse per line (json_valid first would parse it twice)
        f" SELECT ordinality AS n, raw, try(json_extract_string(raw, {paths})) AS v"
        f" FROM {read_lines_sql(path, rejects)} WHERE raw IS NOT NULL)"
    )


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
