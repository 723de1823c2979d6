"""STIX 2.1 at the boundary: export the knowledge base as a bundle, import bundles back.

Sources become `identity` objects and every record is `created_by_ref` its source; alias claims become
relationships created by the publisher that made them, with the ICD 203 likelihood as STIX confidence
(DNI scale) and the exact wording in `x_heistwatch_claim`. Export writes plain dicts (the `stix2` classes
are slow in bulk); import checks every object with `stix2.parse`. Own exports round-trip losslessly.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import stix2
import stix2.exceptions

from heistwatch.errors import StixImportError, StoreError
from heistwatch.kb.seed.claims import publisher_key
from heistwatch.kb.store import KnowledgeStore
from heistwatch.model import (
    TLP,
    Claim,
    ImportBatch,
    Indicator,
    KBObject,
    Likelihood,
    ObjectType,
    Relation,
    Relationship,
    Source,
    derive_id,
)
from heistwatch.model.indicators import KINDS, pattern_type

_TLP2_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
_OBJECT_TYPES = {t.value: t for t in ObjectType}
_CLAIM_RELATIONS = {r.value: r for r in Relation}
_PATTERN = re.compile(r"^\[([a-z0-9-]+:[^=]+?) = '((?:[^'\\]|\\.)*)'\]$")


def _timestamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def identity_id(source_key: str) -> str:
    """The id of the identity object that stands for a source."""
    return derive_id("identity", source_key)


def export_bundle(
    store: KnowledgeStore, *, ids: Iterable[str] | None = None, now: datetime.datetime | None = None
) -> dict[str, Any]:
    """The knowledge base (or the objects `ids` and the claims and relationships among them) as a bundle."""
    stamp = _timestamp(now or datetime.datetime.now(datetime.UTC))
    wanted = None if ids is None else set(ids)
    objects = store.objects(ids=wanted)
    kept = {o.id for o in objects}
    claims = [
        c
        for c in store.claims(about=kept if wanted is not None else None)
        if c.subject_id in kept and c.object_id in kept
    ]
    indicators = store.indicators() if wanted is None else [i for i in store.indicators() if i.id in wanted]
    kept |= {i.id for i in indicators}
    relationships = [
        r
        for r in store.relationships(from_ids=kept if wanted is not None else None)
        if r.source_ref in kept and r.target_ref in kept
    ]
    records: list[KBObject | Claim | Relationship | Indicator] = [
        *objects,
        *claims,
        *relationships,
        *indicators,
    ]
    used_sources = {r.source for r in records}
    tlps = {r.tlp for r in records}
    out: list[dict[str, Any]] = [_marking(t) for t in sorted(tlps, key=list(TLP).index)]
    out += [_identity(s, stamp) for s in store.sources() if s.key in used_sources]
    out += [_sdo(o, stamp) for o in objects]
    out += [_claim_sro(c, stamp) for c in claims]
    out += [_relationship_sro(r, stamp) for r in relationships]
    out += [_indicator_sdo(i, stamp) for i in indicators]
    return {"type": "bundle", "id": derive_id("bundle", stamp, *sorted(kept)), "objects": out}


def _common(stix_type: str, oid: str, source: str, stamp: str, tlp: TLP, confidence: int | None) -> dict[str, Any]:
    sdo: dict[str, Any] = {
        "type": stix_type,
        "spec_version": "2.1",
        "id": oid,
        "created": stamp,
        "modified": stamp,
        "created_by_ref": identity_id(source),
        "object_marking_refs": [tlp.stix_marking_id],
    }
    if confidence is not None:
        sdo["confidence"] = confidence
    return sdo


def _marking(tlp: TLP) -> dict[str, Any]:
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": tlp.stix_marking_id,
        "created": "2022-10-01T00:00:00.000Z",
        "name": tlp.label,
        "extensions": {_TLP2_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": tlp.value}},
    }


def _identity(source: Source, stamp: str) -> dict[str, Any]:
    return {
        "type": "identity",
        "spec_version": "2.1",
        "id": identity_id(source.key),
        "created": stamp,
        "modified": stamp,
        "name": source.name,
        "identity_class": "organization",
        "x_heistwatch_source": {k: v for k, v in vars(source).items() if v is not None},
    }


def _sdo(obj: KBObject, stamp: str) -> dict[str, Any]:
    sdo = _common(obj.type.value, obj.id, obj.source, stamp, obj.tlp, obj.confidence)
    sdo["name"] = obj.name
    if obj.description:
        sdo["description"] = obj.description
    if obj.aliases:
        sdo["aliases"] = list(obj.aliases)
    if obj.type is ObjectType.MALWARE:
        sdo["is_family"] = True
    if obj.type is ObjectType.LOCATION:
        sdo["country"] = obj.attrs.get("country", obj.name)
    reference = {k: v for k, v in (("external_id", obj.external_id), ("url", obj.reference)) if v}
    if reference:
        sdo["external_references"] = [{"source_name": obj.source, **reference}]
    if obj.attrs:
        sdo["x_heistwatch_attrs"] = dict(obj.attrs)
    return sdo


def _claim_sro(claim: Claim, stamp: str) -> dict[str, Any]:
    sro = _common("relationship", claim.id, claim.source, stamp, claim.tlp, claim.confidence)
    sro.update(relationship_type=claim.relation.value, source_ref=claim.subject_id, target_ref=claim.object_id)
    if claim.note:
        sro["description"] = claim.note
    if claim.reference:
        sro["external_references"] = [
            {
                "source_name": claim.source,
                "url": claim.reference,
                **({"description": claim.title} if claim.title else {}),
            }
        ]
    sro["x_heistwatch_claim"] = {
        k: v
        for k, v in (
            ("likelihood", claim.likelihood.value if claim.likelihood else None),
            ("said", claim.said),
            ("date", claim.date),
            ("title", claim.title),
        )
        if v is not None
    }
    return sro


def _relationship_sro(rel: Relationship, stamp: str) -> dict[str, Any]:
    sro = _common("relationship", rel.id, rel.source, stamp, rel.tlp, rel.confidence)
    sro.update(relationship_type=rel.type, source_ref=rel.source_ref, target_ref=rel.target_ref)
    if rel.description:
        sro["description"] = rel.description
    if rel.reference:
        sro["external_references"] = [{"source_name": rel.source, "url": rel.reference}]
    return sro


def _indicator_sdo(ind: Indicator, stamp: str) -> dict[str, Any]:
    sdo = _common("indicator", ind.id, ind.source, stamp, ind.tlp, ind.confidence)
    sdo.update(
        name=ind.value,
        pattern=ind.pattern,
        pattern_type=pattern_type(ind.kind),
        valid_from=ind.first_seen or stamp,
        indicator_types=["malicious-activity"],
    )
    if ind.description:
        sdo["description"] = ind.description
    if ind.reference:
        sdo["external_references"] = [{"source_name": ind.source, "url": ind.reference}]
    sdo["x_heistwatch_indicator"] = {
        k: v
        for k, v in (
            ("kind", ind.kind),
            ("value", ind.value),
            ("first_seen", ind.first_seen),
            ("last_seen", ind.last_seen),
        )
        if v is not None
    }
    return sdo


# -- import -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportReport:
    """What an import stored and what it passed over (object types heistwatch does not keep)."""

    path: str
    stored: int
    skipped: dict[str, int]


def read_bundle(path: Path) -> tuple[ImportBatch, dict[str, int]]:
    """Parse and check a bundle file (batch, skipped types); a bad object raises StixImportError naming it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StixImportError(str(path), None, f"not a readable JSON file: {exc}") from exc
    return bundle_to_batch(data, str(path))


def bundle_to_batch(data: Any, where: str) -> tuple[ImportBatch, dict[str, int]]:
    """Turn a parsed bundle into one import batch, and count the objects of types it does not keep."""
    if not isinstance(data, dict) or data.get("type") != "bundle" or not isinstance(data.get("objects"), list):
        raise StixImportError(where, None, "not a STIX bundle (need type 'bundle' and an 'objects' list)")
    raw = data["objects"]
    for item in raw:
        oid = item.get("id") if isinstance(item, dict) else None
        try:
            stix2.parse(item, allow_custom=True, version="2.1")
        except (stix2.exceptions.STIXError, ValueError, TypeError, AttributeError) as exc:
            raise StixImportError(where, oid, f"invalid STIX object: {exc}") from exc
    fallback = Source(key=f"stix:{Path(where).name}", name=f"STIX bundle {Path(where).name}")
    sources = {o["id"]: _source(o) for o in raw if o["type"] == "identity"}
    batch: dict[str, list[Any]] = {"objects": [], "claims": [], "relationships": [], "indicators": []}
    skipped: dict[str, int] = {}
    for item in raw:
        source = sources.get(item.get("created_by_ref", ""), fallback).key
        try:
            kind, record = _record(item, source)
        except (KeyError, ValueError) as exc:
            raise StixImportError(where, item["id"], f"cannot read as a heistwatch record: {exc}") from exc
        if kind is None:
            skipped[item["type"]] = skipped.get(item["type"], 0) + 1
        else:
            batch[kind].append(record)
    used = {r.source for records in batch.values() for r in records}
    all_sources = [*sources.values(), fallback]
    return ImportBatch(
        sources=tuple(s for s in all_sources if s.key in used),
        objects=tuple(batch["objects"]),
        claims=tuple(batch["claims"]),
        relationships=tuple(batch["relationships"]),
        indicators=tuple(batch["indicators"]),
    ), skipped


def import_bundle(store: KnowledgeStore, path: Path) -> ImportReport:
    """Import a bundle file in one transaction: all of it or, on any problem, nothing."""
    batch, skipped = read_bundle(path)
    try:
        store.import_batch(batch)
    except StoreError as exc:
        raise StixImportError(str(path), None, str(exc)) from exc
    return ImportReport(path=str(path), stored=len(batch), skipped=skipped)


def _source(identity: dict[str, Any]) -> Source:
    given = identity.get("x_heistwatch_source")
    if isinstance(given, dict) and given.get("key"):
        return Source(
            key=str(given["key"]),
            name=str(given.get("name") or given["key"]),
            version=given.get("version"),
            date=given.get("date"),
            url=given.get("url"),
            package=given.get("package"),
        )
    return Source(key=publisher_key(identity["name"]) or identity["id"], name=identity["name"])


def _tlp(item: dict[str, Any]) -> TLP:
    for ref in item.get("object_marking_refs", ()):
        found = TLP.from_stix_marking_id(ref)
        if found:
            return found
    return TLP.CLEAR


def _first_reference(item: dict[str, Any]) -> dict[str, Any]:
    refs = item.get("external_references") or [{}]
    return dict(refs[0])


def _record(item: dict[str, Any], source: str) -> tuple[str | None, Any]:
    stix_type = item["type"]
    ref = _first_reference(item)
    if stix_type in _OBJECT_TYPES:
        return "objects", KBObject(
            id=item["id"],
            type=_OBJECT_TYPES[stix_type],
            name=item.get("name") or item.get("country", ""),
            source=source,
            aliases=tuple(item.get("aliases", ())),
            description=item.get("description", ""),
            external_id=ref.get("external_id"),
            reference=ref.get("url"),
            confidence=item.get("confidence"),
            tlp=_tlp(item),
            attrs=item.get("x_heistwatch_attrs", {}),
        )
    if stix_type == "relationship":
        claim = item.get("x_heistwatch_claim")
        if claim is not None or (
            item["relationship_type"] in _CLAIM_RELATIONS and item["relationship_type"] != "related-to"
        ):
            claim = claim or {}
            return "claims", Claim(
                id=item["id"],
                subject_id=item["source_ref"],
                relation=_CLAIM_RELATIONS[item["relationship_type"]],
                object_id=item["target_ref"],
                source=source,
                likelihood=Likelihood(claim["likelihood"]) if claim.get("likelihood") else None,
                said=claim.get("said"),
                date=claim.get("date"),
                reference=ref.get("url"),
                title=claim.get("title"),
                note=item.get("description"),
                tlp=_tlp(item),
            )
        return "relationships", Relationship(
            id=item["id"],
            type=item["relationship_type"],
            source_ref=item["source_ref"],
            target_ref=item["target_ref"],
            source=source,
            reference=ref.get("url"),
            confidence=item.get("confidence"),
            description=item.get("description", ""),
            tlp=_tlp(item),
        )
    if stix_type == "indicator":
        given = item.get("x_heistwatch_indicator") or _pattern_value(item["pattern"])
        if given is None:
            return None, None
        return "indicators", Indicator(
            id=item["id"],
            kind=given["kind"],
            value=given["value"],
            source=source,
            pattern=item["pattern"],
            first_seen=given.get("first_seen"),
            last_seen=given.get("last_seen"),
            confidence=item.get("confidence"),
            reference=ref.get("url"),
            description=item.get("description", ""),
            tlp=_tlp(item),
        )
    return None, None


def _pattern_value(pattern: str) -> dict[str, str] | None:
    """Kind and value of a one-comparison pattern heistwatch can match exactly, else None."""
    match = _PATTERN.match(pattern.strip())
    if not match:
        return None
    path, value = match.group(1), re.sub(r"\\(.)", r"\1", match.group(2))
    kinds = [k for k, (_, p) in KINDS.items() if p == path]
    return {"kind": kinds[0], "value": value} if len(kinds) == 1 else None
