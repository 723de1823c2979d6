"""The knowledge-base store interface: every backend (SQLite now, PostgreSQL for a team) implements it."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Protocol

from heistwatch.model import (
    Claim,
    Finding,
    ImportBatch,
    Indicator,
    KBObject,
    NameEntry,
    ObjectType,
    Relationship,
    Report,
    ReportBatch,
    Sighting,
    Source,
    SourceStats,
)


class KnowledgeStore(Protocol):
    """A narrow read/write contract; `tests/kb/test_store_contract.py` holds every backend to it."""

    def import_batch(self, batch: ImportBatch) -> None:
        """Write a batch in one transaction: all of it, or (on any error) none of it."""

    def sources(self) -> list[Source]:
        """Every source that contributed something."""

    def get(self, object_id: str) -> KBObject | None:
        """One object by id, or None."""

    def objects(
        self, *, type: ObjectType | None = None, source: str | None = None, ids: Collection[str] | None = None
    ) -> list[KBObject]:
        """Objects, optionally only of one type, one source or the given ids."""

    def names(self) -> list[NameEntry]:
        """The whole name dictionary: every name of every object."""

    def lookup(self, key: str) -> list[NameEntry]:
        """Names whose key (see `name_key`) equals `key`."""

    def claims(self, *, about: Collection[str] | None = None) -> list[Claim]:
        """Claims, optionally only those whose subject or object is one of `about`."""

    def relationships(
        self,
        *,
        from_ids: Collection[str] | None = None,
        to_ids: Collection[str] | None = None,
        type: str | None = None,
    ) -> list[Relationship]:
        """Relationships, optionally only from or to the given ids, of one type."""

    def indicators(self, *, kind: str | None = None, value: str | None = None) -> list[Indicator]:
        """Indicators, optionally of one kind and normalized value."""

    def import_report(self, batch: ReportBatch) -> Report:
        """Write an ingested report in one transaction, replacing its earlier findings; returns the stored report.

        A report ingested again keeps its first ingestion time, so the same document always gives the same records.
        """

    def reports(self) -> list[Report]:
        """Every ingested report."""

    def findings(self, report_id: str) -> list[Finding]:
        """A report's findings in text order."""

    def record_sightings(self, sightings: Iterable[Sighting], recorded: str) -> int:
        """Store hunt sightings in one transaction (one seen again is updated, not repeated); returns the new count."""

    def sightings(self, *, kind: str | None = None, value: str | None = None) -> list[Sighting]:
        """Recorded sightings, optionally of one indicator kind and normalized value."""

    def stats(self) -> list[SourceStats]:
        """Counts of records per source."""

    def close(self) -> None:
        """Release the store's resources."""
