"""The audit log: who wrote or exported what, and when, in the server's state file."""

from __future__ import annotations

import datetime
import json
import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Clock = Callable[[], datetime.datetime]


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
        """Open (creating if needed) the audit table in the state file at `path`."""
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._clock = clock or (lambda: datetime.datetime.now(datetime.UTC))
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY, at TEXT NOT NULL, user TEXT NOT NULL,"
                " action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL)"
            )

    def record(self, user: str, action: str, target: str, detail: Mapping[str, Any] | None = None) -> None:
        """Append one entry."""
        at = self._clock().astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with self._lock:
            self._db.execute(
                "INSERT INTO audit (at, user, action, target, detail) VALUES (?,?,?,?,?)",
                (at, user, action, target, json.dumps(dict(detail or {}), sort_keys=True)),
            )

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
        """Close the state file."""
        self._db.close()
