"""Open the knowledge base a user named: a SQLite file path, or a PostgreSQL URL for a team server."""

from __future__ import annotations

from pathlib import Path

from heistwatch.errors import StoreError
from heistwatch.kb.sqlite import SQLiteStore
from heistwatch.kb.store import KnowledgeStore

StoreTarget = Path | str
"""A file path (`Path`), or a `postgresql://` URL kept as `str` (a `Path` would fold its `//`)."""

_SCHEMES = ("postgresql://", "postgres://")


def parse_target(value: str) -> StoreTarget:
    """A `--kb` value as given: a PostgreSQL URL stays a string, anything else is a file path."""
    return value if is_postgres(value) else Path(value)


def is_postgres(target: StoreTarget) -> bool:
    """Whether the target names a PostgreSQL database."""
    return isinstance(target, str) and target.startswith(_SCHEMES)


def describe_target(target: StoreTarget) -> str:
    """The target fit to print: the path, or the URL without its password."""
    if is_postgres(target):
        from heistwatch.kb.postgres import redact  # importing psycopg takes ~0.5 s: only when a server is used

        return redact(str(target))
    return str(target)


def open_store(target: StoreTarget, *, must_exist: bool = True) -> KnowledgeStore:
    """The store at `target`; with `must_exist`, one never built is refused with the command that builds it."""
    if is_postgres(target):
        from heistwatch.kb.postgres import PostgresStore

        store: KnowledgeStore = PostgresStore(str(target))
        if must_exist and not store.sources():
            store.close()
            raise StoreError(f"{describe_target(target)}: no knowledge base here yet; run `heistwatch kb build` first")
        return store
    path = Path(target)
    if must_exist and not path.exists():
        raise StoreError(f"{path}: no knowledge base here yet; run `heistwatch kb build` first")
    return SQLiteStore(path)
