"""Where the catalog reads the knowledge base: a SQLite file, or a PostgreSQL database it mirrors into one.

A source tells the catalog three things: a cheap state that any committed write changes (checked on every TAXII
request), a fingerprint of the content for the sync's record, and a SQLite file holding that content to stage
from (see `heistwatch.api.snapshot`).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Hashable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from heistwatch.api import snapshot
from heistwatch.kb.open import StoreTarget, is_postgres

if TYPE_CHECKING:
    from heistwatch.kb.postgres import PostgresStore


class KnowledgeSource(Protocol):
    """The knowledge base as the catalog syncs from it."""

    def state(self) -> Hashable:
        """A cheap value that changes whenever a write to the knowledge base commits."""

    def fingerprint(self) -> str:
        """What the knowledge base holds, as a sync records it: equal fingerprints, equal content."""

    def sqlite_file(self) -> AbstractContextManager[Path]:
        """A SQLite knowledge base file with the current content, for as long as the context lasts."""

    def close(self) -> None:
        """Release the connections."""


def open_source(target: StoreTarget, mirror: Path) -> KnowledgeSource:
    """The source for `target`; a PostgreSQL one writes its SQLite copy at `mirror`."""
    if is_postgres(target):
        return PostgresSource(str(target), mirror)
    return FileSource(Path(target))


class FileSource:
    """A SQLite knowledge base file, read in place."""

    def __init__(self, path: Path) -> None:
        """Watch the file at `path`."""
        self.path = path
        self._watch: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None

    def state(self) -> tuple[int, int, int]:
        """The file's identity (a rebuild swaps a new file in) and SQLite's data_version (any commit elsewhere)."""
        stat = os.stat(self.path)
        if self._watch is None or self._identity != (stat.st_dev, stat.st_ino):
            self.close()
            self._watch = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            self._identity = stat.st_dev, stat.st_ino
        return stat.st_dev, stat.st_ino, int(self._watch.execute("PRAGMA data_version").fetchone()[0])

    def fingerprint(self) -> str:
        """The device, inode, size and modification time of the file and its WAL, and the WAL's header: a commit
        appends to the WAL, rewrites its header on a reset, or a checkpoint writes the main file, and each changes
        a size, a modification time or the header."""
        stat = os.stat(self.path)
        main = f"{stat.st_dev}:{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}"
        try:
            with Path(f"{self.path}-wal").open("rb") as wal:
                header = wal.read(32)
                info = os.fstat(wal.fileno())
        except FileNotFoundError:
            return f"{main} empty"  # no WAL and an empty one hold the same: no frames
        return f"{main} {info.st_size}:{info.st_mtime_ns}:{header.hex()}" if header else f"{main} empty"

    def sqlite_file(self) -> AbstractContextManager[Path]:
        """The file itself."""
        return nullcontext(self.path)

    def close(self) -> None:
        """Close the watch connection."""
        if self._watch is not None:
            self._watch.close()
            self._watch = None


class PostgresSource:
    """A knowledge base on PostgreSQL: its revision is the state, and a sync stages from a fresh SQLite mirror."""

    def __init__(self, dsn: str, mirror: Path) -> None:
        """Watch the database at `dsn`; write the mirror at `mirror` (removed after each sync)."""
        self.dsn = dsn
        self.mirror = mirror
        self._store: PostgresStore | None = None

    def state(self) -> int:
        """The knowledge base's revision (see `PostgresStore.revision`)."""
        return self._connected().revision()

    def fingerprint(self) -> str:
        """The server and database (password left out) and the revision."""
        store = self._connected()
        return f"{store.where} {store.revision()}"

    @contextmanager
    def sqlite_file(self) -> Iterator[Path]:
        """A mirror of the tables a sync reads, from one snapshot."""
        from heistwatch.kb.postgres import mirror_knowledge_base

        try:
            mirror_knowledge_base(self._connected(), self.mirror, snapshot.TABLES)
            yield self.mirror
        finally:
            self.mirror.unlink(missing_ok=True)

    def close(self) -> None:
        """Close the connection."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def _connected(self) -> PostgresStore:
        """The store, connected first (again, after a lost connection)."""
        from heistwatch.kb.postgres import PostgresStore  # importing psycopg takes ~0.5 s: only for a server

        if self._store is None or self._store.broken:
            self.close()
            self._store = PostgresStore(self.dsn)
        return self._store
