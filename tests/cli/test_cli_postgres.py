"""The CLI on a team server: `--kb postgresql://...` builds, ingests and answers like the embedded store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from heistwatch.cli.main import Exit
from tests.cli.test_cli import run
from tests.kb.pg import pg_dsn, postgres_server  # noqa: F401  (fixtures)


def test_build_ingest_and_read_back_on_postgres(
    capsys: pytest.CaptureFixture[str],
    pg_dsn: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    assert run(capsys, "--kb", pg_dsn, "actor", "Lazarus Group")[0] == Exit.STORE  # not built yet
    assert run(capsys, "--kb", pg_dsn, "kb", "build")[0] == Exit.OK
    report = tmp_path / "r.md"
    report.write_text("The Lazarus Group used the domain cloud-docs-share[.]online against an exchange in 2026.\n")
    assert run(capsys, "--kb", pg_dsn, "ingest", str(report))[0] == Exit.OK
    code, out, _ = run(capsys, "--kb", pg_dsn, "actor", "Dangerous Password", "--json")
    assert code == Exit.OK and "Dangerous Password" in out
    code, out, _ = run(capsys, "--kb", pg_dsn, "hunt", "logs", str(_log(tmp_path)), "--workers", "1", "--json")
    assert code == Exit.OK and [s["value"] for s in json.loads(out)["sightings"]] == ["cloud-docs-share.online"]
    code, out, _ = run(capsys, "--kb", pg_dsn, "attribute", "--sightings", "--json")
    assert code == Exit.OK and "name:lazarusgroup" in {e["item_id"] for e in json.loads(out)["evidence"]}


def _log(folder: Path) -> Path:
    log = folder / "dns.jsonl"
    log.write_text(json.dumps({"ts": "2026-03-16T01:03:00Z", "query": "cloud-docs-share.online"}) + "\n")
    return log
