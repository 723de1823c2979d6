"""`heistwatch attribute`: evidence to ranked, calibrated, explained actors."""

from __future__ import annotations

from pathlib import Path

import click

from heistwatch.attribute.evidence import findings_evidence, read_evidence, sighting_evidence
from heistwatch.attribute.knowledge import Attributor
from heistwatch.attribute.model import Evidence
from heistwatch.cli.main import cli, echo_json, open_kb
from heistwatch.errors import NotFoundError
from heistwatch.kb import KnowledgeStore
from heistwatch.share.attribution import attribution_dict, render_attribution


@cli.command("attribute")
@click.argument("evidence", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--report", "report", help="Use an ingested report's findings (its id, SHA-256 or file name).")
@click.option(
    "--sightings", "with_sightings", is_flag=True, help="Add the hunt sightings stored in the knowledge base."
)
@click.option("--top", default=5, show_default=True, help="Candidates to show.")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@click.pass_context
def attribute_command(
    ctx: click.Context, evidence: Path | None, report: str | None, with_sightings: bool, top: int, as_json: bool
) -> None:
    """Rank the knowledge base's actors (and an unknown actor) given EVIDENCE.

    EVIDENCE is a JSON evidence file ({"evidence": [{"kind", "value", ...}]}) or a STIX 2.1 bundle such as
    `ingest --stix` writes; or use --report for a report already ingested. --sightings adds what hunts recorded.
    """
    if evidence is not None and report is not None:
        raise click.UsageError("give an EVIDENCE file or --report, not both")
    if evidence is None and report is None and not with_sightings:
        raise click.UsageError("give an EVIDENCE file, --report or --sightings")
    store = open_kb(ctx)
    try:
        items = read_evidence(evidence, store) if evidence else _report_evidence(store, report) if report else []
        if with_sightings:
            items += sighting_evidence(store.sightings(), store)
        levels = Attributor(store).attribute(items, top=top)
    finally:
        store.close()
    if as_json:
        echo_json(attribution_dict(levels))
    else:
        click.echo(render_attribution(levels))


def _report_evidence(store: KnowledgeStore, wanted: str) -> list[Evidence]:
    for report in store.reports():
        if wanted in (report.id, report.sha256, report.name, Path(report.name).name):
            return findings_evidence(store.findings(report.id), store, report)
    raise NotFoundError(f"no ingested report {wanted!r} (see the ids and names `ingest --json` printed)")
