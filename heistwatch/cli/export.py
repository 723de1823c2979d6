"""`heistwatch export stix|misp|navigator|feed|yara|sigma`: the knowledge base in the formats analysts' tools read.

Every export takes a TLP ceiling (`--tlp-max`, default AMBER): records marked above it never appear. Output
goes to `--out FILE` (`-` for stdout); with `--dir`, FILE is a name inside that folder and may not leave it.
An existing file is overwritten only with `--force`, and files are replaced atomically.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import click

from heistwatch.attribute.evidence import findings_evidence
from heistwatch.attribute.knowledge import Attributor
from heistwatch.attribute.profiles import knowledge_profiles
from heistwatch.cli.main import cli, echo_json, open_kb
from heistwatch.errors import InputError, NotFoundError
from heistwatch.ingest.text import extract_text
from heistwatch.kb.seed.attack import SOURCE_KEY as ATTACK
from heistwatch.kb.seed.attack import attack_version
from heistwatch.model import TLP, Report
from heistwatch.share.feeds import (
    WITHHELD,
    actor_records,
    find_report,
    report_text_within,
    select_indicators,
    tlp_allows,
    write_csv_feed,
    write_json_feed,
)
from heistwatch.share.misp import actor_event, event_json, event_summary, report_event
from heistwatch.share.navigator import actor_layer, overlap_layer
from heistwatch.share.rules import DEFAULT_MAX_VALUES, RulePack, rule_groups, sigma_pack, yara_pack
from heistwatch.share.stix import export_bundle
from heistwatch.share.stix_report import report_bundle

_TLP_CHOICES = [t.value for t in TLP]


@cli.group()
def export() -> None:
    """Share the knowledge base: STIX, MISP, ATT&CK Navigator, indicator feeds, YARA and Sigma rule packs."""


@dataclass(frozen=True)
class _Export:
    """What every export was asked for: the selection, the TLP ceiling, the file (None: stdout), JSON output."""

    actor: str | None
    report: str | None
    ceiling: TLP
    path: Path | None
    as_json: bool


def _options(*, required: bool) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The options every export takes, checked and passed to the command as one `_Export`.

    `required`: whether --actor or --report must be given.
    """

    def wrap(func: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(func)
        def command(
            ctx: click.Context,
            actor: str | None,
            report: str | None,
            tlp_max: str,
            out: str,
            directory: Path | None,
            force: bool,
            as_json: bool,
            **rest: Any,
        ) -> None:
            _one_of(actor, report, required=required)
            path = _target(out, directory, force)
            func(ctx, _Export(actor, report, TLP(tlp_max.lower()), path, as_json), **rest)

        decorators: list[Callable[[Callable[..., None]], Callable[..., None]]] = [
            click.option("--actor", help="Only this actor (a name any source gives it)."),
            click.option("--report", help="Only this ingested report (its id or document SHA-256)."),
            click.option(
                "--tlp-max",
                type=click.Choice(_TLP_CHOICES, case_sensitive=False),
                default=TLP.AMBER.value,
                show_default=True,
                help="Leave out everything marked above this TLP.",
            ),
            click.option("--out", "out", required=True, help="Output file, or - for stdout."),
            click.option(
                "--dir",
                "directory",
                type=click.Path(exists=True, file_okay=False, path_type=Path),
                help="Folder that --out is a name inside; a name leaving it is refused.",
            ),
            click.option("--force", is_flag=True, help="Overwrite an existing output file."),
            click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON."),
            click.pass_context,
        ]
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return wrap


def _target(out: str, directory: Path | None, force: bool) -> Path | None:
    """The file to write (None for stdout), refusing names that leave `directory` and unforced overwrites."""
    if out == "-":
        return None
    path = Path(out)
    if directory is not None:
        root = directory.resolve()
        path = (root / path).resolve()
        if path == root or not path.is_relative_to(root):
            raise InputError(out, f"leaves the output folder {directory}; give a name inside it")
    if path.exists() and not force:
        raise InputError(str(path), "already exists; pass --force to overwrite it")
    if path.is_dir():
        raise InputError(str(path), "is a folder; give a file name")
    return path


@contextlib.contextmanager
def _opened(path: Path | None) -> Iterator[TextIO]:
    """stdout, or a temporary file beside `path` that replaces it only once it is complete."""
    if path is None:
        yield sys.stdout
        return
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as handle:
            yield handle
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _write(path: Path | None, text: str) -> None:
    with _opened(path) as handle:
        handle.write(text if text.endswith("\n") else text + "\n")


def _done(job: _Export, what: str, details: dict[str, Any]) -> None:
    """Say what was written: to stdout, or to stderr when the export itself went to stdout."""
    where = str(job.path) if job.path is not None else "-"
    if job.as_json and job.path is not None:
        echo_json({"out": where, **details})
    else:
        click.echo(f"wrote {what} to {where}", err=job.path is None)


def _one_of(actor: str | None, report: str | None, *, required: bool) -> None:
    if actor is not None and report is not None:
        raise click.UsageError("give --actor or --report, not both")
    if required and actor is None and report is None:
        raise click.UsageError("give --actor NAME or --report ID")


def _document_text(report: Report, document: Path | None) -> str | None:
    """The report's text from its document, refused when the file is not the document that was ingested."""
    if document is None:
        return None
    doc = extract_text(document)
    if doc.sha256 != report.sha256:
        raise InputError(str(document), f"is not the document of report {report.id} (its SHA-256 differs)")
    return doc.text


_DOCUMENT = click.option(
    "--document",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="With --report: the ingested document, so sentences are quoted.",
)


@export.command("stix")
@_options(required=False)
@_DOCUMENT
def stix(ctx: click.Context, job: _Export, document: Path | None) -> None:
    """A STIX 2.1 bundle: the whole knowledge base, one actor (its records and indicators), or one report."""
    ceiling = job.ceiling
    store = open_kb(ctx)
    try:
        if job.report is not None:
            found = find_report(store, job.report)
            text = _document_text(found, document)
            bundle = report_bundle(store, found.id, text and report_text_within(store, found, text, ceiling))
        elif job.actor is not None:
            records = actor_records(store, job.actor, ceiling)
            indicators = [e.indicator.id for e in select_indicators(store, actor=job.actor, tlp_max=ceiling)]
            bundle = export_bundle(store, ids=[*(r.id for r in records), *indicators])
        else:
            bundle = export_bundle(store)
    finally:
        store.close()
    bundle = _bundle_within(bundle, ceiling)
    _write(job.path, json.dumps(bundle, indent=1, ensure_ascii=False))
    _done(job, f"a STIX bundle of {len(bundle['objects'])} objects", {"objects": len(bundle["objects"])})


def _bundle_within(bundle: dict[str, Any], ceiling: TLP) -> dict[str, Any]:
    """The bundle without objects marked above `ceiling`, references to them, or sentences naming them."""
    above = {t.stix_marking_id for t in TLP if not tlp_allows(t, ceiling)}
    dropped = {
        o["id"] for o in bundle["objects"] if o["id"] in above or above.intersection(o.get("object_marking_refs", ()))
    }
    withheld = {o.get("description") for o in bundle["objects"] if o["id"] in dropped and o["type"] == "indicator"}
    kept = []
    for obj in bundle["objects"]:
        if obj["id"] in dropped or {obj.get("source_ref"), obj.get("target_ref")} & dropped:
            continue
        if obj["type"] == "indicator" and obj.get("description") in withheld:
            obj = {**obj, "description": WITHHELD}  # its sentence also names a dropped value
        if "object_refs" in obj:
            obj = {**obj, "object_refs": [r for r in obj["object_refs"] if r not in dropped]}
        kept.append(obj)
    return {**bundle, "objects": kept}


@export.command("misp")
@_options(required=True)
@_DOCUMENT
def misp(ctx: click.Context, job: _Export, document: Path | None) -> None:
    """A MISP event (`{"Event": ...}`) for one report or one actor, with galaxy and TLP tags."""
    store = open_kb(ctx)
    try:
        if job.report is not None:
            text = _document_text(find_report(store, job.report), document)
            event = report_event(store, job.report, text, tlp_max=job.ceiling)
        else:
            assert job.actor is not None
            event = actor_event(store, job.actor, tlp_max=job.ceiling)
    finally:
        store.close()
    _write(job.path, event_json(event))
    summary = event_summary(event)
    _done(job, f"a MISP event of {summary['attributes']} attributes", summary)


@export.command("navigator")
@_options(required=True)
def navigator(ctx: click.Context, job: _Export) -> None:
    """An ATT&CK Navigator layer: an actor's techniques, or a report's attribution against its candidates."""
    store = open_kb(ctx)
    try:
        if job.actor is not None:
            groups = {r.external_id for r in actor_records(store, job.actor, job.ceiling) if r.source == ATTACK}
            profile = next((p for p in knowledge_profiles(store).profiles if p.actor_id in groups), None)
            if profile is None:
                raise NotFoundError(f"no ATT&CK group named {job.actor}")
            layer = actor_layer(profile, attack_version())
        else:
            assert job.report is not None
            found = find_report(store, job.report)
            attributor = Attributor(store)
            levels = attributor.attribute(findings_evidence(store.findings(found.id), store, found), top=5)
            layer = overlap_layer(levels, attributor.profiles.profiles, attack_version())
    finally:
        store.close()
    _write(job.path, json.dumps(layer, indent=1, ensure_ascii=False))
    _done(job, f"a layer of {len(layer['techniques'])} techniques", {"techniques": len(layer["techniques"])})


@export.command("feed")
@_options(required=False)
@click.option("--format", "feed_format", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
def feed(ctx: click.Context, job: _Export, feed_format: str) -> None:
    """An indicator feed (kind, value, first/last seen, confidence, actors, TLP, source), written as it is read."""
    write = write_csv_feed if feed_format == "csv" else write_json_feed
    store = open_kb(ctx)
    try:
        entries = select_indicators(store, actor=job.actor, report=job.report, tlp_max=job.ceiling)
        with (
            _opened(job.path) as handle,
            click.progressbar(entries, label="writing the feed", file=sys.stderr) as bar,
        ):
            count = write(bar, handle)
    finally:
        store.close()
    _done(job, f"{count} indicators", {"indicators": count, "format": feed_format})


def _rule_pack(ctx: click.Context, job: _Export, build: Callable[..., RulePack], kind: str, max_values: int) -> None:
    """Write the rule pack `build` makes from the selected indicators, grouped by actor."""
    store = open_kb(ctx)
    try:
        groups = rule_groups(store, actor=job.actor, report=job.report, tlp_max=job.ceiling)
    finally:
        store.close()
    pack = build(groups, date=datetime.datetime.now(datetime.UTC).date(), max_values=max_values)
    _write(job.path, pack.text)
    details = {"rules": pack.rules, "values": pack.values, "actors": sorted(groups)}
    _done(job, f"{pack.rules} {kind} rules ({pack.values} values)", details)


@export.command("yara")
@_options(required=False)
@click.option("--max-values", default=DEFAULT_MAX_VALUES, show_default=True, type=click.IntRange(1))
def yara(ctx: click.Context, job: _Export, max_values: int) -> None:
    """YARA rules matching each actor's file hashes (MD5, SHA-1, SHA-256), at most --max-values a rule."""
    _rule_pack(ctx, job, yara_pack, "YARA", max_values)


@export.command("sigma")
@_options(required=False)
@click.option("--max-values", default=DEFAULT_MAX_VALUES, show_default=True, type=click.IntRange(2))
def sigma(ctx: click.Context, job: _Export, max_values: int) -> None:
    """Sigma rules for each actor's domains (dns_query), IPs (network_connection) and URLs (proxy)."""
    _rule_pack(ctx, job, sigma_pack, "Sigma", max_values)
