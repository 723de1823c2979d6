"""The embedded knowledge base: one SQLite file in WAL mode, migrated on open."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterable, Sequence
from dataclasses import astuple, replace
from importlib import resources
from pathlib import Path
from typing import Any

from heistwatch.errors import StoreError
from heistwatch.kb.rows import (
    INDICATOR_COLUMNS,
    claim_from_row,
    claim_row,
    finding_from_row,
    indicator_from_row,
    indicator_row,
    name_rows,
    object_from_row,
    object_row,
    relationship_from_row,
    relationship_row,
)
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

_INDICATOR_LIST = ", ".join(INDICATOR_COLUMNS.split())


def _migrations() -> list[tuple[int, str]]:
    """(version, SQL) of every migration shipped with the package, in order."""
    folder = resources.files("heistwatch.kb") / "migrations"
    found = [
        (int(f.name.split("_", 1)[0]), f.read_text(encoding="utf-8"))
        for f in folder.iterdir()
        if f.name.endswith(".sql")
    ]
    return sorted(found)


def _in(column: str, values: Collection[str]) -> tuple[str, list[str]]:
    """A `column IN (...)` condition and its parameters."""
    items = list(values)
    return f"{column} IN ({','.join('?' * len(items))})", items


class SQLiteStore:
    """A `KnowledgeStore` in one SQLite file (or ":memory:")."""

    def __init__(self, path: str | Path, *, bulk: bool = False) -> None:
        """Open (creating and migrating if needed) the store; `bulk` trades durability for build speed."""
        self.path = str(path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA foreign_keys = ON")
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode = " + ("OFF" if bulk else "WAL"))
            self._db.execute("PRAGMA synchronous = " + ("OFF" if bulk else "NORMAL"))
            if bulk:
                self._db.execute("PRAGMA cache_size = -262144")  # 256 MiB: index pages stay in memory
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: cannot open the knowledge base: {exc}") from exc

    @property
    def schema_version(self) -> int:
        """The migration the file is at."""
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        current = self.schema_version
        migrations = _migrations()
        if current > migrations[-1][0]:
            raise StoreError(f"{self.path}: schema version {current} is newer than this heistwatch knows")
        for version, sql in migrations:
            if version > current:
                try:
                    self._db.executescript(f"BEGIN;\n{sql}\nPRAGMA user_version = {version};\nCOMMIT;")
                except sqlite3.Error:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def close(self) -> None:
        """Close the file; in WAL mode SQLite checkpoints and removes the -wal file on the last close."""
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode = WAL")
        self._db.close()

    # -- writing --------------------------------------------------------------------------------------

    def import_batch(self, batch: ImportBatch) -> None:
        """Upsert the batch in one transaction; dangling references roll everything back."""
        try:
            with self._transaction():
                self._write(batch)
                problem = self._dangling(batch)
                if problem:
                    raise StoreError(f"import rolled back: {problem}")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: import rolled back: {exc}") from exc

    def _write(self, batch: ImportBatch) -> None:
        db = self._db
        db.executemany(
            "INSERT INTO sources VALUES (?,?,?,?,?,?) ON CONFLICT(key) DO UPDATE SET name=excluded.name,"
            " version=excluded.version, date=excluded.date, url=excluded.url, package=excluded.package",
            [(s.key, s.name, s.version, s.date, s.url, s.package) for s in batch.sources],
        )
        db.executemany(
            "INSERT OR REPLACE INTO objects VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            sorted(object_row(o) for o in batch.objects),
        )
        db.executemany("DELETE FROM names WHERE object_id = ?", [(o.id,) for o in batch.objects])
        db.executemany("INSERT OR IGNORE INTO names VALUES (?,?,?,?)", sorted(name_rows(batch.objects)))
        db.executemany(
            "INSERT OR REPLACE INTO claims VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            sorted(claim_row(c) for c in batch.claims),
        )
        db.executemany(
            "INSERT OR REPLACE INTO relationships VALUES (?,?,?,?,?,?,?,?,?)",
            sorted(relationship_row(r) for r in batch.relationships),
        )
        db.executemany(
            f"INSERT OR REPLACE INTO indicators ({_INDICATOR_LIST}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            sorted(indicator_row(i) for i in batch.indicators),
        )

    def import_report(self, batch: ReportBatch) -> Report:
        """Write the report, its source, findings and indicators in one transaction; keep the first ingestion time."""
        try:
            with self._transaction():
                self._db.execute("DELETE FROM indicators WHERE source = ?", (batch.source.key,))
                self._write(ImportBatch(sources=(batch.source,), indicators=batch.indicators))
                row = self._db.execute("SELECT ingested FROM reports WHERE id = ?", (batch.report.id,)).fetchone()
                report = replace(batch.report, ingested=row[0]) if row else batch.report
                self._db.execute("DELETE FROM findings WHERE report_id = ?", (report.id,))
                self._db.execute("INSERT OR REPLACE INTO reports VALUES (?,?,?,?,?,?,?,?)", astuple(report))
                self._db.executemany(
                    "INSERT INTO findings VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    [(*astuple(f)[:10], json.dumps(list(f.object_ids)), f.score) for f in batch.findings],
                )
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: report {batch.report.name} not stored: {exc}") from exc
        return report

    def record_sightings(self, sightings: Iterable[Sighting], recorded: str) -> int:
        """Store sightings in one transaction; one seen again keeps its record time and takes the new counts and span.

        Returns how many were not stored before.
        """
        rows = [(s.id, *astuple(s), recorded) for s in sightings]
        try:
            with self._transaction():
                before = self._db.execute("SELECT count(*) FROM sightings").fetchone()[0]
                self._db.executemany(
                    "INSERT INTO sightings VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET"
                    " observed = excluded.observed, raw = excluded.raw, count = excluded.count,"
                    " first_seen = excluded.first_seen, last_seen = excluded.last_seen, hunt = excluded.hunt",
                    rows,
                )
                after = self._db.execute("SELECT count(*) FROM sightings").fetchone()[0]
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: sightings not stored: {exc}") from exc
        return int(after - before)

    def _dangling(self, batch: ImportBatch) -> str | None:
        """The first claim or relationship of the batch that points at nothing, described."""
        if not (batch.claims or batch.relationships):
            return None
        row = self._db.execute(
            "SELECT 'claim', id, subject_id FROM claims WHERE subject_id NOT IN (SELECT id FROM objects)"
            " UNION ALL SELECT 'claim', id, object_id FROM claims WHERE object_id NOT IN (SELECT id FROM objects)"
            " UNION ALL SELECT 'relationship', id, source_ref FROM relationships WHERE source_ref NOT IN"
            " (SELECT id FROM objects UNION ALL SELECT id FROM indicators)"
            " UNION ALL SELECT 'relationship', id, target_ref FROM relationships WHERE target_ref NOT IN"
            " (SELECT id FROM objects UNION ALL SELECT id FROM indicators) LIMIT 1"
        ).fetchone()
        return f"{row[0]} {row[1]} refers to unknown object {row[2]}" if row else None

    # -- reading --------------------------------------------------------------------------------------

    def sources(self) -> list[Source]:
        """Every source that contributed something."""
        rows = self._db.execute("SELECT key, name, version, date, url, package FROM sources ORDER BY key")
        return [Source(*row) for row in rows]

    def get(self, object_id: str) -> KBObject | None:
        """One object by id, or None."""
        found = self.objects(ids=[object_id])
        return found[0] if found else None

    def objects(
        self, *, type: ObjectType | None = None, source: str | None = None, ids: Collection[str] | None = None
    ) -> list[KBObject]:
        """Objects, optionally only of one type, one source or the given ids."""
        where, params = _conditions([("type = ?", type.value if type else None), ("source = ?", source)], ids, "id")
        rows = self._db.execute(f"SELECT * FROM objects{where} ORDER BY id", params)
        return [object_from_row(row) for row in rows]

    def names(self) -> list[NameEntry]:
        """The whole name dictionary: every name of every object."""
        return self._names("")

    def lookup(self, key: str) -> list[NameEntry]:
        """Names whose key equals `key`."""
        return self._names(" WHERE n.key = ?", [key])

    def _names(self, where: str, params: Sequence[Any] = ()) -> list[NameEntry]:
        rows = self._db.execute(
            "SELECT n.key, n.name, n.object_id, o.type, o.source, n.is_primary FROM names n"
            f" JOIN objects o ON o.id = n.object_id{where} ORDER BY n.key, n.object_id, n.name",
            params,
        )
        return [
            NameEntry(key, name, oid, ObjectType(otype), source, bool(primary))
            for key, name, oid, otype, source, primary in rows
        ]

    def claims(self, *, about: Collection[str] | None = None) -> list[Claim]:
        """Claims, optionally only those whose subject or object is one of `about`."""
        if about is None:
            rows = self._db.execute("SELECT * FROM claims ORDER BY id")
        else:
            cond, params = _in("subject_id", about)
            cond2, _ = _in("object_id", about)
            rows = self._db.execute(f"SELECT * FROM claims WHERE {cond} OR {cond2} ORDER BY id", params * 2)
        return [claim_from_row(row) for row in rows]

    def relationships(
        self,
        *,
        from_ids: Collection[str] | None = None,
        to_ids: Collection[str] | None = None,
        type: str | None = None,
    ) -> list[Relationship]:
        """Relationships, optionally only from or to the given ids, of one type."""
        conditions: list[str] = []
        params: list[Any] = []
        for column, ids in (("source_ref", from_ids), ("target_ref", to_ids)):
            if ids is not None:
                cond, values = _in(column, ids)
                conditions.append(cond)
                params.extend(values)
        if type is not None:
            conditions.append("type = ?")
            params.append(type)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = self._db.execute(f"SELECT * FROM relationships{where} ORDER BY id", params)
        return [relationship_from_row(row) for row in rows]

    def indicators(self, *, kind: str | None = None, value: str | None = None) -> list[Indicator]:
        """Indicators, optionally of one kind and normalized value."""
        where, params = _conditions([("kind = ?", kind), ("value = ?", value)], None, "id")
        rows = self._db.execute(
            f"SELECT {_INDICATOR_LIST} FROM indicators{where} ORDER BY id",
            params,
        )
        return [indicator_from_row(row) for row in rows]

    def reports(self) -> list[Report]:
        """Every ingested report, oldest first."""
        rows = self._db.execute("SELECT * FROM reports ORDER BY ingested, id")
        return [Report(*row) for row in rows]

    def findings(self, report_id: str) -> list[Finding]:
        """A report's findings in text order."""
        rows = self._db.execute(
            'SELECT * FROM findings WHERE report_id = ? ORDER BY start, "end", kind, value', (report_id,)
        )
        return [finding_from_row(row) for row in rows]

    def sightings(self, *, kind: str | None = None, value: str | None = None) -> list[Sighting]:
        """Recorded sightings, optionally of one indicator kind and normalized value, in input order."""
        where, params = _conditions([("kind = ?", kind), ("value = ?", value)], None, "id")
        rows = self._db.execute(f"SELECT * FROM sightings{where} ORDER BY file, line, field, indicator_id", params)
        return [Sighting(*row[1:-1]) for row in rows]

    def stats(self) -> list[SourceStats]:
        """Counts of records per source."""
        counts: dict[str, dict[str, Any]] = {
            s.key: {"objects": {}, "claims": 0, "relationships": 0, "indicators": 0} for s in self.sources()
        }
        for key, otype, n in self._db.execute("SELECT source, type, count(*) FROM objects GROUP BY 1, 2"):
            counts[key]["objects"][otype] = n
        for table in ("claims", "relationships", "indicators"):
            for key, n in self._db.execute(f"SELECT source, count(*) FROM {table} GROUP BY 1"):
                counts[key][table] = n
        return [SourceStats(source=s, **counts[s.key]) for s in self.sources()]


class _Transaction:
    """BEGIN ... COMMIT, or ROLLBACK when the block raises."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _conditions(pairs: Sequence[tuple[str, Any]], ids: Collection[str] | None, id_column: str) -> tuple[str, list[Any]]:
    conditions = [cond for cond, value in pairs if value is not None]
    params = [value for _, value in pairs if value is not None]
    if ids is not None:
        cond, values = _in(id_column, ids)
        conditions.append(cond)
        params.extend(values)
    return (f" WHERE {' AND '.join(conditions)}" if conditions else ""), params
