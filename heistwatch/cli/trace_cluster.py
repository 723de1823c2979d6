"""`heistwatch trace cluster`: cluster a ledger's addresses into a new, versioned clustering."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import click

from heistwatch.cli.main import echo_json
from heistwatch.cli.trace import trace
from heistwatch.trace.cluster import STEPS, ClusterParams, cluster_addresses, cluster_labels
from heistwatch.trace.store import TransferStore


@trace.command("cluster")
@click.argument("ledger", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--change-threshold",
    type=float,
    default=0.9,
    show_default=True,
    help="Probability at or above which a change link joins a cluster (below it the link is only recorded).",
)
@click.option(
    "--max-cluster", type=int, default=50_000, show_default=True, help="Size at which a cluster stops growing."
)
@click.option("--apply-labels", is_flag=True, help="Store the service labels the clusters propagate in the ledger.")
@click.option("--json", "as_json", is_flag=True, help="Print the clustering summary as JSON.")
def cluster_command(ledger: Path, change_threshold: float, max_cluster: int, apply_labels: bool, as_json: bool) -> None:
    """Cluster LEDGER's addresses (multi-input, scored change, deposit addresses) as a new version in the file."""
    params = ClusterParams(change_threshold=change_threshold, max_cluster=max_cluster)
    store = TransferStore(ledger)
    try:
        with click.progressbar(length=len(STEPS), label="clustering", file=sys.stderr) as bar:
            result = cluster_addresses(store, params, on_step=lambda _step: bar.update(1))
        labels = cluster_labels(store, result.version)
        if apply_labels:
            store.add_labels(labels)
    finally:
        store.close()
    if as_json:
        echo_json(asdict(result) | {"propagated_labels": len(labels), "labels_applied": apply_labels})
        return
    click.echo(f"clustering version {result.version} ({result.created}) in {ledger}")
    for heuristic, count in sorted(result.links.items()):
        click.echo(f"  {heuristic}: {count:,} links, {result.merged.get(heuristic, 0):,} merged")
    coinjoins = ", ".join(f"{k} {v:,}" for k, v in sorted(result.coinjoins.items())) or "none"
    click.echo(f"  CoinJoin-shaped transactions excluded: {coinjoins}")
    click.echo(
        f"  {result.clusters:,} clusters of 2+ addresses ({result.clustered:,} addresses), largest {result.largest:,}"
    )
    for s in result.superclusters:
        click.echo(f"  supercluster #{s.cluster} ({s.address}): stopped at {s.size:,}, {s.refused:,} merges refused")
    verb = "stored" if apply_labels else "available (--apply-labels stores them)"
    click.echo(f"  {len(labels):,} service labels propagated to cluster mates: {verb}")
