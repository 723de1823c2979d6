"""Alerts an exchange can act on: tainted value per service address, per policy, with path and freeze export.

An alert reached only across bridges carries the confidence of the bridge links on its route (1.0 without one).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from heistwatch.trace.ledger import Transfer
from heistwatch.trace.taint import Arrival, TraceResult

_CSV_FIELDS = [
    "service",
    "category",
    "address",
    "chain",
    "asset",
    "amount",
    "first_arrival",
    "first_tx",
    "hops",
    "confidence",
]


@dataclass(frozen=True)
class Alert:
    """Tainted value that reached one labelled service address in one asset."""

    service: str
    category: str
    address: str
    chain: str
    asset: str
    amounts: dict[str, int]
    first_arrival: int
    first_tx: str
    hops: int
    path: tuple[Transfer, ...]
    confidence: float = 1.0

    @property
    def amount(self) -> int:
        """The amount under the primary (first) policy."""
        return next(iter(self.amounts.values()))


def build_alerts(results: Sequence[TraceResult]) -> list[Alert]:
    """One alert per service address and asset reached under the first result's policy, largest first."""
    primary, groups = results[0], _by_address(results[0].arrivals)
    totals = [(str(r.policy), _totals(r)) for r in results]
    alerts = []
    for key, arrivals in groups.items():
        amounts = {policy: total.get(key, 0) for policy, total in totals}
        first = min(arrivals, key=lambda a: a.position)
        top = max(arrivals, key=lambda a: a.amount)
        path = tuple(primary.path(top.position))
        label = first.label
        alerts.append(
            Alert(
                label.service,
                label.category,
                key[0],
                key[1][0],
                key[1][1],
                amounts,
                first.ts,
                primary.graph.transfer(first.position).tx,
                top.hop,
                path,
            )
        )
    return sorted(alerts, key=lambda a: (-a.amount, a.address))


def merge_alerts(alerts: Sequence[Alert]) -> list[Alert]:
    """One alert per service address and asset from alerts of several routes (direct, across bridges), largest first.

    Amounts add up per policy; the first arrival is the earliest; the path, hops and confidence are the most
    confident route's (the largest amount among equals): how sure it is that stolen value reached the service.
    """
    groups: dict[tuple[str, str, str], list[Alert]] = {}
    for a in alerts:
        groups.setdefault((a.address, a.chain, a.asset), []).append(a)
    merged = []
    for parts in groups.values():
        best = max(parts, key=lambda a: (a.confidence, a.amount))
        first = min(parts, key=lambda a: a.first_arrival)
        amounts = {p: sum(a.amounts.get(p, 0) for a in parts) for p in parts[0].amounts}
        merged.append(replace(best, amounts=amounts, first_arrival=first.first_arrival, first_tx=first.first_tx))
    return sorted(merged, key=lambda a: (-a.amount, a.address))


def _by_address(arrivals: list[Arrival]) -> dict[tuple[str, tuple[str, str]], list[Arrival]]:
    groups: dict[tuple[str, tuple[str, str]], list[Arrival]] = {}
    for arrival in arrivals:
        groups.setdefault((arrival.address, arrival.asset), []).append(arrival)
    return groups


def _totals(result: TraceResult) -> dict[tuple[str, tuple[str, str]], int]:
    totals: dict[tuple[str, tuple[str, str]], int] = {}
    for a in result.arrivals:
        totals[(a.address, a.asset)] = totals.get((a.address, a.asset), 0) + a.amount
    return totals


def freeze_request_json(alerts: Sequence[Alert], case: str) -> str:
    """A freeze request for the services reached: amounts as decimal strings of base units."""
    return json.dumps({"case": case, "alerts": [alert_dict(a) for a in alerts]}, indent=2)


def alert_dict(a: Alert) -> dict[str, Any]:
    """One alert as JSON-ready data: amounts per policy and the path as decimal strings of base units."""
    return {
        **_row(a),
        "amounts": {p: str(v) for p, v in a.amounts.items()},
        "path": [{"tx": t.tx, "ts": t.ts, "from": t.src, "to": t.dst, "amount": str(t.amount)} for t in a.path],
    }


def freeze_request_csv(alerts: Sequence[Alert]) -> str:
    """The freeze request as CSV, one row per service address and asset (primary-policy amount)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(_row(a) for a in alerts)
    return out.getvalue()


def _row(a: Alert) -> dict[str, str | int | float]:
    return {
        "service": a.service,
        "category": a.category,
        "address": a.address,
        "chain": a.chain,
        "asset": a.asset,
        "amount": str(a.amount),
        "first_arrival": a.first_arrival,
        "first_tx": a.first_tx,
        "hops": a.hops,
        "confidence": round(a.confidence, 4),
    }
