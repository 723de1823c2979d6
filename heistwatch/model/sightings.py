"""Sightings: where an indicator from the knowledge base was observed in the exchange's own telemetry."""

from __future__ import annotations

from dataclasses import dataclass

from heistwatch.model.objects import derive_id


@dataclass(frozen=True)
class Sighting:
    """One indicator seen in one input by one hunt: where first, how often, and the time span the records give."""

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
    hunt: str = "logs"

    @property
    def id(self) -> str:
        """A deterministic STIX sighting id: the same indicator at the same place is one sighting."""
        return derive_id("sighting", self.indicator_id, self.file, str(self.line), self.field)
