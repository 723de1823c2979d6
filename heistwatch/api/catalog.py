"""The knowledge base as the API serves it: every STIX object with its effective marking, date added and version.

TAXII needs what the knowledge base does not keep: when each object was added and which version it is. The
catalog keeps both in its own SQLite file, synced with the knowledge base whenever it changes (a commit by
another connection, or a rebuilt file swapped in; on PostgreSQL, a new revision). A sync streams the knowledge
base's STIX export into a temporary table a few thousand objects at a time, works out effective markings and what
changed in SQL, and writes only the changed objects (a new version each): memory stays flat however large the
knowledge base. A knowledge base on PostgreSQL is first mirrored into a SQLite file beside the catalog (see
`heistwatch.api.source`). Pages are read by keyset (date added, id), never OFFSET, so a deep page costs what the
first does.

Several server processes share one catalog file. A sync takes a lock file, so one process syncs at a time, and
records a fingerprint of what it was made from, taken before it began: the heistwatch version, the source
levels, and the knowledge base's (the device, inode, size and modification time of its file and WAL, or its
PostgreSQL revision). A process that finds all of these unchanged takes the catalog as current instead of
syncing again.

Indicator search goes through indexes: exact values and prefixes through an index on the lower-cased value
(a prefix is a range on it), substrings through an FTS5 trigram index (any three or more characters anywhere
in the value, in any case: a lookalike domain's brand word, a fragment of a hash). Shorter substrings scan.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import fcntl
import sqlite3
import threading
from collections.abc import Callable, Collection, Hashable
from dataclasses import dataclass
from enum import Enum
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

from heistwatch.api import snapshot
from heistwatch.api.markings import LEVELS, SourceLevels, level
from heistwatch.api.source import open_source
from heistwatch.errors import InputError
from heistwatch.kb.open import StoreTarget
from heistwatch.model import TLP

Clock = Callable[[], datetime.datetime]
_RED = level(TLP.RED)
_FORMAT = 2  # catalog file format: 2 added the search indexes and digests of the export before markings
_SCHEMA = """
CREATE TABLE IF NOT EXISTS catalog (
    id TEXT PRIMARY KEY, type TEXT NOT NULL, level INTEGER NOT NULL, source TEXT, name TEXT, kind TEXT,
    digest TEXT NOT NULL, created TEXT NOT NULL, added TEXT NOT NULL, version TEXT NOT NULL, json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS catalog_added ON catalog(added, id);
CREATE INDEX IF NOT EXISTS catalog_type ON catalog(type, id);
CREATE INDEX IF NOT EXISTS catalog_source ON catalog(source, type);
CREATE INDEX IF NOT EXISTS catalog_kind ON catalog(kind, id);
CREATE INDEX IF NOT EXISTS catalog_value ON catalog(lower(name), id);
CREATE VIRTUAL TABLE IF NOT EXISTS catalog_text USING fts5(
    name, content='catalog', content_rowid='rowid', tokenize='trigram'
);
CREATE TRIGGER IF NOT EXISTS catalog_text_insert AFTER INSERT ON catalog BEGIN
    INSERT INTO catalog_text(rowid, name) VALUES (new.rowid, new.name);
END;
CREATE TRIGGER IF NOT EXISTS catalog_text_delete AFTER DELETE ON catalog BEGIN
    INSERT INTO catalog_text(catalog_text, rowid, name) VALUES ('delete', old.rowid, old.name);
END;
CREATE TRIGGER IF NOT EXISTS catalog_text_update AFTER UPDATE OF name ON catalog BEGIN
    INSERT INTO catalog_text(catalog_text, rowid, name) VALUES ('delete', old.rowid, old.name);
    INSERT INTO catalog_text(rowid, name) VALUES (new.rowid, new.name);
END;
"""
# Effective levels (see `markings`): a relationship is held at least at the level of what it ties (claims and
# relationships tie objects and indicators only); an identity is as open as the most open record its source
# made, RED if none, and never below its source's floor (kept in `own`).
_LEVELS = """
UPDATE temp.fresh SET level = own WHERE type NOT IN ('relationship', 'identity');
UPDATE temp.fresh SET level = max(
    own,
    coalesce((SELECT e.level FROM temp.fresh e WHERE e.id = fresh.source_ref), 0),
    coalesce((SELECT e.level FROM temp.fresh e WHERE e.id = fresh.target_ref), 0)
) WHERE type = 'relationship';
CREATE TEMP TABLE made (source TEXT PRIMARY KEY, level INTEGER NOT NULL);
INSERT INTO temp.made SELECT source, min(level) FROM temp.fresh
WHERE type NOT IN ('identity', 'marking-definition') GROUP BY 1;
UPDATE temp.fresh SET level = max(own, coalesce((SELECT m.level FROM temp.made m WHERE m.source = fresh.source), {red}))
WHERE type = 'identity';
UPDATE temp.fresh SET body = '' WHERE id IN (
    SELECT f.id FROM temp.fresh f LEFT JOIN main.catalog c ON c.id = f.id
    WHERE c.id IS NULL OR c.digest IS NOT f.digest OR c.level IS NOT f.level
)
"""
_UNSTAGE = "DROP TABLE temp.fresh;\nDROP TABLE temp.made"
_PENDING = "SELECT id, origin, source FROM temp.fresh WHERE body = '' AND id > ? ORDER BY id LIMIT 2000"
# An object is written (a new version, dated now) when it is new, its row changed or its effective level did
# (those were given a body); a marking definition keeps its own dates.
_DATED = (
    "CASE WHEN f.type = 'marking-definition' THEN f.body ELSE json_set(f.body, '$.created', "
    "coalesce(c.created, :stamp), '$.modified', :stamp) END"
)
_WRITE = f"""
INSERT INTO catalog (id, type, level, source, name, kind, digest, created, added, version, json)
SELECT f.id, f.type, f.level, f.source, f.name, f.kind, f.digest, coalesce(c.created, :stamp), :stamp,
    CASE WHEN f.type = 'marking-definition' THEN json_extract(f.body, '$.created') ELSE :stamp END,
    CASE WHEN json_type(f.body, '$.object_marking_refs') IS NOT NULL OR f.level > 0
        THEN json_set({_DATED}, '$.object_marking_refs', json_array(m.ref)) ELSE {_DATED} END
FROM temp.fresh f JOIN temp.tlps m ON m.level = f.level LEFT JOIN main.catalog c ON c.id = f.id
WHERE f.body IS NOT NULL
ON CONFLICT(id) DO UPDATE SET type = excluded.type, level = excluded.level, source = excluded.source,
    name = excluded.name, kind = excluded.kind, digest = excluded.digest, added = excluded.added,
    version = excluded.version, json = excluded.json
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


class Match(Enum):
    """How a search text is compared with an indicator's value (always without regard to case)."""

    CONTAINS = "contains"
    PREFIX = "prefix"
    EXACT = "exact"


class Catalog:
    """The STIX objects of one knowledge base with their dates, versions and effective markings."""

    def __init__(self, kb: StoreTarget, path: Path, levels: SourceLevels, *, clock: Clock | None = None) -> None:
        """Open (creating if needed) the catalog file at `path` for the knowledge base at `kb` (a file or a URL)."""
        self.kb = kb
        self.path = path
        self._source = open_source(kb, path.with_name(f"{path.name}.mirror"))
        self._levels = levels
        self._clock = clock or (lambda: datetime.datetime.now(datetime.UTC))
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, uri=True)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._upgrade()
        self._db.execute("CREATE TABLE IF NOT EXISTS synced (kb TEXT NOT NULL)")
        self._lock_file = path.with_name(f"{path.name}.lock").open("a")
        self._sync_lock = threading.Lock()
        self._local = threading.local()
        self._seen: Hashable | None = None  # the source's state at the last refresh

    # -- keeping up with the knowledge base -------------------------------------------------------------

    def refresh(self, *, force: bool = False, wait: bool = True) -> bool:
        """Bring the catalog up to date if the knowledge base changed (or `force`); True if it did work.

        With `wait=False` a refresh already running elsewhere (in this process or another) is not waited for:
        readers then see the catalog as it was, which is consistent, just not yet current.
        """
        if not self._sync_lock.acquire(blocking=wait):
            return False
        try:
            state = self._source.state()
            if not force and state == self._seen:
                return False
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                return False
            try:
                # read after `state`: if the files are still as the last sync began, it covered `state` too
                fingerprint = self._fingerprint()
                if not force and self._db.execute("SELECT kb FROM synced").fetchone() == (fingerprint,):
                    self._seen = state
                    return False
                self._rebuild(fingerprint)
            finally:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._seen = state
            return True
        finally:
            self._sync_lock.release()

    def _fingerprint(self) -> str:
        """What a sync's result depends on: this heistwatch's version, the source levels, and the knowledge base."""
        floors = sorted((source, tlp.value) for source, tlp in self._levels.all().items())
        return " ".join([metadata.version("heistwatch"), orjson.dumps(floors).decode(), self._source.fingerprint()])

    def stale(self) -> bool:
        """Whether the knowledge base changed since the last refresh (False while a refresh is running)."""
        if not self._sync_lock.acquire(blocking=False):
            return False
        try:
            return self._source.state() != self._seen
        finally:
            self._sync_lock.release()

    def _upgrade(self) -> None:
        """Create the tables, or bring a catalog written by an older heistwatch up to this format."""
        if int(self._db.execute("PRAGMA user_version").fetchone()[0]) >= _FORMAT:
            return
        script = f"BEGIN IMMEDIATE;\n{_SCHEMA}\nINSERT INTO catalog_text(catalog_text) VALUES ('rebuild');\n"
        try:
            self._db.executescript(f"{script}PRAGMA user_version = {_FORMAT};\nCOMMIT;")
        except sqlite3.Error:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def _rebuild(self, fingerprint: str) -> None:
        """Sync with the knowledge base: stage it in SQL, export what changed a chunk at a time, write that.

        `fingerprint` was taken before the sync reads anything, so the snapshot it reads is at least that new.
        """
        db = self._db
        with self._source.sqlite_file() as kb_file:
            db.execute("ATTACH DATABASE ? AS kb", (kb_file.resolve().as_uri() + "?mode=ro",))
            try:
                self._stage(fingerprint)
            finally:
                db.execute("DETACH DATABASE kb")

    def _stage(self, fingerprint: str) -> None:
        """The sync itself, on the knowledge base attached as `kb`."""
        db = self._db
        floors = self._levels.all()
        db.execute("BEGIN IMMEDIATE")  # only this connection writes the catalog; readers go on (WAL)
        try:
            snapshot.prepare(db, floors)
            snapshot.stage(db)
            _run(db, _LEVELS.format(red=_RED))
            last = ""
            while pending := db.execute(_PENDING, (last,)).fetchall():
                bodies = [(body, oid) for oid, body in snapshot.export(db, pending)]
                db.executemany("UPDATE temp.fresh SET body = ? WHERE id = ?", bodies)
                last = pending[-1][0]
            db.execute("DELETE FROM main.catalog WHERE id NOT IN (SELECT id FROM temp.fresh)")
            db.execute(_WRITE, {"stamp": self._stamp()})
            _run(db, _UNSTAGE)
            db.execute("DELETE FROM synced")
            db.execute("INSERT INTO synced VALUES (?)", (fingerprint,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
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
        self,
        levels: frozenset[TLP],
        *,
        text: str | None,
        kind: str | None,
        limit: int,
        after: str | None,
        match: Match = Match.CONTAINS,
    ) -> tuple[list[Entry], str | None]:
        """Indicators whose value contains, starts with or equals `text` (any case), of one kind; and the next cursor.

        Pages follow the order of the index that answers: id (no text, an exact value, a substring shorter than
        a trigram), the value (a prefix), or the row (a substring): a cursor fits only the search that gave it.
        """
        where, params = _where(Query(levels))
        plan = _plan(text or None, match)
        # a unary + keeps SQLite from answering through the type or kind index when the value's index fits better
        by_kind = kind is not None and not plan.where
        where.append("c.type = 'indicator'" if not (plan.where or by_kind) else "+c.type = 'indicator'")
        if kind is not None:
            where.append("c.kind = ?" if by_kind else "+c.kind = ?")
            params.append(kind)
        position = _decode_cursor(after, plan.order) if after is not None else None
        where += plan.where
        params += plan.params
        if position is not None:
            where.append(plan.after)
            params += position if plan.order != "value" else [max(plan.params[0], position[0]), *position]
        rows = (
            self._reader()
            .execute(
                f"SELECT {_C_COLUMNS}, {plan.key} FROM {plan.source} WHERE {' AND '.join(where)}"
                f" ORDER BY {plan.key_order} LIMIT ?",
                [*params, limit + 1],
            )
            .fetchall()
        )
        entries = [_entry(row[:7]) for row in rows]
        more = len(rows) > limit
        return entries[:limit], _encode_cursor(plan.order, rows[limit - 1][7:]) if more else None

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
        self._source.close()
        self._db.close()
        self._lock_file.close()


_COLUMNS = "id, type, level, source, added, version, json"
_C_COLUMNS = "c.id, c.type, c.level, c.source, c.added, c.version, c.json"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")  # what SQLite's lower() does


@dataclass(frozen=True)
class _Plan:
    """The SQL of one search: where rows come from, its conditions, its order, and how a cursor resumes it."""

    source: str
    where: list[str]
    params: list[Any]
    order: str  # the cursor's kind: "id", "value" or "row"
    key: str  # the columns a cursor holds
    key_order: str
    after: str


def _plan(text: str | None, match: Match) -> _Plan:
    """The indexed query for a search (see the module docstring)."""
    table = "catalog c"
    by_id = ("id", "c.id", "c.id", "c.id > ?")
    if text is None:
        return _Plan(table, [], [], *by_id)
    folded = text.translate(_ASCII_LOWER)
    if match is Match.EXACT:
        return _Plan(table, ["lower(c.name) = ?"], [folded], *by_id)
    if match is Match.PREFIX:
        upper = _after_prefix(folded)
        where = ["lower(c.name) >= ?", *(["lower(c.name) < ?"] if upper else []), "substr(lower(c.name), 1, ?) = ?"]
        params = [folded, *([upper] if upper else []), len(folded), folded]
        value = ("value", "lower(c.name), c.id", "lower(c.name), c.id", "(lower(c.name), c.id) > (?, ?)")
        return _Plan(table, where, params, *value)
    if "\x00" in text:  # FTS5 reads a NUL as the end of its query
        raise InputError("q", "contains a NUL character")
    if len(text) < 3:  # below a trigram: no index can answer, so scan in id order
        return _Plan(table, ["c.name LIKE ? ESCAPE '\\'"], [_like(text)], *by_id)
    phrase = '"' + text.replace('"', '""') + '"'
    source = "catalog_text t JOIN catalog c ON c.rowid = t.rowid"
    return _Plan(source, ["catalog_text MATCH ?"], [phrase], "row", "t.rowid", "t.rowid", "t.rowid > ?")


def _after_prefix(prefix: str) -> str | None:
    """The least string above every string that starts with `prefix` (None past the last code point)."""
    code = ord(prefix[-1]) + 1
    code = 0xE000 if 0xD800 <= code < 0xE000 else code  # surrogates cannot be stored
    return prefix[:-1] + chr(code) if code <= 0x10FFFF else None


def _encode_cursor(order: str, key: tuple[Any, ...]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([order, *key])).decode("ascii")


def _decode_cursor(token: str, order: str) -> list[Any]:
    """The position a search cursor names; InputError if it is not one this search gave."""
    arity = {"id": 1, "value": 2, "row": 1}[order]
    try:
        parts = orjson.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise InputError("cursor", "not a cursor this server gave") from exc
    kinds = (int,) if order == "row" else (str,)
    if not (isinstance(parts, list) and len(parts) == arity + 1 and parts[0] == order):
        raise InputError("cursor", "not a cursor from this search (the text or match changed?)")
    if not all(isinstance(p, kinds) and not isinstance(p, bool) for p in parts[1:]):
        raise InputError("cursor", "not a cursor this server gave")
    return list(parts[1:])


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


def _run(db: sqlite3.Connection, script: str) -> None:
    """Run a script's statements one by one, inside the caller's transaction (executescript would commit it)."""
    for statement in script.split(";\n"):
        if statement.strip():
            db.execute(statement)
