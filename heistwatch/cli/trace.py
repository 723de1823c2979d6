"""`heistwatch trace simulate|run`: a ledger with a known theft, and tracing stolen funds to services."""

from __future__ import annotations

from pathlib import Path

import click

from heistwatch.cli.main import cli, echo_json
from heistwatch.errors import InputError
from heistwatch.trace import (
    Limits,
    Policy,
    Seed,
    TransferStore,
    freeze_request_csv,
    freeze_request_json,
    simulate,
    trace_case,
)
from heistwatch.trace.alerts import alert_dict

LABELS_OPTION = click.option(
    "--labels",
    "label_paths",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="A TagPack CSV, an OFAC list or a folder of OFAC lists (repeat for several).",
)
"""The service-label files a trace command reads (`heistwatch.trace.labels.read_labels`)."""


@cli.group()
def trace() -> None:
    """Follow stolen funds through a ledger to the services that can freeze them."""


@trace.command("simulate")
@click.argument("ledger", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--size", type=click.Choice(["small", "full"]), default="small", show_default=True)
@click.option("--seed", default=0, show_default=True, help="Random seed: the same seed gives the same ledger.")
@click.option("--json", "as_json", is_flag=True, help="Print the theft's seed transactions as JSON.")
def simulate_command(ledger: Path, size: str, seed: int, as_json: bool) -> None:
    """Write a simulated ledger (a theft laundered inside honest traffic) to LEDGER, a DuckDB file."""
    if ledger.exists():
        raise InputError(str(ledger), "already exists; choose a new file for the simulated ledger")
    world = simulate(size, seed=seed)
    store = TransferStore(ledger)
    try:
        store.ingest(world.transfers)
        store.add_labels(world.labels)
        store.build_indexes()
    finally:
        store.close()
    seeds = [{"tx": s.tx, "dst": s.dst} for s in world.seeds]
    if as_json:
        echo_json({"ledger": str(ledger), "transfers": len(world.transfers), "seeds": seeds})
        return
    click.echo(f"{ledger}: {len(world.transfers):,} transfers, {len(world.labels):,} labelled service addresses")
    click.echo("theft transactions (trace them with `heistwatch trace run LEDGER --tx TX ...`):")
    for s in world.seeds:
        click.echo(f"  {s.tx}" + (f" -> {s.dst}" if s.dst else ""))


@trace.command("run")
@click.argument("ledger", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tx", "txs", multiple=True, required=True, help="A theft transaction (repeat for several).")
@click.option("--policy", type=click.Choice([p.value for p in Policy]), default="fifo", show_default=True)
@click.option("--max-hops", type=int, default=0, show_default=True, help="Transactions to follow; 0 for no limit.")
@click.option("--min-fraction", type=float, default=0.05, show_default=True, help="Drop taint below this share.")
@click.option("--dust", type=int, default=0, help="Drop taint below this many base units.")
@click.option("--freeze", "freeze_dir", type=click.Path(file_okay=False, path_type=Path), help="Write freeze requests.")
@click.option("--json", "as_json", is_flag=True, help="Print the alerts as JSON.")
def run_command(
    ledger: Path,
    txs: tuple[str, ...],
    policy: str,
    max_hops: int,
    min_fraction: float,
    dust: int,
    freeze_dir: Path | None,
    as_json: bool,
) -> None:
    """Trace the theft transactions through LEDGER and print an alert per service reached."""
    store = TransferStore(ledger)
    try:
        limits = Limits(max_hops=max_hops or None, dust=dust, min_fraction=min_fraction)
        case = trace_case(store, [Seed(tx) for tx in txs], Policy(policy), limits)
    finally:
        store.close()
    if freeze_dir is not None:
        freeze_dir.mkdir(parents=True, exist_ok=True)
        (freeze_dir / "freeze-requests.json").write_text(freeze_request_json(case.alerts, str(ledger)) + "\n")
        (freeze_dir / "freeze-requests.csv").write_text(freeze_request_csv(case.alerts))
    stops = [f"limit reached at hop {h.hop}: {h.reason}" for h in case.result.limit_hits[:5]]
    if as_json:
        echo_json({"alerts": [alert_dict(a) for a in case.alerts], "limits": stops})
        return
    for alert in case.alerts:
        amounts = ", ".join(f"{p} {v}" for p, v in alert.amounts.items())
        click.echo(f"{alert.service} ({alert.category}) {alert.address} {alert.asset}: {amounts}; hop {alert.hops}")
    click.echo(
        f"{len(case.alerts)} alerts" + (f"; {len(case.result.limit_hits)} paths stopped at a limit" if stops else "")
    )
