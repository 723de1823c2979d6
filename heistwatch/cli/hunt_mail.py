"""`heistwatch hunt mail`: lures of the case in `.eml` files, mbox files and mail folders, scored with reasons."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import click

from heistwatch.cli.hunt import finding_options, hunt, keep_findings
from heistwatch.cli.main import Exit, echo_json, open_kb
from heistwatch.hunt.findings import HuntFindings, mail_findings
from heistwatch.hunt.lures import MEDIUM, LureFinding, MailHuntReport, hunt_mail, load_domains
from heistwatch.hunt.mail import mail_files
from heistwatch.hunt.matcher import IndicatorSet


@hunt.command("mail")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--min-score",
    default=MEDIUM,
    show_default=True,
    type=click.IntRange(0, 100),
    help="Lowest score to report.",
)
@click.option(
    "--new-domains",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File of newly seen domains, one a line: mail from or linking to them scores higher.",
)
@click.option(
    "--indicators/--no-indicators",
    default=True,
    show_default=True,
    help="Also match the knowledge base's indicators (needs a built knowledge base).",
)
@finding_options
@click.option("--json", "as_json", is_flag=True, help="Print findings and problems as JSON.")
@click.pass_context
def mail(
    ctx: click.Context,
    paths: tuple[Path, ...],
    min_score: int,
    new_domains: Path | None,
    indicators: bool,
    record: bool,
    stix: Path | None,
    organisation: str,
    as_json: bool,
) -> None:
    """Score every message for recruiter / trading-firm lures, dangerous attachments and links, with reasons.

    Knowledge-base indicators found in messages are kept as sightings; lure scores are shown, not stored.
    """
    indicator_set = _indicators(ctx) if indicators else None
    domains = load_domains(new_domains) if new_domains else frozenset[str]()
    total = sum(p.stat().st_size for p in mail_files(paths))
    with click.progressbar(length=max(total, 1), label="reading mail", file=sys.stderr) as bar:
        report = hunt_mail(paths, indicator_set, min_score=min_score, new_domains=domains, on_bytes=bar.update)
    found = mail_findings(report)
    keep_findings(ctx, found, record, stix, organisation)
    if as_json:
        echo_json(_as_dict(report, found))
    else:
        _echo_text(report, min_score)
    if report.problems:
        ctx.exit(Exit.BAD_INPUT)


def _indicators(ctx: click.Context) -> IndicatorSet:
    store = open_kb(ctx)
    try:
        return IndicatorSet.from_indicators(store.indicators())
    finally:
        store.close()


def _as_dict(report: MailHuntReport, found: HuntFindings) -> dict[str, object]:
    return {
        "sightings": [{**asdict(s), "id": s.id} for s in found.sightings],
        "findings": [{**asdict(f), "level": f.level} for f in report.findings],
        "problems": [asdict(p) for p in report.problems],
        "messages": report.messages,
        "files": report.files,
    }


def _echo_text(report: MailHuntReport, min_score: int) -> None:
    for finding in report.findings:
        _echo_finding(finding)
    click.echo(
        f"{len(report.findings)} findings (score >= {min_score} or a knowledge-base indicator) in"
        f" {report.messages:,} messages, {report.files} files; {len(report.problems)} unreadable or defective"
    )
    for problem in report.problems:
        click.echo(f"problem: {problem.file} #{problem.index}: {problem.problem}", err=True)


def _echo_finding(finding: LureFinding) -> None:
    click.echo(f"{finding.file} #{finding.index}  score {finding.score} ({finding.level})")
    click.echo(f"  from {finding.sender or '(no sender)'}: {finding.subject!r}")
    for reason in finding.reasons:
        click.echo(f"  +{reason.points:<3} {reason.rule}: {reason.detail}")
