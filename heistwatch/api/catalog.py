"""The knowledge base as the API serves it: every STIX object with its effective marking, date added and version.

TAXII needs what the knowledge base does not keep: when each object was added and which version it is. The
catalog keeps both in its own SQLite file, refreshed from the knowledge base's STIX export whenever the
knowledge base changes (a commit by another connection, or a rebuilt file swapped in). An object whose STIX form
changed gets a new version. Pages are read by keyset (date added, id), so a deep page costs what the first does.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import os
import sqlite3
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from heistwatch.api.markings import LEVELS, SourceLevels, level
from heistwatch.errors import InputError
from heistwatch.kb import SQLiteStore
from heistwatch.model import TLP
from heistwatch.share.stix import export_bundle, identity_id

Clock = Callable[[], datetime.datetime]
_EXPORT_STAMP = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)  # replaced by each object's own dates
_RED = level(TLP.RED)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS catalog (
    id TEXT PRIMARY KEY, type TEXT NOT NULL, level INTEGER NOT NULL, source TEXT, name TEXT, kind TEXT,
    digest TEXT NOT NULL, created TEXT NOT NULL, added TEXT NOT NULL, version TEXT NOT NULL, json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS catalog_added ON catalog(added, id);
CREATE INDEX IF NOT EXISTS catalog_type ON catalog(type, id);
CREATE INDEX IF NOT EXISTS catalog_source ON catalog(source, type);
"""


@dataclass(frozen=True)
class Entry:
    """One STIX object as served: its effective marking, when it was added, its version, and its JSON text."""

    id: str
    type: str
    tlp: TLP
    source: str | None
    added: str
    version: str
    json: str


@dataclass(frozen=True)
class Page:
    """Entries in (date added, id) order, whether more follow, and the token that fetches them."""

    entries: list[Entry]
    more: bool
    next: str | None


@dataclass(frozen=True)
class Query:
    """Which objects a page holds: TAXII's match[id], match[type], match[version] and added_after."""

    levels: frozenset[TLP]
    ids: Collection[str] | None = None
    types: Collection[str] | None = None
    versions: Collection[str] | None = None
    added_after: str | None = None


class Catalog:
    """The STIX objects of one knowledge base with their dates, versions and effective markings."""

    def __init__(self, kb_path: Path, path: Path, levels: SourceLevels, *, clock: Clock | None = None) -> None:
        """Open (creating if needed) the catalog file at `path` for the knowledge base at `kb_path`."""
        self.kb_path = kb_path
        self.path = path
        self._levels = levels
        self._clock = clock or (lambda: datetime.datetime.now(datetime.UTC))
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.executescript(_SCHEMA)
        self._sync_lock = threading.Lock()
        self._local = threading.local()
        self._watch: sqlite3.Connection | None = None
        self._seen: tuple[int, int, int] | None = None  # (device, inode, data_version) at the last refresh

    # -- keeping up with the knowledge base -------------------------------------------------------------

    def refresh(self, *, force: bool = False, wait: bool = True) -> bool:
        """Bring the catalog up to date if the knowledge base changed (or `force`); True if it did work.

        With `wait=False` a refresh already running elsewhere is not waited for: readers then see the catalog as
        it was, which is consistent, just not yet current.
        """
        if not self._sync_lock.acquire(blocking=wait):
            return False
        try:
            state = self._kb_state()
            if not force and state == self._seen:
                return False
            self._rebuild()
            self._seen = state
            return True
        finally:
            self._sync_lock.release()

    def _kb_state(self) -> tuple[int, int, int]:
        """The knowledge base file's identity and SQLite's data_version, which any commit elsewhere changes."""
        stat = os.stat(self.kb_path)
        if self._watch is None or self._seen is None or self._seen[:2] != (stat.st_dev, stat.st_ino):
            if self._watch is not None:
                self._watch.close()
            self._watch = sqlite3.connect(f"file:{self.kb_path}?mode=ro", uri=True, check_same_thread=False)
        return stat.st_dev, stat.st_ino, int(self._watch.execute("PRAGMA data_version").fetchone()[0])

    def _rebuild(self) -> None:
        store = SQLiteStore(self.kb_path)
        try:
            objects = export_bundle(store, now=_EXPORT_STAMP)["objects"]
            sources = {identity_id(s.key): s.key for s in store.sources()}
        finally:
            store.close()
        rows = _rows(objects, sources, self._levels.all())
        known = {
            oid: (digest, created)
            for oid, digest, created in self._db.execute("SELECT id, digest, created FROM catalog")
        }
        stamp = self._stamp()
        changed = []
        for row in rows:
            before = known.get(row.id)
            if before is not None and before[0] == row.digest:
                continue
            changed.append(row.stored(before[1] if before else stamp, stamp))
        gone = [(oid,) for oid in known.keys() - {r.id for r in rows}]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("DELETE FROM catalog WHERE id = ?", gone)
            self._db.executemany("INSERT OR REPLACE INTO catalog VALUES (?,?,?,?,?,?,?,?,?,?,?)", changed)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _stamp(self) -> str:
        """Now as a STIX timestamp, strictly after every date already added (clients page with added_after)."""
        now = self._clock().astimezone(datetime.UTC)
        last = self._db.execute("SELECT max(added) FROM catalog").fetchone()[0]
        if last is not None:
            floor = datetime.datetime.fromisoformat(last.replace("Z", "+00:00")) + datetime.timedelta(milliseconds=1)
            now = max(now, floor)
        return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"

    # -- reading ----------------------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        """This thread's read connection (WAL lets reads run while a refresh writes)."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, check_same_thread=False)
            self._local.db = db
        return db

    def page(self, query: Query, *, limit: int, after: str | None = None) -> Page:
        """Up to `limit` matching entries after the position a previous page's `next` token names."""
        where, params = _where(query)
        if after is not None:
            added, oid = decode_next(after)
            where.append("(added, id) > (?, ?)")
            params += [added, oid]
        rows = self._reader().execute(
            f"SELECT {_COLUMNS} FROM catalog WHERE {' AND '.join(where)} ORDER BY added, id LIMIT ?",
            [*params, limit + 1],
        )
        entries = [_entry(row) for row in rows]
        more = len(entries) > limit
        entries = entries[:limit]
        token = encode_next(entries[-1].added, entries[-1].id) if more else None
        return Page(entries, more, token)

    def get(self, object_id: str, levels: frozenset[TLP]) -> Entry | None:
        """One object, if one of `levels` marks it."""
        found = self.page(Query(levels, ids=[object_id]), limit=1).entries
        return found[0] if found else None

    def search_indicators(
        self, levels: frozenset[TLP], *, text: str | None, kind: str | None, limit: int, after: str | None
    ) -> tuple[list[Entry], str | None]:
        """Indicators whose value contains `text` (any case), of one kind, by id after `after`; and the next id."""
        where, params = _where(Query(levels, types=["indicator"]))
        for condition, value in (("kind = ?", kind), ("name LIKE ? ESCAPE '\\'", _like(text)), ("id > ?", after)):
            if value is not None:
                where.append(condition)
                params.append(value)
        rows = self._reader().execute(
            f"SELECT {_COLUMNS} FROM catalog WHERE {' AND '.join(where)} ORDER BY id LIMIT ?", [*params, limit + 1]
        )
        entries = [_entry(row) for row in rows]
        return entries[:limit], entries[limit - 1].id if len(entries) > limit else None

    def levels_of(self, ids: Collection[str]) -> dict[str, TLP]:
        """The effective marking of each of `ids` the catalog holds."""
        db = self._reader()
        out: dict[str, TLP] = {}
        items = list(ids)
        for start in range(0, len(items), 500):
            chunk = items[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for oid, lvl in db.execute(f"SELECT id, level FROM catalog WHERE id IN ({marks})", chunk):
                out[oid] = LEVELS[lvl]
        return out

    def indicator_levels(self) -> dict[str, TLP]:
        """For each source, the most restricted marking among its indicators."""
        rows = self._reader().execute("SELECT source, max(level) FROM catalog WHERE type = 'indicator' GROUP BY 1")
        return {source: LEVELS[lvl] for source, lvl in rows}

    def close(self) -> None:
        """Close the catalog and the knowledge base watch."""
        if self._watch is not None:
            self._watch.close()
        self._db.close()


_COLUMNS = "id, type, level, source, added, version, json"


def _entry(row: tuple[Any, ...]) -> Entry:
    oid, otype, lvl, source, added, version, text = row
    return Entry(oid, otype, LEVELS[lvl], source, added, version, text)


def _where(query: Query) -> tuple[list[str], list[Any]]:
    where = [f"level IN ({','.join(str(level(t)) for t in query.levels) or '-1'})"]
    params: list[Any] = []
    for column, values in (("id", query.ids), ("type", query.types)):
        if values is not None:
            where.append(f"{column} IN ({','.join('?' * len(values))})")
            params += list(values)
    if query.added_after is not None:
        where.append("added > ?")
        params.append(query.added_after)
    stamps = [v for v in query.versions or () if v not in {"first", "last", "all"}]
    if stamps and len(stamps) == len(query.versions or ()):
        where.append(f"version IN ({','.join('?' * len(stamps))})")  # one version is kept, so first = last = all
        params += stamps
    return where, params


def _like(text: str | None) -> str | None:
    if text is None:
        return None
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def encode_next(added: str, object_id: str) -> str:
    """The opaque `next` token for the position after (added, id)."""
    return base64.urlsafe_b64encode(f"{added}|{object_id}".encode()).decode("ascii")


def decode_next(token: str) -> tuple[str, str]:
    """The position a `next` token names; InputError if it is not one this server gave."""
    try:
        added, sep, oid = base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8").partition("|")
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise InputError("next", "not a paging token this server gave") from exc
    if not sep or not added or not oid:
        raise InputError("next", "not a paging token this server gave")
    return added, oid


@dataclass(frozen=True)
class _Row:
    """A STIX object from the export with its effective level, before dates are assigned."""

    id: str
    type: str
    level: int
    source: str | None
    name: str | None
    kind: str | None
    digest: str
    body: dict[str, Any]

    def stored(self, created: str, added: str) -> tuple[Any, ...]:
        """The catalog row for this version, first seen at `created`, this version added at `added`."""
        body = dict(self.body)
        if body["type"] != "marking-definition":
            body["created"], body["modified"] = created, added
        version = body.get("modified", body["created"])
        text = orjson.dumps(body).decode("utf-8")
        return (
            self.id,
            self.type,
            self.level,
            self.source,
            self.name,
            self.kind,
            self.digest,
            created,
            added,
            version,
            text,
        )


def _rows(objects: list[dict[str, Any]], sources: Mapping[str, str], floors: Mapping[str, TLP]) -> list[_Row]:
    """Every exported object with its effective level: own marking, its source's level, and for a relationship
    the levels of what it ties; an identity is as open as the most open record it made (RED if none)."""
    levels: dict[str, int] = {}

    def own(obj: dict[str, Any]) -> int:
        marks = [TLP.from_stix_marking_id(ref) for ref in obj.get("object_marking_refs", ())]
        source = sources.get(obj.get("created_by_ref", ""))
        return max([level(m) for m in marks if m] + [level(floors.get(source, TLP.CLEAR)) if source else 0])

    ordered = sorted(objects, key=lambda o: (o["type"] == "relationship", o["type"] == "identity"))
    for obj in ordered:
        if obj["type"] == "marking-definition":
            levels[obj["id"]] = 0
        elif obj["type"] == "relationship":
            ends = [levels.get(obj["source_ref"], 0), levels.get(obj["target_ref"], 0)]
            levels[obj["id"]] = max([own(obj), *ends])
        elif obj["type"] != "identity":
            levels[obj["id"]] = own(obj)
    made: dict[str, int] = {}
    for obj in objects:
        ref = obj.get("created_by_ref")
        if ref:
            made[ref] = min(made.get(ref, _RED), levels[obj["id"]])
    for obj in objects:
        if obj["type"] == "identity":
            source = sources.get(obj["id"])
            floor = level(floors.get(source, TLP.CLEAR)) if source else 0
            levels[obj["id"]] = max(made.get(obj["id"], _RED), floor)
    return [_row(obj, levels[obj["id"]], sources) for obj in objects]


def _row(obj: dict[str, Any], lvl: int, sources: Mapping[str, str]) -> _Row:
    body = dict(obj)
    if "object_marking_refs" in body or lvl:
        body["object_marking_refs"] = [LEVELS[lvl].stix_marking_id]
    indicator = body.get("x_heistwatch_indicator") or {}
    source = sources.get(body["id"]) if body["type"] == "identity" else sources.get(body.get("created_by_ref", ""))
    digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return _Row(body["id"], body["type"], lvl, source, body.get("name"), indicator.get("kind"), digest, body)
