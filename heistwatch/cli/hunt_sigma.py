"""`heistwatch hunt sigma`: Sigma rules run on the exchange's own logs, or converted for its SIEM."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import click

from heistwatch.cli.hunt import finding_options, hunt, keep_findings
from heistwatch.cli.main import Exit, echo_json
from heistwatch.errors import InputError
from heistwatch.hunt.findings import HuntFindings, sigma_findings
from heistwatch.hunt.sigma import RuleSet, SigmaReport, convert, hunt_sigma, load_rules, targets


@hunt.command("sigma")
@click.option(
    "--rules",
    "rule_paths",
    multiple=True,
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="Sigma rule file or folder (repeatable).",
)
@click.option("--convert", "target", help="Print the rules as queries for this SIEM instead of hunting.")
@click.option("--pipeline", multiple=True, help="pySigma pipeline for --convert (repeatable), e.g. splunk_cim.")
@click.option("--format", "output_format", default="default", show_default=True, help="Output format for --convert.")
@finding_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.argument("logs", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.pass_context
def sigma(
    ctx: click.Context,
    rule_paths: tuple[Path, ...],
    target: str | None,
    pipeline: tuple[str, ...],
    output_format: str,
    record: bool,
    stix: Path | None,
    organisation: str,
    as_json: bool,
    logs: tuple[Path, ...],
) -> None:
    """Run Sigma rules on JSON-lines proxy, DNS and process logs (gzip/zstd), or convert them with --convert.

    Each matched rule is kept as a "sigma" indicator and each matched record (file:line) as its sighting.
    """
    rules = load_rules(rule_paths)
    for problem in rules.problems:
        click.echo(f"{problem.file}:{problem.line}: {problem.problem}", err=True)
    if target is not None:
        _convert(rules, target, pipeline, output_format, as_json)
    elif not logs:
        raise InputError("LOGS", f"no log files given (or --convert TARGET; targets: {', '.join(targets())})")
    else:
        with click.progressbar(length=1, label="running Sigma rules", file=sys.stderr) as bar:

            def advance(finished: int, total: int) -> None:
                bar.length = total
                bar.update(finished - bar.pos)

            report = hunt_sigma(rules, logs, progress=advance)
        found = sigma_findings(report)
        keep_findings(ctx, found, record, stix, organisation)
        _show(report, rules, found, as_json)
        if report.problem_count:
            ctx.exit(Exit.BAD_INPUT)
    if rules.problems:
        ctx.exit(Exit.BAD_INPUT)


def _show(report: SigmaReport, rules: RuleSet, found: HuntFindings, as_json: bool) -> None:
    if as_json:
        echo_json(
            {
                "sightings": [{**asdict(s), "id": s.id} for s in found.sightings],
                "matches": [asdict(m) for m in report.matches],
                "applied": [asdict(r) for r in report.applied],
                "skipped": [asdict(s) for s in report.skipped],
                "rule_problems": [asdict(p) for p in rules.problems],
                "problems": [asdict(p) for p in report.problems],
                "problem_count": report.problem_count,
                "files": report.files,
                "lines": report.lines,
                "bytes": report.bytes,
            }
        )
        return
    for m in report.matches:
        techniques = f" [{', '.join(m.rule.techniques)}]" if m.rule.techniques else ""
        click.echo(f"{m.file}:{m.line} {m.rule.level} {m.rule.title}{techniques} (rule {m.rule.id} by {m.rule.author})")
    for s in report.skipped:
        click.echo(f"skipped: {s.rule.title} ({s.rule.file}): {s.reason}")
    for p in report.problems:
        click.echo(f"unreadable: {p.file}:{p.line}: {p.problem}")
    click.echo(
        f"{len(report.matches)} matches from {len(report.applied)} rules ({len(report.skipped)} skipped) in"
        f" {report.files} files, {report.lines:,} lines; {report.problem_count} unreadable lines or files"
    )


def _convert(rules: RuleSet, target: str, pipeline: tuple[str, ...], output_format: str, as_json: bool) -> None:
    conversions = list(convert(rules, target, pipeline=pipeline, output_format=output_format))
    if as_json:
        echo_json([asdict(c) for c in conversions])
        return
    for c in conversions:
        click.echo(f"# {c.rule.title} ({c.rule.id}, by {c.rule.author})")
        for query in c.queries:
            click.echo(query)
        if c.error:
            click.echo(f"# not converted: {c.error}")
