"""The audit log's group commits: every entry is stored once, in order, and a caller returns only after its
entry is committed."""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from heistwatch.api.audit import AuditLog


def test_concurrent_entries_are_all_committed_before_their_callers_return(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "state.sqlite")

    def write(i: int) -> int:
        log.record(f"user-{i}", "taxii-export", "all", {"page": i})
        outside = sqlite3.connect(tmp_path / "state.sqlite")  # another connection sees only committed rows
        try:
            return int(outside.execute("SELECT count(*) FROM audit WHERE user = ?", (f"user-{i}",)).fetchone()[0])
        finally:
            outside.close()

    try:
        with ThreadPoolExecutor(16) as pool:
            seen = list(pool.map(write, range(400)))
        assert seen == [1] * 400
        entries = log.entries(limit=1000)
        assert len(entries) == 400 and sorted(e.detail["page"] for e in entries) == list(range(400))
        assert [e.id for e in entries] == sorted((e.id for e in entries), reverse=True)
    finally:
        log.close()


def test_async_callers_wait_for_their_commit(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "state.sqlite")

    async def export_pages() -> None:
        await asyncio.gather(*(log.record_async("partner", "taxii-export", "all", {"page": i}) for i in range(50)))

    try:
        asyncio.run(export_pages())
        assert {e.detail["page"] for e in log.entries(limit=100)} == set(range(50))
    finally:
        log.close()


def test_a_failed_commit_reaches_every_caller_and_the_writer_goes_on(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "state.sqlite")
    blocker = sqlite3.connect(tmp_path / "state.sqlite", timeout=0)
    log._db.execute("PRAGMA busy_timeout = 0")  # fail at once instead of waiting 30 s for the lock
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the file
        with pytest.raises(sqlite3.OperationalError):
            log.record("u", "taxii-export", "all")
        blocker.execute("ROLLBACK")
        log.record("u", "taxii-export", "all", {"after": True})
        assert [e.detail for e in log.entries()] == [{"after": True}]
    finally:
        blocker.close()
        log.close()


def test_close_commits_what_is_waiting(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "state.sqlite")
    pending = [log.submit("u", "ingest-report", f"report-{i}") for i in range(20)]
    log.close()
    assert all(p.done() and p.exception() is None for p in pending)
    reopened = AuditLog(tmp_path / "state.sqlite")
    try:
        assert len(reopened.entries()) == 20
    finally:
        reopened.close()
