"""`heistwatch kb build|stats|export|import`."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click

from heistwatch.cli.main import cli, echo_json, open_kb
from heistwatch.kb import build_knowledge_base
from heistwatch.kb.open import describe_target, is_postgres
from heistwatch.share.stix import export_bundle, import_bundle
from heistwatch.share.text import render_stats


@cli.group()
def kb() -> None:
    """Build and inspect the knowledge base."""


def _load_into_server(url: str, built: Path) -> None:
    """Copy a freshly built knowledge base file into a PostgreSQL server, keeping the server's reports and sightings."""
    from heistwatch.kb.postgres import PostgresStore, copy_knowledge_base  # psycopg only when a server is used

    store = PostgresStore(url)
    try:
        copy_knowledge_base(built, store)
    finally:
        store.close()


@kb.command()
@click.option("--json", "as_json", is_flag=True, help="Print the build report as JSON.")
@click.pass_context
def build(ctx: click.Context, as_json: bool) -> None:
    """Build the knowledge base from the packaged open data and the claims pack (atomic swap).

    For a PostgreSQL URL it is built in a temporary file and loaded into the server in one transaction.
    """
    target = ctx.obj["kb"]
    with tempfile.TemporaryDirectory(prefix="heistwatch-build-") as scratch:
        path = Path(scratch) / "kb.sqlite" if is_postgres(target) else target
        report = build_knowledge_base(path, progress=lambda m: click.echo(m, err=True))
        if is_postgres(target):
            _load_into_server(str(target), report.path)
    if as_json:
        echo_json(
            {
                "path": describe_target(target),
                "seconds": round(report.seconds, 3),
                "records": report.records,
                "unresolved_links": report.unresolved_links,
            }
        )
    else:
        click.echo(
            f"built {describe_target(target)} in {report.seconds:.1f} s: "
            + ", ".join(f"{k} {v}" for k, v in report.records.items())
        )


@kb.command()
@click.option("--json", "as_json", is_flag=True, help="Print counts as JSON.")
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Counts of objects, claims, relationships and indicators per source."""
    store = open_kb(ctx)
    try:
        rows = store.stats()
    finally:
        store.close()
    if as_json:
        echo_json(
            [
                {
                    "source": vars(s.source),
                    "objects": dict(s.objects),
                    "claims": s.claims,
                    "relationships": s.relationships,
                    "indicators": s.indicators,
                }
                for s in rows
            ]
        )
    else:
        click.echo(render_stats(rows))


@kb.command("export")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write here instead of stdout.")
@click.pass_context
def export(ctx: click.Context, out: Path | None) -> None:
    """Export the knowledge base as a STIX 2.1 bundle."""
    store = open_kb(ctx)
    try:
        bundle = export_bundle(store)
    finally:
        store.close()
    text = json.dumps(bundle, indent=1)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
        click.echo(f"wrote {len(bundle['objects'])} objects to {out}", err=True)
    else:
        click.echo(text)


@kb.command("import")
@click.argument("bundles", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the import report as JSON.")
@click.pass_context
def import_(ctx: click.Context, bundles: tuple[Path, ...], as_json: bool) -> None:
    """Import STIX 2.1 bundles, each in one transaction (a bad bundle changes nothing)."""
    store = open_kb(ctx)
    try:
        reports = [import_bundle(store, path) for path in bundles]
    finally:
        store.close()
    if as_json:
        echo_json([vars(r) for r in reports])
    else:
        for r in reports:
            skipped = ", ".join(f"{n} {t}" for t, n in r.skipped.items()) or "nothing"
            click.echo(f"{r.path}: stored {r.stored} records, passed over {skipped}")
