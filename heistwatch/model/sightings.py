"""Sightings: where an indicator from the knowledge base was observed in the exchange's own telemetry."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sighting:
    """One indicator seen in one input: its first occurrence, how often, and the time span the records give."""

    indicator_id: str
    kind: str
    value: str
    observed: str
    file: str
    line: int
    field: str
    raw: str
    first_seen: str | None = None
    last_seen: str | None = None
    count: int = 1
