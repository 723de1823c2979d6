"""Knowledge-base records as table rows and back: one shape that every store backend writes and reads.

Each `*_row` gives the columns in the order its `*_from_row` reads them (and the SQL of each backend names).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from heistwatch.model import (
    TLP,
    Claim,
    Finding,
    Indicator,
    KBObject,
    Likelihood,
    ObjectType,
    Relation,
    Relationship,
    name_key,
)

OBJECT_COLUMNS = "id type name source aliases description external_id reference confidence tlp attrs"
CLAIM_COLUMNS = "id subject_id relation object_id source likelihood said date reference title note tlp"
RELATIONSHIP_COLUMNS = "id type source_ref target_ref source reference confidence description tlp"
INDICATOR_COLUMNS = "id kind value source pattern first_seen last_seen confidence reference description tlp"


def object_row(o: KBObject) -> tuple[Any, ...]:
    """An object as a row in its table's column order."""
    return (
        o.id,
        o.type._value_,
        o.name,
        o.source,
        json.dumps(list(o.aliases)),
        o.description,
        o.external_id,
        o.reference,
        o.confidence,
        o.tlp._value_,
        json.dumps(dict(o.attrs), sort_keys=True) if o.attrs else "{}",
    )


def claim_row(c: Claim) -> tuple[Any, ...]:
    """A claim as a row in its table's column order."""
    likelihood = c.likelihood._value_ if c.likelihood else None
    return (
        c.id,
        c.subject_id,
        c.relation._value_,
        c.object_id,
        c.source,
        likelihood,
        c.said,
        c.date,
        c.reference,
        c.title,
        c.note,
        c.tlp._value_,
    )


def relationship_row(r: Relationship) -> tuple[Any, ...]:
    """A relationship as a row in its table's column order."""
    return (r.id, r.type, r.source_ref, r.target_ref, r.source, r.reference, r.confidence, r.description, r.tlp._value_)


def indicator_row(i: Indicator) -> tuple[Any, ...]:
    """An indicator as a row in its table's column order."""
    return (
        i.id,
        i.kind,
        i.value,
        i.source,
        i.pattern,
        i.first_seen,
        i.last_seen,
        i.confidence,
        i.reference,
        i.description,
        i.tlp._value_,
    )


def name_rows(objects: Iterable[KBObject]) -> list[tuple[str, str, str, int]]:
    """(key, name, object id, is primary) of every name of every object."""
    rows = []
    for obj in objects:
        for i, name in enumerate((obj.name, *obj.aliases)):
            key = name_key(name)
            if key:
                rows.append((key, name, obj.id, int(i == 0)))
    return rows


def object_from_row(row: Sequence[Any]) -> KBObject:
    (oid, otype, name, source, aliases, description, external_id, reference, confidence, tlp, attrs) = row
    return KBObject(
        id=oid,
        type=ObjectType(otype),
        name=name,
        source=source,
        aliases=tuple(json.loads(aliases)),
        description=description,
        external_id=external_id,
        reference=reference,
        confidence=confidence,
        tlp=TLP(tlp),
        attrs=json.loads(attrs),
    )


def finding_from_row(row: Sequence[Any]) -> Finding:
    (fid, report_id, kind, value, role, reason, start, end, sentence_start, sentence_end, object_ids, score) = row
    return Finding(
        fid,
        report_id,
        kind,
        value,
        role,
        reason,
        start,
        end,
        sentence_start,
        sentence_end,
        tuple(json.loads(object_ids)),
        score,
    )


def claim_from_row(row: Sequence[Any]) -> Claim:
    (cid, subject_id, relation, object_id, source, likelihood, said, date, reference, title, note, tlp) = row
    return Claim(
        id=cid,
        subject_id=subject_id,
        relation=Relation(relation),
        object_id=object_id,
        source=source,
        likelihood=Likelihood(likelihood) if likelihood else None,
        said=said,
        date=date,
        reference=reference,
        title=title,
        note=note,
        tlp=TLP(tlp),
    )


def relationship_from_row(row: Sequence[Any]) -> Relationship:
    (rid, rtype, source_ref, target_ref, source, reference, confidence, description, tlp) = row
    return Relationship(
        id=rid,
        type=rtype,
        source_ref=source_ref,
        target_ref=target_ref,
        source=source,
        reference=reference,
        confidence=confidence,
        description=description,
        tlp=TLP(tlp),
    )


def indicator_from_row(row: Sequence[Any]) -> Indicator:
    (iid, kind, value, source, pattern, first_seen, last_seen, confidence, reference, description, tlp) = row
    return Indicator(
        id=iid,
        kind=kind,
        value=value,
        source=source,
        pattern=pattern,
        first_seen=first_seen,
        last_seen=last_seen,
        confidence=confidence,
        reference=reference,
        description=description,
        tlp=TLP(tlp),
    )
