"""`heistwatch hunt files`: YARA-X rules, known-family TLSH neighbours and hash indicators in files and archives."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import click

from heistwatch.cli.hunt import finding_options, hunt, keep_findings
from heistwatch.cli.main import Exit, echo_json, open_kb
from heistwatch.errors import StoreError
from heistwatch.hunt.files import FileFinding, FileHuntReport, Limits, hunt_files
from heistwatch.hunt.findings import HuntFindings, file_findings, yara_rule_texts
from heistwatch.hunt.fuzzy import DEFAULT_THRESHOLD, Neighbour, load_family_index
from heistwatch.hunt.logs import Problem
from heistwatch.hunt.yara_scan import compile_rules
from heistwatch.model import Indicator

_DEFAULTS = Limits()


@hunt.command("files")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--rules", "rules", multiple=True, type=click.Path(exists=True, path_type=Path), help="YARA file/folder.")
@click.option("--families", type=click.Path(exists=True, path_type=Path), help="Family index (.npz) or CSV/JSON.")
@click.option("--threshold", default=DEFAULT_THRESHOLD, show_default=True, help="TLSH distance naming a family.")
@click.option("--tlsh/--no-tlsh", "fuzzy", default=True, show_default=True, help="TLSH of every file (slowest step).")
@click.option("--ssdeep", is_flag=True, help="Also compute ssdeep hashes.")
@click.option(
    "--sha256/--no-sha256", default=True, show_default=True, help="SHA-256 of every scanned file in --json (slower)."
)
@click.option("--max-depth", default=_DEFAULTS.max_depth, show_default=True, help="Archive nesting to open.")
@click.option("--max-bytes", default=_DEFAULTS.max_bytes, show_default=True, help="Bytes of one file or member.")
@click.option("--max-total", default=_DEFAULTS.max_total, show_default=True, help="Bytes unpacked per file.")
@click.option(
    "--workers", default=2, show_default=True, type=click.IntRange(min=1), help="Processes to scan with (this one too)."
)
@finding_options
@click.option("--json", "as_json", is_flag=True, help="Print findings, scanned files and problems as JSON.")
@click.pass_context
def files(
    ctx: click.Context,
    paths: tuple[Path, ...],
    rules: tuple[Path, ...],
    families: Path | None,
    threshold: int,
    fuzzy: bool,
    ssdeep: bool,
    sha256: bool,
    max_depth: int,
    max_bytes: int,
    max_total: int,
    workers: int,
    record: bool,
    stix: Path | None,
    organisation: str,
    as_json: bool,
) -> None:
    """Scan files, folders and archives with YARA-X rules, TLSH family neighbours and the knowledge base's hashes.

    Hash hits, YARA matches (the rule stored as an indicator) and family matches are kept as sightings. Files with
    findings always carry their SHA-256; the others only in --json, unless --no-sha256 (a third of a scan's time).
    """
    compiled = compile_rules(rules) if rules else None
    index, index_problems = load_family_index(families) if families else (None, [])
    with click.progressbar(length=1, label="hunting files", file=sys.stderr) as bar:

        def advance(finished: int, total: int) -> None:
            bar.length = total
            bar.update(finished - bar.pos)

        report = hunt_files(
            paths,
            rules=compiled,
            index=index,
            indicators=_hash_indicators(ctx),
            fuzzy=fuzzy,
            ssdeep=ssdeep,
            sha256=sha256 and as_json,
            limits=Limits(max_depth=max_depth, max_bytes=max_bytes, max_total=max_total),
            threshold=threshold,
            workers=workers,
            progress=advance,
        )
    problems = [*index_problems, *report.problems]
    found = file_findings(report, yara_rule_texts(rules) if rules else {})
    keep_findings(ctx, found, record, stix, organisation)
    if as_json:
        echo_json(_report_dict(report, index_problems, found))
    else:
        for finding in report.findings:
            click.echo(_finding_line(finding))
        for problem in problems:
            click.echo(f"problem: {problem.file}: {problem.problem}")
        click.echo(
            f"{len(report.findings)} findings in {report.files:,} files ({report.bytes:,} bytes,"
            f" {report.processes} processes); {report.problem_count + len(index_problems)} problems"
        )
    if report.problem_count or index_problems:
        ctx.exit(Exit.BAD_INPUT)


def _hash_indicators(ctx: click.Context) -> list[Indicator]:
    """The knowledge base's file-hash indicators; none when no knowledge base has been built."""
    try:
        store = open_kb(ctx)
    except StoreError:
        return []
    try:
        return [i for kind in ("md5", "sha1", "sha256") for i in store.indicators(kind=kind)]
    finally:
        store.close()


def _finding_line(finding: FileFinding) -> str:
    if finding.rule is not None:
        rule = finding.rule
        tags = f" [{', '.join(rule.tags)}]" if rule.tags else ""
        about = rule.meta_value("description")
        return (
            f"{finding.file}: YARA {rule.namespace}:{rule.rule}{tags} by {rule.author}"
            + (f": {about}" if about else "")
            + (f" <{rule.meta_value('reference')}>" if rule.meta_value("reference") else "")
        )
    if finding.neighbour is not None:
        return f"{finding.file}: family {finding.neighbour.verdict}, nearest {finding.neighbour.sha256 or 'sample'}"
    return f"{finding.file}: knowledge base indicator {finding.name}"


def _neighbour_dict(neighbour: Neighbour | None) -> dict[str, Any] | None:
    if neighbour is None:
        return None
    return {**dataclasses.asdict(neighbour), "matched": neighbour.matched, "verdict": neighbour.verdict}


def _report_dict(report: FileHuntReport, index_problems: list[Problem], found: HuntFindings) -> dict[str, Any]:
    return {
        "sightings": [{**dataclasses.asdict(s), "id": s.id} for s in found.sightings],
        "findings": [
            {
                "file": f.file,
                "sha256": f.sha256,
                "kind": f.kind,
                "name": f.name,
                "rule": None
                if f.rule is None
                else {**dataclasses.asdict(f.rule), "author": f.rule.author, "meta": [list(m) for m in f.rule.meta]},
                "neighbour": _neighbour_dict(f.neighbour),
                "sighting": None if f.sighting is None else dataclasses.asdict(f.sighting),
            }
            for f in report.findings
        ],
        "scanned": [{**dataclasses.asdict(s), "nearest": _neighbour_dict(s.nearest)} for s in report.scanned],
        "problems": [dataclasses.asdict(p) for p in [*index_problems, *report.problems]],
        "problem_count": report.problem_count + len(index_problems),
        "files": report.files,
        "bytes": report.bytes,
        "processes": report.processes,
    }
