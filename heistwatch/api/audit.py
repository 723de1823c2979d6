"""The audit log: who wrote or exported what, and when, in the server's state file.

Entries are written by one writer thread in group commits: every entry waiting when a commit starts goes into
that transaction, so concurrent exports share one disk flush instead of queueing for one each. A caller is
answered only once its entry is committed, so nothing leaves the server before its audit entry is on disk.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import queue
import sqlite3
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Clock = Callable[[], datetime.datetime]
_Row = tuple[str, str, str, str, str]


@dataclass(frozen=True)
class AuditEntry:
    """One write or export: when, by whom, which action, on what, and its details."""

    id: int
    at: str
    user: str
    action: str
    target: str
    detail: Mapping[str, Any]


class AuditLog:
    """An append-only table of writes and exports."""

    def __init__(self, path: Path, *, clock: Clock | None = None) -> None:
        """Open (creating if needed) the audit table in the state file at `path`, and start its writer."""
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
        self._clock = clock or (lambda: datetime.datetime.now(datetime.UTC))
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY, at TEXT NOT NULL, user TEXT NOT NULL,"
                " action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL)"
            )
        self._pending: queue.SimpleQueue[tuple[_Row, Future[None]] | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write_loop, name="heistwatch-audit", daemon=True)
        self._writer.start()

    def submit(self, user: str, action: str, target: str, detail: Mapping[str, Any] | None = None) -> Future[None]:
        """Queue one entry; the future is done when it is committed (or failed to be)."""
        at = self._clock().astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        done: Future[None] = Future()
        self._pending.put(((at, user, action, target, json.dumps(dict(detail or {}), sort_keys=True)), done))
        return done

    def record(self, user: str, action: str, target: str, detail: Mapping[str, Any] | None = None) -> None:
        """Append one entry, returning once it is committed."""
        self.submit(user, action, target, detail).result()

    async def record_async(self, user: str, action: str, target: str, detail: Mapping[str, Any] | None = None) -> None:
        """Append one entry without holding up the event loop; returns once it is committed."""
        await asyncio.wrap_future(self.submit(user, action, target, detail))

    def _write_loop(self) -> None:
        """Commit whatever is waiting, one transaction at a time, until `close` sends None."""
        running = True
        while running:
            first = self._pending.get()
            if first is None:
                return
            batch = [first]
            while True:
                try:
                    item = self._pending.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    running = False
                    break
                batch.append(item)
            self._commit(batch)

    def _commit(self, batch: list[tuple[_Row, Future[None]]]) -> None:
        try:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.executemany(
                        "INSERT INTO audit (at, user, action, target, detail) VALUES (?,?,?,?,?)",
                        [row for row, _ in batch],
                    )
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
        except Exception as exc:  # every waiting caller learns of the failure; the writer goes on
            for _, done in batch:
                done.set_exception(exc)
            return
        for _, done in batch:
            done.set_result(None)

    def entries(self, *, limit: int = 100, before: int | None = None) -> list[AuditEntry]:
        """The newest entries first, optionally only those older than entry id `before`."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, at, user, action, target, detail FROM audit WHERE id < ? ORDER BY id DESC LIMIT ?",
                (before if before is not None else 2**62, limit),
            ).fetchall()
        return [
            AuditEntry(i, at, user, action, target, json.loads(detail)) for i, at, user, action, target, detail in rows
        ]

    def close(self) -> None:
        """Commit what is waiting, stop the writer and close the state file."""
        if self._writer.is_alive():
            self._pending.put(None)
            self._writer.join()
        self._db.close()
