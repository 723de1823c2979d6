"""The team knowledge base: the same store on a PostgreSQL server, migrated on open, values always bound server-side."""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Collection, Iterable, Sequence
from dataclasses import astuple, dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from heistwatch.errors import StoreError
from heistwatch.kb.rows import (
    CLAIM_COLUMNS,
    INDICATOR_COLUMNS,
    OBJECT_COLUMNS,
    RELATIONSHIP_COLUMNS,
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
from heistwatch.kb.sqlite import SQLiteStore
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


@dataclass(frozen=True)
class _Table:
    """A table's columns (space-separated) in the order reads and writes use them, and the column upserts match on."""

    name: str
    columns: str
    key: str = "id"

    @property
    def column_list(self) -> str:
        return ", ".join(f'"{c}"' for c in self.columns.split())

    @property
    def select(self) -> str:
        return f"SELECT {self.column_list} FROM {self.name}"

    @property
    def replace(self) -> str:
        """The conflict clause of SQLite's `INSERT OR REPLACE`: a row with the same key takes the new values."""
        updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in self.columns.split() if c != self.key)
        return f"ON CONFLICT ({self.key}) DO UPDATE SET {updates}"


_SOURCES = _Table("sources", "key name version date url package", key="key")
_OBJECTS = _Table("objects", OBJECT_COLUMNS)
_NAMES = _Table("names", "key name object_id is_primary")
_CLAIMS = _Table("claims", CLAIM_COLUMNS)
_RELATIONSHIPS = _Table("relationships", RELATIONSHIP_COLUMNS)
_INDICATORS = _Table("indicators", INDICATOR_COLUMNS)
_REPORTS = _Table("reports", "id sha256 name title format chars ingested source")
_FINDINGS = _Table(
    "findings", "id report_id kind value role reason start end sentence_start sentence_end object_ids score"
)
_SIGHTINGS = _Table(
    "sightings", "id indicator_id kind value observed file line field raw first_seen last_seen count hunt recorded"
)
_SIGHTING_SEEN_AGAIN = (
    "ON CONFLICT (id) DO UPDATE SET observed = EXCLUDED.observed, raw = EXCLUDED.raw, count = EXCLUDED.count,"
    " first_seen = EXCLUDED.first_seen, last_seen = EXCLUDED.last_seen, hunt = EXCLUDED.hunt"
)

# What a copy does to each table, in foreign-key order: COPY the seeded records straight in (None: the copy emptied
# those tables); keep the server's reports (with their findings, indicators and sources) and sightings, and add only
# what they do not already have.
_COPY: tuple[tuple[_Table, str | None], ...] = (
    (_SOURCES, "ON CONFLICT DO NOTHING"),
    (_OBJECTS, None),
    (_NAMES, None),
    (_CLAIMS, None),
    (_RELATIONSHIPS, None),
    (_INDICATORS, "WHERE NOT EXISTS (SELECT 1 FROM kept_reports k WHERE k.source = s.source) ON CONFLICT DO NOTHING"),
    (_REPORTS, "ON CONFLICT DO NOTHING"),
    (_FINDINGS, "WHERE NOT EXISTS (SELECT 1 FROM kept_reports k WHERE k.id = s.report_id) ON CONFLICT DO NOTHING"),
    (_SIGHTINGS, "ON CONFLICT DO NOTHING"),
)


_REVISE = "heistwatch_revise"
_REVISE_FUNCTION = """
CREATE OR REPLACE FUNCTION {schema}.heistwatch_revise() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE {schema}.schema_version SET revision = pg_current_xact_id()::text::bigint
    WHERE revision IS DISTINCT FROM pg_current_xact_id()::text::bigint;
    RETURN NULL;
END $$"""
_REVISE_TRIGGER = (
    "CREATE OR REPLACE TRIGGER heistwatch_revise BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}"
    " FOR EACH STATEMENT EXECUTE FUNCTION {schema}.heistwatch_revise()"
)
_MIRROR_CHUNK = 2000


def _migrations() -> list[tuple[int, str]]:
    """(version, SQL) of every PostgreSQL migration shipped with the package, in order."""
    folder = resources.files("heistwatch.kb") / "migrations_pg"
    found = [
        (int(f.name.split("_", 1)[0]), f.read_text(encoding="utf-8"))
        for f in folder.iterdir()
        if f.name.endswith(".sql")
    ]
    return sorted(found)


def redact(dsn: str) -> str:
    """The DSN as a `postgresql://user@host:port/db` URL without its password, fit to show in messages."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "postgresql://(unparsable DSN)"
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host', '')}{port}/{parts.get('dbname', '')}"


class PostgresStore:
    """A `KnowledgeStore` in a PostgreSQL database, in the first schema of the connection's search path."""

    def __init__(self, dsn: str) -> None:
        """Connect and migrate; `dsn` is a libpq URL or key=value string (`options=-csearch_path=S` picks a schema)."""
        self.where = redact(dsn)
        try:
            self._db = psycopg.connect(dsn, autocommit=True)
        except psycopg.Error as exc:
            raise StoreError(f"{self.where}: cannot connect to the knowledge base: {exc}") from exc
        try:
            self._migrate()
        except psycopg.Error as exc:
            self._db.close()
            raise StoreError(f"{self.where}: cannot open the knowledge base: {exc}") from exc
        except StoreError:
            self._db.close()
            raise

    @property
    def schema_version(self) -> int:
        """The migration the schema is at (0 before the first)."""
        row = self._db.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def _migrate(self) -> None:
        """Apply the missing migrations in one transaction, serialized across clients by an advisory lock."""
        migrations = _migrations()
        with self._db.transaction():
            schema = self._db.execute("SELECT current_schema()").fetchone()
            if not schema or schema[0] is None:
                raise StoreError(f"{self.where}: the search path names no existing schema to hold the knowledge base")
            self._db.execute("SELECT pg_advisory_xact_lock(hashtext('heistwatch-kb:' || current_schema()))")
            self._db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            current = self.schema_version
            if current > migrations[-1][0]:
                raise StoreError(f"{self.where}: schema version {current} is newer than this heistwatch knows")
            for version, script in migrations:
                if version > current:
                    self._db.execute(script.encode())
                    self._db.execute("DELETE FROM schema_version")
                    self._db.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
            self._track_revisions(str(schema[0]))

    def _track_revisions(self, schema: str) -> None:
        """Have every write to the knowledge base stamp `schema_version.revision` with its transaction's id.

        The stamp is a row written in the writer's transaction, so a reader sees it change exactly when the write
        commits, in the same snapshot as the data. The trigger runs before each statement: a writer takes the row's
        lock before any other, so writers queue there instead of deadlocking. Installed once, in the migration's
        transaction; a transaction id is never reused, so the stamp never returns to an earlier value.
        """
        tables = [table.name for table, _ in _COPY]
        installed = self._db.execute(
            "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " WHERE t.tgname = %s AND c.relnamespace = current_schema()::regnamespace",
            (_REVISE,),
        ).fetchone()
        if installed and installed[0] == len(tables):
            return
        self._db.execute(
            "ALTER TABLE schema_version ADD COLUMN IF NOT EXISTS"
            " revision BIGINT NOT NULL DEFAULT pg_current_xact_id()::text::bigint"
        )
        where = sql.Identifier(schema)
        self._db.execute(sql.SQL(_REVISE_FUNCTION).format(schema=where))
        for table in tables:
            self._db.execute(sql.SQL(_REVISE_TRIGGER).format(table=sql.Identifier(table), schema=where))

    def revision(self) -> int:
        """The id of the last transaction that wrote to the knowledge base: any committed write changes it."""
        try:
            row = self._db.execute("SELECT revision FROM schema_version").fetchone()
        except psycopg.Error as exc:
            raise StoreError(f"{self.where}: cannot read the knowledge base: {exc}") from exc
        return int(row[0]) if row else 0

    @property
    def broken(self) -> bool:
        """Whether the connection was lost (the server restarted, the network failed): a new store is needed."""
        return self._db.broken

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    # -- writing --------------------------------------------------------------------------------------

    def import_batch(self, batch: ImportBatch) -> None:
        """Upsert the batch in one transaction; dangling references roll everything back."""
        try:
            with self._db.transaction():
                self._write(batch)
                problem = self._dangling() if batch.claims or batch.relationships else None
                if problem:
                    raise StoreError(f"import rolled back: {problem}")
        except psycopg.Error as exc:
            raise StoreError(f"{self.where}: import rolled back: {exc}") from exc

    def _write(self, batch: ImportBatch) -> None:
        """Write every record of the batch, each table's rows in one COPY."""
        self._bulk(_SOURCES, [astuple(s) for s in batch.sources], _SOURCES.replace)
        self._bulk(_OBJECTS, _last_per_id(sorted(object_row(o) for o in batch.objects)), _OBJECTS.replace)
        if batch.objects:
            self._db.execute("DELETE FROM names WHERE object_id = ANY(%s)", ([o.id for o in batch.objects],))
        self._bulk(_NAMES, sorted(name_rows(batch.objects)), "ON CONFLICT DO NOTHING")
        self._bulk(_CLAIMS, _last_per_id(sorted(claim_row(c) for c in batch.claims)), _CLAIMS.replace)
        rows = _last_per_id(sorted(relationship_row(r) for r in batch.relationships))
        self._bulk(_RELATIONSHIPS, rows, _RELATIONSHIPS.replace)
        self._bulk(_INDICATORS, _last_per_id(sorted(indicator_row(i) for i in batch.indicators)), _INDICATORS.replace)

    def _bulk(self, table: _Table, rows: Iterable[Sequence[Any]], tail: str) -> int:
        """COPY the rows into a staging twin of the table, then `INSERT ... SELECT ... FROM` it (`s`) with `tail`.

        Much faster than a statement per row, and the conflict clause still applies; returns the rows inserted.
        """
        stage = f"stage_{table.name}"
        self._db.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table.name}) ON COMMIT DELETE ROWS")
        self._db.execute(f"DELETE FROM {stage}")
        self._copy(stage, table, rows)
        columns = table.column_list
        return self._db.execute(
            f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {stage} AS s {tail}"
        ).rowcount

    def _copy(self, target: str, table: _Table, rows: Iterable[Sequence[Any]]) -> int:
        """COPY the rows, in the table's column order, into `target`; returns how many."""
        with self._db.cursor() as cur:
            with cur.copy(f"COPY {target} ({table.column_list}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return cur.rowcount

    def import_report(self, batch: ReportBatch) -> Report:
        """Write the report, its source, findings and indicators in one transaction; keep the first ingestion time."""
        try:
            with self._db.transaction():
                self._db.execute("DELETE FROM indicators WHERE source = %s", (batch.source.key,))
                self._write(ImportBatch(sources=(batch.source,), indicators=batch.indicators))
                row = self._db.execute("SELECT ingested FROM reports WHERE id = %s", (batch.report.id,)).fetchone()
                report = replace(batch.report, ingested=row[0]) if row else batch.report
                self._db.execute("DELETE FROM findings WHERE report_id = %s", (report.id,))
                self._bulk(_REPORTS, [astuple(report)], _REPORTS.replace)
                findings = [(*astuple(f)[:10], json.dumps(list(f.object_ids)), f.score) for f in batch.findings]
                self._bulk(_FINDINGS, findings, "")
        except psycopg.Error as exc:
            raise StoreError(f"{self.where}: report {batch.report.name} not stored: {exc}") from exc
        return report

    def record_sightings(self, sightings: Iterable[Sighting], recorded: str) -> int:
        """Store sightings in one transaction; one seen again keeps its record time and takes the new counts and span.

        Returns how many were not stored before.
        """
        rows = _last_per_id((s.id, *astuple(s), recorded) for s in sightings)
        try:
            with self._db.transaction():
                before = self._count("sightings")
                self._bulk(_SIGHTINGS, rows, _SIGHTING_SEEN_AGAIN)
                after = self._count("sightings")
        except psycopg.Error as exc:
            raise StoreError(f"{self.where}: sightings not stored: {exc}") from exc
        return after - before

    def _count(self, table: str) -> int:
        row = self._db.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
        return int(row[0]) if row else 0

    def _dangling(self) -> str | None:
        """The first claim or relationship that points at nothing, described (anti-joins: `NOT IN` would not scale)."""
        row = self._db.execute(
            "SELECT 'claim', c.id, c.subject_id FROM claims c"
            " WHERE NOT EXISTS (SELECT 1 FROM objects o WHERE o.id = c.subject_id)"
            " UNION ALL SELECT 'claim', c.id, c.object_id FROM claims c"
            " WHERE NOT EXISTS (SELECT 1 FROM objects o WHERE o.id = c.object_id)"
            " UNION ALL SELECT 'relationship', r.id, r.source_ref FROM relationships r"
            " WHERE NOT EXISTS (SELECT 1 FROM objects o WHERE o.id = r.source_ref)"
            " AND NOT EXISTS (SELECT 1 FROM indicators i WHERE i.id = r.source_ref)"
            " UNION ALL SELECT 'relationship', r.id, r.target_ref FROM relationships r"
            " WHERE NOT EXISTS (SELECT 1 FROM objects o WHERE o.id = r.target_ref)"
            " AND NOT EXISTS (SELECT 1 FROM indicators i WHERE i.id = r.target_ref) LIMIT 1"
        ).fetchone()
        return f"{row[0]} {row[1]} refers to unknown object {row[2]}" if row else None

    # -- reading --------------------------------------------------------------------------------------

    def _select(self, query: str, conditions: Sequence[tuple[str, Any]], order: str) -> list[tuple[Any, ...]]:
        """Rows of `query` under the conditions whose value is not None (ANDed), in `order`."""
        used = [(cond, value) for cond, value in conditions if value is not None]
        where = f" WHERE {' AND '.join(cond for cond, _ in used)}" if used else ""
        return self._db.execute(f"{query}{where} ORDER BY {order}", [value for _, value in used]).fetchall()

    def sources(self) -> list[Source]:
        """Every source that contributed something."""
        return [Source(*row) for row in self._select(_SOURCES.select, [], "key")]

    def get(self, object_id: str) -> KBObject | None:
        """One object by id, or None."""
        found = self.objects(ids=[object_id])
        return found[0] if found else None

    def objects(
        self, *, type: ObjectType | None = None, source: str | None = None, ids: Collection[str] | None = None
    ) -> list[KBObject]:
        """Objects, optionally only of one type, one source or the given ids."""
        rows = self._select(
            _OBJECTS.select,
            [
                ("type = %s", type.value if type else None),
                ("source = %s", source),
                ("id = ANY(%s)", None if ids is None else list(ids)),
            ],
            "id",
        )
        return [object_from_row(row) for row in rows]

    def names(self) -> list[NameEntry]:
        """The whole name dictionary: every name of every object."""
        return self._names(None)

    def lookup(self, key: str) -> list[NameEntry]:
        """Names whose key equals `key`."""
        return self._names(key)

    def _names(self, key: str | None) -> list[NameEntry]:
        rows = self._select(
            "SELECT n.key, n.name, n.object_id, o.type, o.source, n.is_primary FROM names n"
            " JOIN objects o ON o.id = n.object_id",
            [("n.key = %s", key)],
            "n.key, n.object_id, n.name",
        )
        return [
            NameEntry(key, name, oid, ObjectType(otype), source, bool(primary))
            for key, name, oid, otype, source, primary in rows
        ]

    def claims(self, *, about: Collection[str] | None = None) -> list[Claim]:
        """Claims, optionally only those whose subject or object is one of `about`."""
        if about is None:
            rows = self._select(_CLAIMS.select, [], "id")
        else:
            ids = list(about)
            rows = self._db.execute(
                f"{_CLAIMS.select} WHERE subject_id = ANY(%s) OR object_id = ANY(%s) ORDER BY id",
                (ids, ids),
            ).fetchall()
        return [claim_from_row(row) for row in rows]

    def relationships(
        self,
        *,
        from_ids: Collection[str] | None = None,
        to_ids: Collection[str] | None = None,
        type: str | None = None,
    ) -> list[Relationship]:
        """Relationships, optionally only from or to the given ids, of one type."""
        rows = self._select(
            _RELATIONSHIPS.select,
            [
                ("source_ref = ANY(%s)", None if from_ids is None else list(from_ids)),
                ("target_ref = ANY(%s)", None if to_ids is None else list(to_ids)),
                ("type = %s", type),
            ],
            "id",
        )
        return [relationship_from_row(row) for row in rows]

    def indicators(self, *, kind: str | None = None, value: str | None = None) -> list[Indicator]:
        """Indicators, optionally of one kind and normalized value."""
        rows = self._select(_INDICATORS.select, [("kind = %s", kind), ("value = %s", value)], "id")
        return [indicator_from_row(row) for row in rows]

    def reports(self) -> list[Report]:
        """Every ingested report, oldest first."""
        return [Report(*row) for row in self._select(_REPORTS.select, [], "ingested, id")]

    def findings(self, report_id: str) -> list[Finding]:
        """A report's findings in text order."""
        rows = self._select(_FINDINGS.select, [("report_id = %s", report_id)], 'start, "end", kind, value')
        return [finding_from_row(row) for row in rows]

    def sightings(self, *, kind: str | None = None, value: str | None = None) -> list[Sighting]:
        """Recorded sightings, optionally of one indicator kind and normalized value, in input order."""
        rows = self._select(
            _SIGHTINGS.select,
            [("kind = %s", kind), ("value = %s", value)],
            "file, line, field, indicator_id",
        )
        return [Sighting(*row[1:-1]) for row in rows]

    def stats(self) -> list[SourceStats]:
        """Counts of records per source."""
        sources = self.sources()
        counts: dict[str, dict[str, Any]] = {
            s.key: {"objects": {}, "claims": 0, "relationships": 0, "indicators": 0} for s in sources
        }
        for key, otype, n in self._db.execute("SELECT source, type, count(*) FROM objects GROUP BY 1, 2 ORDER BY 1, 2"):
            counts[key]["objects"][otype] = n
        for table in ("claims", "relationships", "indicators"):
            query = sql.SQL("SELECT source, count(*) FROM {} GROUP BY 1 ORDER BY 1").format(sql.Identifier(table))
            for key, n in self._db.execute(query):
                counts[key][table] = n
        return [SourceStats(source=s, **counts[s.key]) for s in sources]


def copy_knowledge_base(sqlite_path: Path, store: PostgresStore) -> dict[str, int]:
    """Load a SQLite knowledge base into PostgreSQL in one transaction, as a rebuild of the SQLite file would.

    The seeded records (sources, objects, names, claims, relationships, indicators) are replaced by the file's; the
    reports already on the server (with their findings, indicators and sources) and the sightings are kept, and the
    file's own reports and sightings are added where the server has none with that id. Readers see the old knowledge
    base until the commit. Returns the rows added per table.
    """
    if not sqlite_path.is_file():
        raise StoreError(f"{sqlite_path}: no knowledge base file to copy")
    SQLiteStore(sqlite_path).close()  # refuses a damaged or newer file, and brings an older one to the same schema
    source = sqlite3.connect(f"{sqlite_path.resolve().as_uri()}?mode=ro", uri=True)
    db = store._db
    try:
        with db.transaction():
            db.execute("CREATE TEMP TABLE kept_reports ON COMMIT DROP AS SELECT id, source FROM reports")
            for seeded in ("names", "claims", "relationships", "objects"):
                db.execute(f"DELETE FROM {seeded}")
            db.execute(
                "DELETE FROM indicators i WHERE NOT EXISTS (SELECT 1 FROM kept_reports k WHERE k.source = i.source)"
            )
            db.execute("DELETE FROM sources s WHERE NOT EXISTS (SELECT 1 FROM kept_reports k WHERE k.source = s.key)")
            copied: dict[str, int] = {}
            for table, tail in _COPY:
                rows = source.execute(table.select)  # the schema's own column names
                copied[table.name] = (
                    store._copy(table.name, table, rows) if tail is None else store._bulk(table, rows, tail)
                )
            problem = store._dangling()
            if problem:
                raise StoreError(f"{sqlite_path}: copy rolled back: {problem}")
            db.execute(f"ANALYZE {', '.join(table.name for table, _ in _COPY)}")  # the planner sees the new sizes
    except psycopg.Error as exc:
        raise StoreError(f"{store.where}: copy of {sqlite_path} rolled back: {exc}") from exc
    except sqlite3.Error as exc:
        raise StoreError(f"{sqlite_path}: cannot read the knowledge base: {exc}") from exc
    finally:
        source.close()
    return copied


def mirror_knowledge_base(store: PostgresStore, sqlite_path: Path, tables: Collection[str]) -> None:
    """Write `tables` of the knowledge base, from one snapshot, into a new SQLite knowledge base file at `sqlite_path`.

    The reverse of `copy_knowledge_base`: the file has the SQLite store's own schema (the other tables empty), and
    each table streams through COPY a chunk at a time, so memory stays flat however large the knowledge base. An
    existing file is replaced.
    """
    sqlite_path.unlink(missing_ok=True)
    SQLiteStore(sqlite_path, bulk=True).close()  # the schema, in rollback-journal mode: readers may open it read-only
    target = sqlite3.connect(sqlite_path, isolation_level=None)
    db = store._db
    try:
        target.execute("PRAGMA journal_mode = OFF")
        target.execute("PRAGMA synchronous = OFF")
        target.execute("BEGIN")
        with db.transaction():
            db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            for table in (t for t, _ in _COPY if t.name in tables):
                _mirror_table(store, table, target)
        target.execute("COMMIT")
    except psycopg.Error as exc:
        raise StoreError(f"{store.where}: cannot read the knowledge base: {exc}") from exc
    except sqlite3.Error as exc:
        raise StoreError(f"{sqlite_path}: cannot write the knowledge base mirror: {exc}") from exc
    finally:
        target.close()


def _mirror_table(store: PostgresStore, table: _Table, target: sqlite3.Connection) -> None:
    """Stream one table into the same table of `target`, `_MIRROR_CHUNK` rows per insert."""
    with store._db.cursor() as cur:
        described = cur.execute(f"{table.select} LIMIT 0").description or []
        insert = f"INSERT INTO {table.name} ({table.column_list}) VALUES ({', '.join('?' * len(described))})"
        with cur.copy(f"COPY ({table.select}) TO STDOUT (FORMAT BINARY)") as copy:
            copy.set_types([column.type_code for column in described])
            rows = copy.rows()
            while chunk := list(itertools.islice(rows, _MIRROR_CHUNK)):
                target.executemany(insert, chunk)


def _last_per_id(rows: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """One row per id (the first column), the last one winning, as SQLite's one-row-at-a-time upserts do.

    One PostgreSQL statement may not update a row twice, so duplicates are settled here.
    """
    return list({row[0]: row for row in rows}.values())
