"""What a Sigma hunt reports: matches, the rules it ran and skipped, and the input it could not read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from heistwatch.hunt.logs import Problem
from heistwatch.hunt.sigma_load import RuleInfo

MAX_PROBLEMS_PER_FILE = 100


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


def add_problem(report: SigmaReport, problem: Problem) -> None:
    """Count and keep one problem with the input."""
    report.problem_count += 1
    report.problems.append(problem)
