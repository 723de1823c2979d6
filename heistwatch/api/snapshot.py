"""The knowledge base's STIX export as the catalog syncs it: staged in SQL, exported only where something changed.

A sync reads the knowledge base attached to the catalog's connection (as `kb`), inside the catalog's write
transaction, so it sees one snapshot. Staging copies each record's id, type, own level and a digest of its row
into `temp.fresh` with INSERT ... SELECT (no Python object per record); only the rows the catalog lacks or holds
at another digest or level are then turned into STIX, by the same functions as
`heistwatch.share.stix.export_bundle`, a chunk at a time. So a sync that finds nothing new costs a pass of SQL
over the knowledge base, and memory never holds more than one chunk of objects.
"""

from __future__ import annotations

import functools
import hashlib
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from typing import Any

import orjson

from heistwatch.api.markings import level
from heistwatch.kb.rows import (
    INDICATOR_COLUMNS,
    claim_from_row,
    indicator_from_row,
    object_from_row,
    relationship_from_row,
)
from heistwatch.model import TLP, Source
from heistwatch.share.stix import (
    _claim_sro,
    _identity,
    _indicator_sdo,
    _marking,
    _relationship_sro,
    _sdo,
    identity_id,
)

PLACEHOLDER = "2000-01-01T00:00:00.000Z"  # created/modified of every exported object; the catalog dates its own
FRESH = """
CREATE TEMP TABLE fresh (
    id TEXT PRIMARY KEY, type TEXT NOT NULL, own INTEGER NOT NULL, level INTEGER, source TEXT, origin TEXT NOT NULL,
    source_ref TEXT, target_ref TEXT, name TEXT, kind TEXT, digest TEXT NOT NULL, body TEXT
)"""
_COLUMNS = "id, type, own, source, origin, source_ref, target_ref, name, kind, digest, body"
_RECORDS = ("objects", "claims", "relationships", "indicators")
TABLES = ("sources", *_RECORDS)  # the knowledge base's tables a sync reads
# (table, STIX type, source_ref, target_ref, name, kind) of each kind of record
_SHAPES = (
    ("objects", "r.type", "NULL", "NULL", "r.name", "NULL"),
    ("claims", "'relationship'", "r.subject_id", "r.object_id", "NULL", "NULL"),
    ("relationships", "'relationship'", "r.source_ref", "r.target_ref", "NULL", "NULL"),
    ("indicators", "'indicator'", "NULL", "NULL", "r.value", "r.kind"),
)
_READ: dict[str, tuple[str, Callable[[Sequence[Any]], Any], Callable[[Any, str], dict[str, Any]]]] = {
    "objects": ("SELECT * FROM kb.objects", object_from_row, _sdo),
    "claims": ("SELECT * FROM kb.claims", claim_from_row, _claim_sro),
    "relationships": ("SELECT * FROM kb.relationships", relationship_from_row, _relationship_sro),
    "indicators": (
        f"SELECT {', '.join(INDICATOR_COLUMNS.split())} FROM kb.indicators",
        indicator_from_row,
        _indicator_sdo,
    ),
}


def prepare(db: sqlite3.Connection, floors: dict[str, TLP]) -> None:
    """Register the digest and id functions staging calls, and the TLP and source-floor tables it joins."""
    version = metadata.version("heistwatch")  # a new heistwatch may export differently: re-version once

    def digest(*values: Any) -> str:
        return hashlib.sha256(orjson.dumps([version, *values])).hexdigest()

    db.create_function("hw_digest", -1, digest, deterministic=True)
    db.create_function("hw_identity", 1, functools.lru_cache(maxsize=4096)(identity_id), deterministic=True)
    db.execute("CREATE TEMP TABLE IF NOT EXISTS tlps (value TEXT PRIMARY KEY, level INTEGER NOT NULL, ref TEXT)")
    db.execute("CREATE TEMP TABLE IF NOT EXISTS floors (source TEXT PRIMARY KEY, level INTEGER NOT NULL)")
    db.execute("DELETE FROM temp.tlps")
    db.execute("DELETE FROM temp.floors")
    db.executemany("INSERT INTO temp.tlps VALUES (?, ?, ?)", [(t.value, level(t), t.stix_marking_id) for t in TLP])
    db.executemany("INSERT INTO temp.floors VALUES (?, ?)", [(s, level(t)) for s, t in floors.items()])


def stage(db: sqlite3.Connection) -> None:
    """Fill temp.fresh with every object of the export: id, type, own level (marking, source floor), digest."""
    db.execute(FRESH)
    for table, stix_type, source_ref, target_ref, name, kind in _SHAPES:
        columns = [row[1] for row in db.execute(f"PRAGMA kb.table_info({table})")]
        db.execute(
            f"INSERT INTO temp.fresh ({_COLUMNS}) SELECT r.id, "
            f"{stix_type}, max(t.level, coalesce(f.level, 0)), r.source, '{table}', {source_ref}, {target_ref},"
            f" {name}, {kind}, hw_digest({', '.join('r.' + c for c in columns)}), NULL"
            f" FROM kb.{table} r JOIN temp.tlps t ON t.value = r.tlp LEFT JOIN temp.floors f ON f.source = r.source"
        )
    used = " UNION ".join(f"SELECT {{0}} FROM kb.{table}" for table in _RECORDS)
    db.execute(
        f"INSERT INTO temp.fresh ({_COLUMNS}) SELECT hw_identity(s.key), 'identity', coalesce(f.level, 0), s.key,"
        " 'sources', NULL, NULL, s.name, NULL, hw_digest(s.key, s.name, s.version, s.date, s.url, s.package), NULL"
        f" FROM kb.sources s LEFT JOIN temp.floors f ON f.source = s.key WHERE s.key IN ({used.format('source')})"
    )
    db.execute(
        f"INSERT INTO temp.fresh ({_COLUMNS}) SELECT t.ref, 'marking-definition', 0, NULL, 'tlp', NULL, NULL, NULL,"
        f" NULL, hw_digest(t.value), NULL FROM temp.tlps t WHERE t.value IN ({used.format('tlp')})"
    )


def export(db: sqlite3.Connection, wanted: Sequence[tuple[str, str, str | None]]) -> Iterator[tuple[str, str]]:
    """(id, STIX JSON with sorted keys) of each staged (id, origin, source) in `wanted`, read from `kb`."""
    by_origin: defaultdict[str, list[str]] = defaultdict(list)
    for oid, origin, source in wanted:
        if origin == "tlp":
            yield oid, _json(_marking(next(t for t in TLP if t.stix_marking_id == oid)))
        elif origin == "sources":
            row = db.execute("SELECT key, name, version, date, url, package FROM kb.sources WHERE key = ?", (source,))
            yield oid, _json(_identity(Source(*row.fetchone()), PLACEHOLDER))
        else:
            by_origin[origin].append(oid)
    for origin, ids in by_origin.items():
        sql, read, make = _READ[origin]
        rows = db.execute(f"{sql} WHERE id IN ({','.join('?' * len(ids))})", ids)
        for row in rows:
            record = read(row)
            yield record.id, _json(make(record, PLACEHOLDER))


def _json(obj: dict[str, Any]) -> str:
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode("utf-8")
