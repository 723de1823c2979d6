"""Tokens hashed at rest, roles, 401/403, and where the server may listen."""

from __future__ import annotations

import base64
import hashlib
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

import heistwatch.cli.serve  # noqa: F401  (registers `heistwatch serve`)
from heistwatch.api import create_app
from heistwatch.api.auth import LOCAL_OPERATOR, Role, TokenStore
from heistwatch.api.server import is_loopback, open_access
from heistwatch.cli.main import cli
from heistwatch.errors import InputError, NotFoundError
from heistwatch.model import TLP
from tests.api.conftest import Api


def test_tokens_are_hashed_at_rest(tmp_path: Path) -> None:
    path = tmp_path / "tokens.sqlite"
    store = TokenStore(path)
    token = store.add("ann", Role.ANALYST, TLP.AMBER)
    store.close()
    secret = token.split("_", 2)[2]  # hw_<key>_<secret>; the secret may itself hold "_"
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert secret.encode() not in raw and token.encode() not in raw
    db = sqlite3.connect(path)
    (stored,) = db.execute("SELECT secret_sha256 FROM users WHERE name = 'ann'").fetchone()
    db.close()
    assert stored == hashlib.sha256(secret.encode()).hexdigest()


def test_authenticate_accepts_only_the_exact_token(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.sqlite")
    token = store.add("ann", Role.ANALYST, TLP.AMBER)
    user = store.authenticate(token)
    assert user is not None and (user.name, user.role, user.clearance) == ("ann", Role.ANALYST, TLP.AMBER)
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert store.authenticate(flipped) is None
    assert store.authenticate(token + "x") is None
    assert store.authenticate("' OR 1=1 --") is None
    store.revoke("ann")
    assert store.authenticate(token) is None
    with pytest.raises(NotFoundError):
        store.revoke("ann")
    store.close()


def test_store_refuses_bad_names_duplicates_and_partners_above_amber(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.sqlite")
    store.add("ann", Role.READER)
    with pytest.raises(InputError, match="already has a token"):
        store.add("ann", Role.ADMIN)
    with pytest.raises(InputError, match="user name"):
        store.add("../etc", Role.READER)
    with pytest.raises(InputError, match="partner"):
        store.add("bob", Role.READER, TLP.RED, partner="Partner Bank")
    assert [u.name for u in store.users()] == ["ann"]
    store.close()


def test_unauthenticated_requests_get_401(api: Api) -> None:
    for path in ("/api/indicators", "/api/actors", "/api/reports", "/taxii2/", "/taxii2/api/collections/"):
        response = api.client.get(path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert (
        api.client.get("/api/me", headers={"Authorization": "Bearer hw_0000000000000000_" + "A" * 43}).status_code
        == 401
    )
    assert api.client.get("/api/me", headers={"Authorization": "Token abc"}).status_code == 401
    assert api.client.post("/api/reports", json={"name": "r.txt", "text": "x"}).status_code == 401


def test_taxii_401_is_a_taxii_error(api: Api) -> None:
    response = api.client.get("/taxii2/")
    assert response.headers["content-type"] == "application/taxii+json;version=2.1"
    assert response.json()["http_status"] == "401"


def test_basic_auth_needs_the_matching_name(api: Api) -> None:
    def basic(name: str) -> dict[str, str]:
        pair = f"{name}:{api.tokens['reader']}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}

    assert api.client.get("/api/me", headers=basic("reader")).json()["name"] == "reader"
    assert api.client.get("/api/me", headers=basic("admin")).status_code == 401


def test_under_role_gets_403(api: Api) -> None:
    report = {"name": "r.txt", "text": "evil-thing.example was used.", "tlp": "clear"}
    assert api.client.post("/api/reports", json=report, headers=api.headers("red-reader")).status_code == 403
    assert api.client.post("/api/stix", json={}, headers=api.headers("reader")).status_code == 403
    assert api.client.get("/api/audit", headers=api.headers("red-analyst")).status_code == 403
    level = {"tlp": "clear"}
    assert api.client.put("/api/sources/vendor-a/tlp", json=level, headers=api.headers("analyst")).status_code == 403
    assert api.client.get("/api/audit", headers=api.headers("admin")).status_code == 200


def test_open_access_only_without_users(tmp_path: Path, small_kb: Path) -> None:
    app = create_app(small_kb, tmp_path / "tokens.sqlite", open_access=True)
    with TestClient(app) as client:
        assert client.get("/api/me").json()["name"] == LOCAL_OPERATOR.name
        assert client.get("/api/me", headers={"Authorization": "Bearer nope"}).status_code == 401
    closed = create_app(small_kb, tmp_path / "other.sqlite")
    with TestClient(closed) as client:
        assert client.get("/api/me").status_code == 401


def test_server_refuses_other_interfaces_without_users(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.sqlite"
    assert open_access("127.0.0.1", tokens) and open_access("::1", tokens) and open_access("localhost", tokens)
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.org"):
        with pytest.raises(InputError, match="refusing to listen"):
            open_access(host, tokens)
    assert not tokens.exists()  # refusing creates nothing
    store = TokenStore(tokens)
    store.add("ann", Role.READER)
    store.close()
    assert open_access("0.0.0.0", tokens) is False
    assert open_access("127.0.0.1", tokens) is False  # with users, tokens are needed on loopback too
    assert is_loopback("127.8.0.1") and not is_loopback("10.0.0.1")


def test_cli_token_add_prints_the_token_once(tmp_path: Path, small_kb: Path) -> None:
    tokens = tmp_path / "tokens.sqlite"
    runner = CliRunner()
    result = runner.invoke(
        cli, ["serve", "token", "add", "ann", "--role", "analyst", "--clearance", "amber", "--tokens", str(tokens)]
    )
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    store = TokenStore(tokens)
    user = store.authenticate(token)
    store.close()
    assert user is not None and user.role is Role.ANALYST and user.clearance is TLP.AMBER
    listed = runner.invoke(cli, ["serve", "token", "list", "--tokens", str(tokens)])
    assert "ann\tanalyst\tTLP:AMBER" in listed.stdout and token not in listed.stdout


def test_cli_serve_refuses_a_public_interface_without_users(tmp_path: Path, small_kb: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--kb", str(small_kb), "serve", "--host", "0.0.0.0", "--tokens", str(tmp_path / "t.sqlite")]
    )
    assert isinstance(result.exception, InputError) and "refusing to listen on 0.0.0.0" in str(result.exception)
