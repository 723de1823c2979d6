"""`heistwatch serve --workers N`: the app in several processes on one port, each from the settings the parent
left, all serving the same catalog under the same tokens and markings."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

import heistwatch.cli.serve  # noqa: F401  (registers `serve`)
from heistwatch.api.auth import Role, TokenStore
from heistwatch.api.server import worker_app
from heistwatch.cli.main import cli
from heistwatch.model import TLP
from tests.api.conftest import marked_domain


def _settings(kb: Path, tokens: Path, *, open_access: bool) -> str:
    return json.dumps({"kb": str(kb), "tokens": str(tokens), "open": open_access, "max_body": 1024})


def test_a_worker_builds_its_app_from_the_parents_settings(
    tmp_path: Path, small_kb: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEISTWATCH_SERVE_SETTINGS", _settings(small_kb, tmp_path / "tokens.sqlite", open_access=False))
    with TestClient(worker_app()) as client:
        assert client.get("/api/indicators").status_code == 401  # not open: a token is needed
        too_big = client.post("/api/stix", content=b"x" * 2048, headers={"Content-Type": "application/json"})
        assert too_big.status_code == 413


def test_serve_refuses_zero_workers() -> None:
    result = CliRunner().invoke(cli, ["serve", "--workers", "0"])
    assert result.exit_code == 2 and "--workers" in result.output


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _get(url: str, token: str) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, {}


def test_two_worker_processes_serve_the_same_markings(tmp_path: Path, small_kb: Path) -> None:
    tokens = tmp_path / "tokens.sqlite"
    store = TokenStore(tokens)
    try:
        green = store.add("green-reader", Role.READER, TLP.GREEN)
    finally:
        store.close()
    port = _free_port()
    command = [sys.executable, "-m", "heistwatch", "--kb", str(small_kb), "serve", "--tokens", str(tokens)]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--workers", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}/api/indicators?match=exact&q="
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            try:
                status, _ = _get(url + marked_domain(TLP.GREEN), green)
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not answer"
                time.sleep(0.5)
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        spawned = [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
        assert len(spawned) == 2  # uvicorn's worker processes, beside its resource tracker
        for _ in range(20):  # connections land on either worker; every answer applies the same markings
            status, green_page = _get(url + marked_domain(TLP.GREEN), green)
            assert status == 200 and len(green_page["indicators"]) == 1  # type: ignore[arg-type]
            status, amber_page = _get(url + marked_domain(TLP.AMBER), green)
            assert status == 200 and amber_page["indicators"] == []
        assert _get(url + marked_domain(TLP.GREEN), "hw_wrong")[0] == 401
    finally:
        server.terminate()
        server.wait(timeout=60)
