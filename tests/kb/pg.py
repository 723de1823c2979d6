"""PostgreSQL for the store tests: one throwaway server per session (scripts/postgres.sh), a fresh schema per test.

Import the fixtures into a test module to use them. When no server can be had the tests fail, saying how to get one:
CI must run them, so they never skip.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "postgres.sh"
SERVER_ENV = "HEISTWATCH_TEST_PG"


def with_schema(dsn: str, schema: str) -> str:
    """The DSN with `schema` first on the search path (a URL stays a URL, so the CLI can take it)."""
    option = f"-csearch_path={schema}"
    if dsn.startswith(("postgresql://", "postgres://")):
        return f"{dsn}{'&' if '?' in dsn else '?'}{urlencode({'options': option})}"
    return make_conninfo(dsn, options=option)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The DSN of a running server: $HEISTWATCH_TEST_PG, else the project's throwaway cluster, started if needed."""
    given = os.environ.get(SERVER_ENV)
    if given:
        yield given
        return
    was_running = subprocess.run([SCRIPT, "status"], capture_output=True, check=False).returncode == 0
    started = subprocess.run([SCRIPT, "start"], capture_output=True, text=True, check=False, timeout=900)
    if started.returncode != 0 or not started.stdout.strip():
        pytest.fail(
            "PostgreSQL is needed for these tests and `scripts/postgres.sh start` failed"
            f" (exit {started.returncode}):\n"
            f"{started.stderr.strip()}\n"
            "Install it with `apt-get install -y postgresql` (as root; the script does this itself when it may), "
            f"or point ${SERVER_ENV} at a server (a DSN such as postgresql://user@localhost/db).",
            pytrace=False,
        )
    yield started.stdout.strip().splitlines()[-1]
    if not was_running:
        subprocess.run([SCRIPT, "stop"], capture_output=True, check=False)


@contextmanager
def new_schema(server: str) -> Iterator[str]:
    """A DSN whose search path is a new, empty schema on `server`, dropped on leaving."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield with_schema(server, schema)
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def pg_dsn(postgres_server: str) -> Iterator[str]:
    """A DSN whose search path is a new, empty schema, dropped after the test."""
    with new_schema(postgres_server) as dsn:
        yield dsn
