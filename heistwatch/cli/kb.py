"""`heistwatch kb build|stats|export|import`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from heistwatch.cli.main import cli, echo_json, open_kb_path
from heistwatch.kb import SQLiteStore, build_knowledge_base
from heistwatch.share.stix import export_bundle, import_bundle
from heistwatch.share.text import render_stats


@cli.group()
def kb() -> None:
    """Build and inspect the knowledge base."""


@kb.command()
@click.option("--json", "as_json", is_flag=True, help="Print the build report as JSON.")
@click.pass_context
def build(ctx: click.Context, as_json: bool) -> None:
    """Build the knowledge base from the packaged open data and the claims pack (atomic swap)."""
    report = build_knowledge_base(ctx.obj["kb"], progress=lambda m: click.echo(m, err=True))
    if as_json:
        echo_json(
            {
                "path": str(report.path),
                "seconds": round(report.seconds, 3),
                "records": report.records,
                "unresolved_links": report.unresolved_links,
            }
        )
    else:
        click.echo(
            f"built {report.path} in {report.seconds:.1f} s: "
            + ", ".join(f"{k} {v}" for k, v in report.records.items())
        )


@kb.command()
@click.option("--json", "as_json", is_flag=True, help="Print counts as JSON.")
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Counts of objects, claims, relationships and indicators per source."""
    store = SQLiteStore(open_kb_path(ctx))
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
    store = SQLiteStore(open_kb_path(ctx))
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
    store = SQLiteStore(open_kb_path(ctx))
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
