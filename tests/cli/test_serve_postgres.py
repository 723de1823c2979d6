"""`heistwatch serve --kb postgresql://...`: a server with no knowledge base, or none at all, is refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from heistwatch.cli.main import Exit
from tests.cli.test_cli import run
from tests.kb.pg import pg_dsn, postgres_server  # noqa: F401  (fixtures)


def test_serve_refuses_a_database_without_a_knowledge_base(
    capsys: pytest.CaptureFixture[str],
    pg_dsn: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    code, _, err = run(capsys, "--kb", pg_dsn, "serve", "--tokens", str(tmp_path / "tokens.sqlite"), "--port", "9")
    assert code == Exit.STORE
    assert "postgresql://" in err and "no knowledge base here yet; run `heistwatch kb build` first" in err


def test_serve_refuses_an_unreachable_server_without_showing_its_password(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = "postgresql://someone:s3cret@/nowhere?host=/nonexistent-socket-dir&connect_timeout=2"
    code, _, err = run(capsys, "--kb", url, "serve", "--tokens", str(tmp_path / "tokens.sqlite"), "--port", "9")
    assert code == Exit.STORE
    assert "postgresql://someone@" in err and "cannot connect" in err and "s3cret" not in err
