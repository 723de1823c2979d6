"""`heistwatch hunt domains`: lookalikes of the exchange's brand and of lure companies, new since the last run."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from heistwatch.cli.hunt import finding_options, hunt, keep_findings
from heistwatch.cli.main import Exit, echo_json, kb_folder
from heistwatch.hunt.domains import DomainReport, DomainSighting, hunt_domains
from heistwatch.hunt.findings import domain_findings
from heistwatch.hunt.lookalike import LookalikeFinder

STATE_NAME = "lookalike-state.json"


@hunt.command("domains")
@click.argument("logs", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--brand", "brands", multiple=True, required=True, help="The exchange's own domain (repeatable).")
@click.option("--lure-company", "lures", multiple=True, help="A company lures pretend to come from (repeatable).")
@click.option("--allow", "allow", multiple=True, help="A domain that is never a lookalike, with its subdomains.")
@click.option(
    "--ct", "ct", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path), help="CT dump file."
)
@click.option(
    "--state", "state", type=click.Path(dir_okay=False, path_type=Path), help="State file (default: by the KB)."
)
@click.option("--all", "show_all", is_flag=True, help="Show every lookalike, not only those new since the last run.")
@click.option("--workers", default=2, show_default=True, help="Processes to scan with.")
@finding_options
@click.option("--json", "as_json", is_flag=True, help="Print lookalikes and problems as JSON.")
@click.pass_context
def domains(
    ctx: click.Context,
    logs: tuple[Path, ...],
    brands: tuple[str, ...],
    lures: tuple[str, ...],
    allow: tuple[str, ...],
    ct: tuple[Path, ...],
    state: Path | None,
    show_all: bool,
    workers: int,
    record: bool,
    stix: Path | None,
    organisation: str,
    as_json: bool,
) -> None:
    """Find lookalike domains (typos, homoglyphs, IDN, TLD swaps, combosquats) in DNS/proxy/mail logs and CT dumps.

    Each lookalike shown is kept as a domain indicator (source "lookalike-hunt") with its sighting.
    """
    if not logs and not ct:
        raise click.UsageError("give at least one log file or --ct dump")
    finder = LookalikeFinder(brands, lures, allow)
    state_path = state or kb_folder(ctx) / STATE_NAME
    with click.progressbar(length=1, label="hunting lookalikes", file=sys.stderr) as bar:

        def advance(finished: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(finished - bar.pos)

        report = hunt_domains(
            logs, finder, ct=ct, state_path=state_path, report_all=show_all, progress=advance, workers=workers
        )
    keep_findings(ctx, domain_findings(report), record, stix, organisation)
    if as_json:
        echo_json(report_dict(report, state_path))
    else:
        for s in report.sightings:
            click.echo(render_sighting(s))
        click.echo(
            f"{len(report.sightings)} lookalikes shown ({report.new} new, {report.known} reported before) in"
            f" {report.files} files, {report.lines:,} lines; {report.problem_count} unreadable lines or files;"
            f" state {state_path}"
        )
    if report.problem_count:
        ctx.exit(Exit.BAD_INPUT)


def render_sighting(s: DomainSighting) -> str:
    """One line of text for a lookalike sighting."""
    look = s.lookalike
    spelled = look.domain if look.unicode == look.domain else f"{look.unicode} ({look.domain})"
    return (
        f"{'NEW ' if s.new else '    '}{spelled} looks like {look.target} [{look.role}] by {look.technique}"
        f" (score {look.score:.2f}): {look.detail}; seen as {s.host!r} at {s.file}:{s.line} in {s.field}"
        f" ({s.count}x)"
    )


def report_dict(report: DomainReport, state_path: Path) -> dict[str, object]:
    """The report as JSON-ready data."""
    return {
        "lookalikes": [
            {**vars(s.lookalike), **{k: v for k, v in vars(s).items() if k != "lookalike"}} for s in report.sightings
        ],
        "problems": [vars(p) for p in report.problems],
        "problem_count": report.problem_count,
        "new": report.new,
        "known": report.known,
        "files": report.files,
        "lines": report.lines,
        "bytes": report.bytes,
        "state": str(state_path),
    }
