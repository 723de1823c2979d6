"""The knowledge base as one user may see it: a read-only store that holds back what their clearance does not cover.

Every record comes out with its *effective* marking (its own, raised to its source's level and, for a link, to
the level of what it ties), as the API's catalog computes it; a record the catalog does not hold yet is held back.
The share functions (STIX, MISP, Navigator) take a store, so handing them this view enforces TLP on every export
without each one knowing about users.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping
from typing import Protocol, TypeVar

from heistwatch.api.auth import User
from heistwatch.api.markings import report_level
from heistwatch.errors import StoreError
from heistwatch.kb.store import KnowledgeStore
from heistwatch.model import (
    TLP,
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
from heistwatch.model.indicators import normalize_indicator
from heistwatch.share.feeds import WITHHELD
from heistwatch.share.stix import identity_id


class Levels(Protocol):
    """Where effective markings come from: the API's catalog."""

    def levels_of(self, ids: Collection[str]) -> dict[str, TLP]:
        """The effective marking of each of `ids` that is known."""

    def indicator_levels(self) -> dict[str, TLP]:
        """For each source, the most restricted marking among its indicators."""


_Marked = TypeVar("_Marked", KBObject, Claim, Relationship, Indicator)


class ReaderView:
    """A `KnowledgeStore` that shows `user` only what they may read, each record with its effective marking."""

    def __init__(self, store: KnowledgeStore, levels: Levels, floors: Mapping[str, TLP], user: User) -> None:
        """View `store` through the catalog's `levels` and the sources' minimum levels `floors`."""
        self._store = store
        self._levels = levels
        self._floors = floors
        self.user = user
        self._hidden_cache: tuple[set[str], dict[str, set[str]]] | None = None

    def _visible(self, records: Iterable[_Marked]) -> list[_Marked]:
        """The records the user may read, re-marked with their effective level."""
        items = list(records)
        levels = self._levels.levels_of([r.id for r in items])
        return [
            dataclasses.replace(r, tlp=levels[r.id])
            for r in items
            if r.id in levels and self.user.may_read(levels[r.id])
        ]

    def readable(self, ids: Collection[str]) -> set[str]:
        """Those of `ids` the user may read."""
        return {i for i, tlp in self._levels.levels_of(ids).items() if self.user.may_read(tlp)}

    def import_batch(self, batch: ImportBatch) -> None:
        """Refused: a reader's view is for reading."""
        raise StoreError("a reader's view of the knowledge base cannot be written to")

    def sources(self) -> list[Source]:
        """The sources whose identity the user may read."""
        sources = self._store.sources()
        seen = self.readable([identity_id(s.key) for s in sources])
        return [s for s in sources if identity_id(s.key) in seen]

    def get(self, object_id: str) -> KBObject | None:
        """One object by id, or None (also when the user may not read it)."""
        found = self._store.get(object_id)
        shown = self._visible([found]) if found else []
        return shown[0] if shown else None

    def objects(
        self, *, type: ObjectType | None = None, source: str | None = None, ids: Collection[str] | None = None
    ) -> list[KBObject]:
        """Objects the user may read, optionally only of one type, one source or the given ids."""
        return self._visible(self._store.objects(type=type, source=source, ids=ids))

    def names(self) -> list[NameEntry]:
        """The names of the objects the user may read."""
        entries = self._store.names()
        seen = self.readable({e.object_id for e in entries})
        return [e for e in entries if e.object_id in seen]

    def lookup(self, key: str) -> list[NameEntry]:
        """Names whose key equals `key`, of objects the user may read."""
        entries = self._store.lookup(key)
        seen = self.readable({e.object_id for e in entries})
        return [e for e in entries if e.object_id in seen]

    def claims(self, *, about: Collection[str] | None = None) -> list[Claim]:
        """Claims the user may read (a claim is held at least at the level of what it ties)."""
        return self._visible(self._store.claims(about=about))

    def relationships(
        self,
        *,
        from_ids: Collection[str] | None = None,
        to_ids: Collection[str] | None = None,
        type: str | None = None,
    ) -> list[Relationship]:
        """Relationships the user may read."""
        return self._visible(self._store.relationships(from_ids=from_ids, to_ids=to_ids, type=type))

    def indicators(self, *, kind: str | None = None, value: str | None = None) -> list[Indicator]:
        """Indicators the user may read; a sentence that also names a value they may not see is withheld."""
        return [self._redacted(i) for i in self._visible(self._store.indicators(kind=kind, value=value))]

    def indicators_by_value(self, pairs: Iterable[tuple[str, str]]) -> list[Indicator]:
        """Readable indicators with these (kind, value)s, without their sentences: a cheap look-up for links."""
        found = [i for kind, value in _normalized(pairs) for i in self._store.indicators(kind=kind, value=value)]
        return [dataclasses.replace(i, description="") for i in self._visible(found)]

    def indicators_by_id(self, ids: Collection[str]) -> list[Indicator]:
        """Readable indicators with these ids, without their sentences (the store has no look-up by id: a scan)."""
        if not ids:
            return []
        found = [i for i in self._store.indicators() if i.id in ids]
        return [dataclasses.replace(i, description="") for i in self._visible(found)]

    def _redacted(self, indicator: Indicator) -> Indicator:
        sentences, values = self._hidden()
        text = indicator.description.casefold()
        if indicator.description in sentences or any(v in text for v in values.get(indicator.source, ())):
            return dataclasses.replace(indicator, description=WITHHELD)
        return indicator

    def _hidden(self) -> tuple[set[str], dict[str, set[str]]]:
        """The sentences and values (per source) of the indicators the user may not read, found once per view."""
        if self._hidden_cache is None:
            every = self._store.indicators()
            seen = self.readable([i.id for i in every])
            hidden = [i for i in every if i.id not in seen]
            values: defaultdict[str, set[str]] = defaultdict(set)
            for i in hidden:
                values[i.source].add(i.value.casefold())
            self._hidden_cache = ({i.description for i in hidden if i.description}, dict(values))
        return self._hidden_cache

    def import_report(self, batch: ReportBatch) -> Report:
        """Refused: a reader's view is for reading."""
        raise StoreError("a reader's view of the knowledge base cannot be written to")

    def report_levels(self, reports: Iterable[Report] | None = None) -> dict[str, TLP]:
        """Each report's marking (of `reports`, default all), as the API marks it (`markings.report_level`)."""
        held = self._levels.indicator_levels()
        chosen = self._store.reports() if reports is None else reports
        return {r.id: report_level(r, self._floors, held) for r in chosen}

    def reports(self) -> list[Report]:
        """The ingested reports the user may read: a report that names a value they may not see is held back whole."""
        stored = self._store.reports()
        marks = self.report_levels(stored)
        return [r for r in stored if self.user.may_read(marks[r.id])]

    def findings(self, report_id: str) -> list[Finding]:
        """A readable report's findings in text order; none for a report the user may not read."""
        if report_id not in {r.id for r in self.reports()}:
            return []
        return self._store.findings(report_id)

    def record_sightings(self, sightings: Iterable[Sighting], recorded: str) -> int:
        """Refused: a reader's view is for reading."""
        raise StoreError("a reader's view of the knowledge base cannot be written to")

    def sightings(self, *, kind: str | None = None, value: str | None = None) -> list[Sighting]:
        """Sightings of indicators the user may read."""
        found = self._store.sightings(kind=kind, value=value)
        seen = self.readable({s.indicator_id for s in found})
        return [s for s in found if s.indicator_id in seen]

    def stats(self) -> list[SourceStats]:
        """Counts of the records the user may read, per readable source."""
        objects: defaultdict[str, Counter[str]] = defaultdict(Counter)
        for o in self.objects():
            objects[o.source][o.type.value] += 1
        claims = Counter(c.source for c in self.claims())
        links = Counter(r.source for r in self.relationships())
        indicators = Counter(i.source for i in self.indicators())
        return [
            SourceStats(s, dict(objects[s.key]), claims[s.key], links[s.key], indicators[s.key]) for s in self.sources()
        ]

    def close(self) -> None:
        """Nothing to release: the underlying store belongs to the caller."""


def _normalized(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (kind, value)s as the store keeps them, once each; values of kinds the store does not keep are dropped."""
    out: dict[tuple[str, str], None] = {}
    for kind, value in pairs:
        try:
            out[(kind, normalize_indicator(kind, value))] = None
        except ValueError:
            continue
    return list(out)


def user_ceiling(user: User) -> TLP:
    """The most restricted label the user may read: the TLP ceiling their exports are cut at."""
    return max((t for t in TLP if user.may_read(t)), key=list(TLP).index, default=TLP.CLEAR)
