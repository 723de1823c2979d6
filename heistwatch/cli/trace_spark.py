"""`heistwatch trace spark`: trace theft transactions through Parquet transfers with the Spark engine."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from heistwatch.cli.main import Exit, echo_json
from heistwatch.cli.trace import LABELS_OPTION, trace
from heistwatch.errors import HeistwatchError
from heistwatch.trace.alerts import alert_dict
from heistwatch.trace.labels import read_labels
from heistwatch.trace.policies import Policy
from heistwatch.trace.store import Label
from heistwatch.trace.subgraph import MARGIN, MAX_FRONTIER
from heistwatch.trace.taint import Limits, Seed

_UNBOUNDED_LEVELS = 64  # the progress bar's length when there is no hop limit


@trace.command("spark")
@click.argument("parquet", type=click.Path(exists=True, path_type=Path))
@click.option("--tx", "txs", multiple=True, required=True, help="A theft transaction (repeat for several).")
@click.option("--policy", type=click.Choice([p.value for p in Policy]), default="fifo", show_default=True)
@click.option(
    "--max-hops",
    type=int,
    default=8,
    show_default=True,
    help="Transactions to follow; 0 for no limit (reads far more).",
)
@click.option("--min-fraction", type=float, default=0.05, show_default=True, help="Drop taint below this share.")
@click.option("--dust", type=int, default=0, help="Drop taint below this many base units.")
@LABELS_OPTION
@click.option("--master", default="local[*]", show_default=True, help="The Spark master URL.")
@click.option(
    "--max-frontier", type=int, default=MAX_FRONTIER, show_default=True, help="Most new transfers in one hop level."
)
@click.option("--json", "as_json", is_flag=True, help="Print the alerts as JSON.")
@click.pass_context
def spark_command(
    ctx: click.Context,
    parquet: Path,
    txs: tuple[str, ...],
    policy: str,
    max_hops: int,
    min_fraction: float,
    dust: int,
    label_paths: tuple[Path, ...],
    master: str,
    max_frontier: int,
    as_json: bool,
) -> None:
    """Trace the theft transactions through PARQUET (a file or folder of transfers) with Spark; print alerts."""
    try:  # pyspark is large and optional: the rest of the CLI works without it
        from heistwatch.trace.spark import parquet_files, spark_session, spark_trace_case
    except ImportError as exc:
        raise HeistwatchError(f"the Spark engine needs pyspark ({exc}): pip install 'pyspark>=4.0'") from exc
    labels: dict[str, Label] = {}
    for path in label_paths:
        for label in read_labels(path):
            labels.setdefault(label.address, label)  # the first label wins, as in the ledger store
    limits = Limits(max_hops=max_hops or None, dust=dust, min_fraction=min_fraction)
    files = parquet_files([parquet])
    session = spark_session(master)
    levels = max_hops + MARGIN + 1 if max_hops else _UNBOUNDED_LEVELS
    with click.progressbar(length=levels, label="following the reach", file=sys.stderr) as bar:
        done = spark_trace_case(
            session,
            files,
            [Seed(tx) for tx in txs],
            labels,
            Policy(policy),
            limits,
            max_frontier=max_frontier,
            progress=lambda hop: bar.update(1) if hop < levels else None,
        )
    case, stop = done.case, done.subgraph.reach.stop
    stops = ([str(stop)] if stop else []) + [
        f"limit reached at hop {h.hop}: {h.reason}" for h in case.result.limit_hits[:5]
    ]
    if as_json:
        echo_json({"alerts": [alert_dict(a) for a in case.alerts], "limits": stops})
    else:
        for alert in case.alerts:
            amounts = ", ".join(f"{p} {v}" for p, v in alert.amounts.items())
            click.echo(f"{alert.service} ({alert.category}) {alert.address} {alert.asset}: {amounts}; hop {alert.hops}")
        hits = len(case.result.limit_hits)
        click.echo(f"{len(case.alerts)} alerts" + (f"; {hits} paths stopped at a limit" if hits else ""))
        if stop:
            click.echo(str(stop))
    report = done.report
    if report.problem_count:
        first = report.problems[0]
        click.echo(
            f"{report.problem_count:,} unreadable rows left out, first {first.file}:{first.line}: {first.problem}",
            err=True,
        )
        ctx.exit(Exit.BAD_INPUT)
