"""`heistwatch ingest PATH...`: threat reports into the knowledge base, with STIX bundles on request."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from heistwatch.cli.main import Exit, cli, echo_json, open_kb
from heistwatch.ingest.analyze import Analysis, Analyzer, Outcome, document_paths, ingest_documents
from heistwatch.ingest.text import FORMATS, Document, document_from_bytes
from heistwatch.kb import KnowledgeStore
from heistwatch.share.stix_report import report_bundle


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, allow_dash=True))
@click.option(
    "--stix", "stix_dir", type=click.Path(path_type=Path, file_okay=False), help="Write one bundle per report here."
)
@click.option(
    "--format",
    "stdin_format",
    type=click.Choice(sorted(set(FORMATS.values()))),
    default="txt",
    help="Format of the text read from stdin (`-`).",
)
@click.option("--json", "as_json", is_flag=True, help="Print every report's findings as JSON.")
@click.pass_context
def ingest(
    ctx: click.Context, paths: tuple[Path, ...], stix_dir: Path | None, stdin_format: str, as_json: bool
) -> None:
    """Extract indicators, named actors and malware, and ATT&CK techniques from reports, and store them.

    PATHS are files, folders (every .txt/.md/.adoc/.html/.pdf under them) or `-` for stdin. A file that cannot
    be read is reported and skipped; the others are stored, each in its own transaction.
    """
    store = open_kb(ctx)
    try:
        analyzer = Analyzer(store)
        inputs = list(_inputs(paths, stdin_format))
        results: list[dict[str, Any]] = []
        failed = 0
        with click.progressbar(
            ingest_documents(inputs, store, analyzer, now=None),
            length=len(inputs),
            label="ingesting",
            file=sys.stderr,
            show_pos=True,
        ) as outcomes:
            for outcome in outcomes:
                failed += outcome.error is not None
                if stix_dir is not None and outcome.analysis is not None:
                    _write_bundle(store, outcome.analysis, stix_dir)
                results.append(_result(outcome))
    finally:
        store.close()
    if as_json:
        echo_json(results)
    else:
        for result in results:
            click.echo(_summary(result))
    if failed:
        ctx.exit(Exit.BAD_INPUT)


def _inputs(paths: tuple[Path, ...], stdin_format: str) -> Iterator[Path | Document]:
    for path in paths:
        if str(path) == "-":
            yield document_from_bytes(sys.stdin.buffer.read(), stdin_format, "<stdin>")
        else:
            yield from document_paths([path])


def _write_bundle(store: KnowledgeStore, analysis: Analysis, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    report = analysis.batch.report
    bundle = report_bundle(store, report.id, analysis.document.text)
    target = folder / f"{Path(report.name).stem or 'stdin'}-{report.sha256[:12]}.stix.json"
    target.write_text(json.dumps(bundle, indent=1), encoding="utf-8")


def _result(outcome: Outcome) -> dict[str, Any]:
    if outcome.error is not None or outcome.analysis is None or outcome.report is None:
        return {"path": outcome.path, "error": str(outcome.error)}
    analysis = outcome.analysis
    return {
        "path": outcome.path,
        "report": vars(outcome.report),
        "indicators_stored": len(analysis.batch.indicators),
        "findings": analysis.finding_dicts(),
    }


def _summary(result: dict[str, Any]) -> str:
    if "error" in result:
        return f"{result['path']}: error: {result['error']}"
    findings = result["findings"]
    kinds = Counter(f["kind"] for f in findings if f["role"] == "indicator")
    entities = sorted({f["value"] for f in findings if f["role"] == "entity"})
    techniques = sorted({f["value"] for f in findings if f["role"] == "technique"})
    mentions = sum(f["role"] == "mention" for f in findings)
    lines = [
        f"{result['path']}: {result['report']['title']}",
        "  indicators: "
        + (", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) or "none")
        + f" ({result['indicators_stored']} stored); mentions kept apart: {mentions}",
        "  named: " + (", ".join(entities) or "nothing known"),
        "  techniques: " + (", ".join(techniques) or "none"),
    ]
    return "\n".join(lines)
