"""`heistwatch trace load`: real chain exports (raw Bitcoin blocks, ethereum-etl files, Parquet) into a ledger."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from heistwatch.cli.main import Exit, echo_json
from heistwatch.cli.trace import LABELS_OPTION, trace
from heistwatch.trace.btc_blocks import BlockReport, block_files, load_btc_blocks
from heistwatch.trace.eth_etl import LoadReport, export_bytes, load_eth_export
from heistwatch.trace.labels import read_labels
from heistwatch.trace.parquet import load_parquet, parquet_rows
from heistwatch.trace.store import TransferStore

FORMATS = ("btc-blocks", "eth-etl", "parquet")


@trace.command("load")
@click.argument("ledger", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Default: guessed from the inputs' names.")
@LABELS_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print what was loaded and skipped as JSON.")
@click.pass_context
def load_command(
    ctx: click.Context,
    ledger: Path,
    inputs: tuple[Path, ...],
    fmt: str | None,
    label_paths: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Load chain data (INPUTS: files or folders) and service labels into LEDGER, a DuckDB file."""
    fmt = fmt or _guess_format(inputs)
    store = TransferStore(ledger)
    try:
        before = store.count()
        report = _load(store, fmt, inputs)
        labelled = store.add_labels(label for path in label_paths for label in read_labels(path))
        store.build_indexes()
        total = store.count()
    finally:
        store.close()
    facts = {"ledger": str(ledger), "format": fmt, "added": total - before, "transfers": total, "labels": labelled}
    problems = report.problem_count if isinstance(report, LoadReport) else 0
    if as_json:
        echo_json(facts | {"report": asdict(report)})
    else:
        click.echo(f"{ledger}: {total - before:,} transfers added ({total:,} in all), {labelled:,} labels")
        click.echo(report.summary() if isinstance(report, BlockReport) else _eth_summary(report))
    if problems:
        ctx.exit(Exit.BAD_INPUT)


def _load(store: TransferStore, fmt: str, inputs: tuple[Path, ...]) -> BlockReport | LoadReport:
    """Read the inputs into the store in their format, with a progress bar on stderr."""
    if fmt == "btc-blocks":
        size = sum(p.stat().st_size for p in block_files(inputs, BlockReport()))
        with click.progressbar(length=max(size, 1), label="reading blocks", file=sys.stderr) as bar:
            return load_btc_blocks(store, inputs, bar.update)
    if fmt == "eth-etl":
        size = export_bytes(inputs)
        with click.progressbar(length=max(size, 1), label="reading the export", file=sys.stderr) as bar:
            return load_eth_export(store, inputs, bar.update)
    files = [f for p in inputs for f in (sorted(p.glob("*.parquet")) if p.is_dir() else [p])]
    rows = sum(parquet_rows(f) for f in files)
    with click.progressbar(length=max(rows, 1), label="reading Parquet", file=sys.stderr) as bar:
        return load_parquet(store, files, bar.update)


def _guess_format(inputs: tuple[Path, ...]) -> str:
    """Parquet or an Ethereum export from the files' suffixes; raw Bitcoin blocks otherwise."""
    files = [f for p in inputs for f in (p.iterdir() if p.is_dir() else [p])]
    suffixes = {f.suffix.lower() for f in files}
    if ".parquet" in suffixes:
        return "parquet"
    return (
        "eth-etl" if suffixes & {".csv", ".json", ".jsonl"} and not any(_is_block(f) for f in files) else "btc-blocks"
    )


def _is_block(path: Path) -> bool:
    return path.name.startswith("blk") or path.suffix in (".bin", ".blk", ".raw", ".hex")


def _eth_summary(report: LoadReport) -> str:
    """What an Ethereum or Parquet load read, what it left out and why, and its first unreadable rows."""
    lines = [
        "rows read: " + _counts(report.rows),
        "transfers: " + _counts(report.transfers),
        "left out: " + (_counts(report.skipped) or "nothing"),
    ]
    if report.problem_count:
        lines.append(f"{report.problem_count:,} unreadable rows:")
        lines += [f"  {p.file}:{p.line}: {p.problem}" for p in report.problems[:10]]
    return "\n".join(lines)


def _counts(counts: dict[str, Any]) -> str:
    return ", ".join(f"{name} {n:,}" for name, n in counts.items())
