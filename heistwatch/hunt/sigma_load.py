"""Sigma rules loaded with pySigma from files and folders; a broken file or rule is reported with its file and line."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.rule import SigmaRule

from heistwatch.errors import InputError

_TECHNIQUE = re.compile(r"t\d{4}(?:\.\d{3})?")


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
