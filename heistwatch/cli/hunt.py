"""`heistwatch hunt logs`: the knowledge base's indicators in the exchange's own logs."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import click

from heistwatch.cli.main import Exit, cli, echo_json, open_kb
from heistwatch.config import cache_folder
from heistwatch.errors import StoreError
from heistwatch.hunt import HuntReport, IndicatorSet, hunt_logs
from heistwatch.hunt.findings import HuntFindings, findings_bundle, record_findings
from heistwatch.hunt.set_cache import load_indicator_set
from heistwatch.kb import KnowledgeStore, SQLiteStore

Command = TypeVar("Command", bound=Callable[..., None])


@cli.group()
def hunt() -> None:
    """Search the exchange's own data for the campaign."""


def finding_options(command: Command) -> Command:
    """The options every hunt shares for its findings: --record/--no-record, --stix FILE, --organisation."""
    options = (
        click.option(
            "--record/--no-record", default=True, show_default=True, help="Keep the sightings in the knowledge base."
        ),
        click.option(
            "--stix", "stix", type=click.Path(dir_okay=False, path_type=Path), help="Also write them as STIX 2.1."
        ),
        click.option("--organisation", default="our exchange", show_default=True, help="Who made the sightings."),
    )
    for option in reversed(options):
        command = option(command)
    return command


def keep_findings(
    ctx: click.Context, findings: HuntFindings, record: bool, stix: Path | None, organisation: str
) -> int | None:
    """Record the findings in the knowledge base and write them as STIX 2.1; the count of new sightings, if recorded.

    Without a knowledge base nothing is recorded (said on stderr); `--stix` still writes the hunt's own findings.
    """
    try:
        store: KnowledgeStore = open_kb(ctx)
        built = True
    except StoreError as exc:
        if record:
            click.echo(f"sightings not recorded: {exc}", err=True)
        store, built = SQLiteStore(":memory:"), False
    try:
        new = record_findings(store, findings, _now()) if record and built else None
        if stix:
            stix.write_text(json.dumps(findings_bundle(store, findings, organisation), indent=1), encoding="utf-8")
    finally:
        store.close()
    if new is not None:
        click.echo(f"{len(findings.sightings)} sightings kept in the knowledge base ({new} new)", err=True)
    return new


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@hunt.command("logs")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--format", "log_format", type=click.Choice(["jsonl", "csv", "zeek", "text"]), help="Skip detection.")
@click.option("--workers", default=2, show_default=True, help="Processes to scan with.")
@click.option("--state", "state", type=click.Path(dir_okay=False, path_type=Path), help="Resume file for long hunts.")
@click.option(
    "--cache/--no-cache",
    default=True,
    show_default=True,
    help="Keep the compiled indicators in the user's cache folder ($XDG_CACHE_HOME/heistwatch) for the next run.",
)
@finding_options
@click.option("--json", "as_json", is_flag=True, help="Print sightings and problems as JSON.")
@click.pass_context
def logs(
    ctx: click.Context,
    paths: tuple[Path, ...],
    log_format: str | None,
    workers: int,
    state: Path | None,
    cache: bool,
    record: bool,
    stix: Path | None,
    organisation: str,
    as_json: bool,
) -> None:
    """Match every indicator in the knowledge base against log files (JSON lines, CSV, Zeek; gzip/zstd)."""
    store = open_kb(ctx)
    try:
        rows = ((i.id, i.kind, i.value) for i in store.indicators())
        indicators = load_indicator_set(rows, cache_folder() if cache else None)
    finally:
        store.close()
    report = _hunt(paths, indicators, workers, state, log_format)
    keep_findings(ctx, HuntFindings(sightings=report.sightings), record, stix, organisation)
    if as_json:
        echo_json(
            {
                "sightings": [vars(s) for s in report.sightings],
                "problems": [vars(p) for p in report.problems],
                "files": report.files,
                "lines": report.lines,
                "bytes": report.bytes,
            }
        )
    else:
        for s in report.sightings:
            click.echo(f"{s.file}:{s.line} {s.kind} {s.value} seen as {s.observed!r} in {s.field} ({s.count}x)")
        click.echo(
            f"{len(report.sightings)} sightings in {report.files} files, {report.lines:,} lines;"
            f" {report.problem_count} unreadable lines or files"
        )
    if report.problem_count:
        ctx.exit(Exit.BAD_INPUT)


def _hunt(
    paths: tuple[Path, ...], indicators: IndicatorSet, workers: int, state: Path | None, log_format: str | None
) -> HuntReport:
    """Hunt the files under `paths` with a progress bar."""
    files = [p for path in paths for p in (sorted(path.rglob("*")) if path.is_dir() else [path]) if p.is_file()]
    with click.progressbar(length=1, label="hunting", file=sys.stderr) as bar:

        def advance(finished: int, total: int) -> None:
            bar.length = total
            bar.update(finished - bar.pos)

        return hunt_logs(files, indicators, workers=workers, progress=advance, state_path=state, log_format=log_format)
