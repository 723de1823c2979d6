"""Hunt sightings as a STIX 2.1 bundle: each one a `sighting` of its knowledge-base indicator, with where it was seen.

The bundle holds the sighted indicators too, so a consumer needs nothing else; the exchange is the identity the
sightings were made at. The log line or file path goes in `x_heistwatch_seen` (STIX has no place for it).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from heistwatch.kb.store import KnowledgeStore
from heistwatch.model import TLP, Indicator, Sighting, derive_id
from heistwatch.share.stix import _identity, _indicator_sdo, _marking, _timestamp


def sightings_bundle(
    store: KnowledgeStore, sightings: Sequence[Sighting], organisation: str, tlp: TLP = TLP.AMBER
) -> dict[str, Any]:
    """A bundle of the sightings, their indicators and sources, the sighting organisation and the markings used."""
    stamp = _timestamp(datetime.datetime.now(datetime.UTC))
    seer = _organisation(organisation, stamp)
    indicators = sighted_indicators(store, sightings)
    sources = {i.source for i in indicators}
    objects: list[dict[str, Any]] = [seer, *(_identity(s, stamp) for s in store.sources() if s.key in sources)]
    objects += [_marking(level) for level in sorted({tlp, *(i.tlp for i in indicators)}, key=lambda t: t.value)]
    objects += [_indicator_sdo(i, stamp) for i in indicators]
    known = {i.id for i in indicators}
    objects += [_sighting_sro(s, seer["id"], stamp, tlp) for s in sightings if s.indicator_id in known]
    return {
        "type": "bundle",
        "id": derive_id("bundle", "sightings", *sorted(s.id for s in sightings)),
        "objects": objects,
    }


def sighted_indicators(store: KnowledgeStore, sightings: Sequence[Sighting]) -> list[Indicator]:
    """The stored indicators the sightings are of: looked up by kind and value, a scan only for any not found so."""
    wanted = {s.indicator_id for s in sightings}
    found = {
        i.id: i
        for kind, value in dict.fromkeys((s.kind, s.value) for s in sightings)
        for i in store.indicators(kind=kind, value=value)
        if i.id in wanted
    }
    if wanted - found.keys():  # a sighting that spells its value otherwise than the store
        found.update((i.id, i) for i in store.indicators() if i.id in wanted)
    return sorted(found.values(), key=lambda i: i.id)


def _organisation(name: str, stamp: str) -> dict[str, Any]:
    return {
        "type": "identity",
        "spec_version": "2.1",
        "id": derive_id("identity", "sighting organisation", name),
        "created": stamp,
        "modified": stamp,
        "name": name,
        "identity_class": "organization",
        "sectors": ["financial-services"],
    }


def _sighting_sro(sighting: Sighting, seer: str, stamp: str, tlp: TLP) -> dict[str, Any]:
    sro: dict[str, Any] = {
        "type": "sighting",
        "spec_version": "2.1",
        "id": sighting.id,
        "created": stamp,
        "modified": stamp,
        "created_by_ref": seer,
        "sighting_of_ref": sighting.indicator_id,
        "where_sighted_refs": [seer],
        "count": sighting.count,
        "object_marking_refs": [tlp.stix_marking_id],
        "x_heistwatch_seen": {
            "hunt": sighting.hunt,
            "file": sighting.file,
            "line": sighting.line,
            "field": sighting.field,
            "observed": sighting.observed,
            "raw": sighting.raw,
        },
    }
    first, last = _moment(sighting.first_seen), _moment(sighting.last_seen)
    if first and last and first <= last:
        sro.update(first_seen=first, last_seen=last)
    return sro


def _moment(value: str | None) -> str | None:
    """A log's time as a STIX timestamp, or None when it is not an ISO 8601 time."""
    if not value:
        return None
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return _timestamp(moment.astimezone(datetime.UTC))
