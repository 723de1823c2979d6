"""`heistwatch demo`: the end-to-end investigation on the embedded store."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from heistwatch.cli.main import cli, echo_json
from heistwatch.demo import CASE_NAMES, run_demo
from heistwatch.hunt.demo_hunts import summary_lines
from heistwatch.share.attribution import attribution_dict, render_attribution


@cli.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the outputs (default: a new temporary folder).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def demo(out: Path | None, as_json: bool) -> None:
    """Build the knowledge base, resolve the names, ingest the report, attribute the case, trace the theft."""
    folder = out or Path(tempfile.mkdtemp(prefix="heistwatch-demo-"))
    click.echo(f"building the knowledge base in {folder} ...", err=True)
    result = run_demo(folder)
    if as_json:
        echo_json(
            {
                "out": str(result.out),
                "build_seconds": round(result.build.seconds, 2),
                "records": result.build.records,
                "files": {k: str(v) for k, v in result.files.items()},
                "disagreements": result.disagreements,
                "ingest": vars(result.ingest),
                "attribution": attribution_dict(result.attribution),
                "hunt": vars(result.hunt),
                "hunts": {name: vars(getattr(result.hunts, name)) for name in ("files", "mail", "domains", "sigma")},
                "trace": {**vars(result.trace), "scores": vars(result.trace.scores)},
                "stix_valid": result.stix_valid,
                "stix_errors": result.stix_errors,
            }
        )
        return
    click.echo(
        f"knowledge base built in {result.build.seconds:.1f} s: "
        + ", ".join(f"{k} {v}" for k, v in result.build.records.items())
    )
    click.echo(f"\nThe case's names across sources ({len(CASE_NAMES)} names):")
    for name, disagreements in result.disagreements.items():
        click.echo(f"  {name:<20} " + ("; ".join(disagreements) if disagreements else "no disagreement among sources"))
    found = result.ingest
    click.echo(f'\nIngested the incident report "{found.title}":')
    click.echo("  indicators  " + ", ".join(f"{k} {n}" for k, n in found.indicators.items()))
    click.echo(f"  mentions    {found.mentions} kept apart (reference links, abused services, private addresses)")
    click.echo("  named       " + ", ".join(found.named))
    click.echo("  techniques  " + ", ".join(found.techniques))
    hunted = result.hunt
    click.echo(
        f"\nHunted the report's indicators in {hunted.lines:,} lines of simulated proxy, DNS and endpoint logs:"
        f" {hunted.sightings} sightings; {hunted.found_exactly} of {hunted.planted} planted indicators found exactly"
        f" as often as planted; over-reported (a decoy matched): {', '.join(hunted.over_reported) or 'none'};"
        f" missed: {', '.join(hunted.missed) or 'none'}"
    )
    for line in summary_lines(result.hunts):
        click.echo(f"  {line}")
    click.echo("\nAttribution of the case (report findings, the responders' evidence, the hunt's sightings):")
    click.echo("  " + render_attribution(result.attribution).split("\n\nWhy", 1)[0].replace("\n", "\n  "))
    click.echo(f"  (the explanation of each leading candidate is in {result.files['attribution (text)']})")
    traced, scores = result.trace, result.trace.scores
    click.echo(
        f"\nTraced the theft on a simulated ledger of {traced.transfers:,} transfers (FIFO, no hop limit, taint"
        f" under 5% of a transfer dropped) in {traced.seconds:.2f} s: {traced.alerts} alerts at"
        f" {len(traced.services)} services"
        f" ({', '.join(traced.services[:6])}{', ...' if len(traced.services) > 6 else ''})."
    )
    click.echo(
        f"  against the simulator's truth: recall {scores.recall:.2f} of {scores.reachable_endpoints} reachable"
        f" cash-outs, precision {scores.precision:.2f}, honest services alerted {scores.false_service_rate:.1%},"
        f" stolen value with amounts within 5%: {scores.amount_within_5pct:.0%}"
    )
    click.echo("")
    for label, errors in result.stix_errors.items():
        verdict = "valid" if not errors else f"INVALID: {errors[:3]}"
        click.echo(f"{label}: {verdict} under stix2-validator")
    click.echo("\nOutputs:")
    for label, path in result.files.items():
        click.echo(f"  {label:<22} {path}")
    click.echo(f"\nwritten to {result.out}")
