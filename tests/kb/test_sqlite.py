"""SQLite specifics: WAL on files, migrations, refusing files from a newer heistwatch."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from heistwatch.errors import StoreError
from heistwatch.kb import SQLiteStore
from heistwatch.kb.sqlite import _migrations


def test_file_store_uses_wal_and_is_migrated(tmp_kb: Path) -> None:
    store = SQLiteStore(tmp_kb)
    assert store.schema_version == _migrations()[-1][0]
    store.close()
    db = sqlite3.connect(tmp_kb)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    SQLiteStore(tmp_kb).close()  # reopening an up-to-date file migrates nothing


def test_newer_schema_is_refused(tmp_kb: Path) -> None:
    SQLiteStore(tmp_kb).close()
    db = sqlite3.connect(tmp_kb)
    db.execute("PRAGMA user_version = 999")
    db.close()
    with pytest.raises(StoreError, match="newer"):
        SQLiteStore(tmp_kb)


def test_garbage_file_is_a_store_error(tmp_kb: Path) -> None:
    tmp_kb.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=str(tmp_kb)):
        SQLiteStore(tmp_kb)
