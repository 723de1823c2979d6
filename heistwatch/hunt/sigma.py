"""Sigma rules: loaded with pySigma, run locally on the exchange's JSON-lines logs with DuckDB, exported for a SIEM.

The parts: sigma_load (rules from files, with file:line errors), sigma_sql (a rule's condition as DuckDB tests),
sigma_plan (which rules run on which files, and why the others cannot), sigma_eval (the default engine: every test
once per distinct field value, combined per row with numpy), sigma_scan (the straightforward engine, one SELECT with
every rule on every line, and the recording of matches), sigma_export (conversion for a SIEM). Each log file is
read once whatever the number of rules, two files at a time. Rules that cannot run (correlations, keywords, unknown
log sources, fields the logs lack, regular expressions RE2 refuses) are reported with the reason, never dropped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import duckdb

from heistwatch.hunt.sigma_eval import distinct_hits
from heistwatch.hunt.sigma_export import Conversion, convert, pipelines, targets
from heistwatch.hunt.sigma_load import LoadedRule, RuleInfo, RuleProblem, RuleSet, load_rules
from heistwatch.hunt.sigma_plan import KindPlan, plan_hunt, read_lines_sql, records_sql, sample_keys
from heistwatch.hunt.sigma_report import SigmaMatch, SigmaReport, SkippedRule
from heistwatch.hunt.sigma_scan import Engine, FileScan, record_scan, scan_file, sql_hits
from heistwatch.hunt.sigma_sql import Unsupported, column, rule_sql

__all__ = [
    "ENGINES",
    "Conversion",
    "EngineName",
    "KindPlan",
    "LoadedRule",
    "RuleInfo",
    "RuleProblem",
    "RuleSet",
    "SigmaMatch",
    "SigmaReport",
    "SkippedRule",
    "Unsupported",
    "column",
    "convert",
    "hunt_sigma",
    "load_rules",
    "pipelines",
    "plan_hunt",
    "read_lines_sql",
    "records_sql",
    "rule_sql",
    "sample_keys",
    "targets",
]

EngineName = Literal["distinct", "sql"]
ENGINES: dict[str, Engine] = {"distinct": distinct_hits, "sql": sql_hits}
MAX_PARALLEL_FILES = 2  # each file's records sit in memory while it is scanned


def hunt_sigma(
    rules: RuleSet,
    logs: Sequence[Path],
    *,
    progress: Callable[[int, int], None] | None = None,
    threads: int | None = None,
    engine: EngineName = "distinct",
) -> SigmaReport:
    """Run every rule that the logs can answer over JSON-lines logs (plain, gzip, zstd), each file read once.

    `threads`: DuckDB's threads (default: one per core), and files scanned at once (at most two: each file's
    records sit in memory while it is scanned). `engine` "sql" evaluates every rule's whole expression on every
    line: slower, kept as the reference.
    """
    plans, report = plan_hunt(rules, logs)
    todo = [(path, plan) for plan in plans if plan.rules for path in plan.files]
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads={int(threads)}")

    def scan(n: int, path: Path, plan: KindPlan) -> FileScan:
        cursor = con.cursor()  # a connection of its own: temporary tables and settings are per connection
        try:
            cursor.execute("SET enable_progress_bar = false")  # the CLI draws its own bar, per file
            return scan_file(cursor, path, plan, n, ENGINES[engine])
        finally:
            cursor.close()

    # Two files at a time keep both cores busy: one file's Python (Hyperscan, numpy) runs beside the other's DuckDB.
    workers = max(1, min(len(todo), threads or os.cpu_count() or 1, MAX_PARALLEL_FILES))
    try:
        with ThreadPoolExecutor(workers) as pool:
            scans = [pool.submit(scan, n, path, plan) for n, (path, plan) in enumerate(todo)]
            for n, ((path, _), done) in enumerate(zip(todo, scans, strict=True)):
                record_scan(report, done.result())  # in input order, whichever file finished first
                report.files += 1
                report.bytes += path.stat().st_size
                if progress is not None:
                    progress(n + 1, len(todo))
    finally:
        con.close()
    return report
