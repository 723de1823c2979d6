"""A small knowledge base with a record at every TLP level, users of every kind, and the app over them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from heistwatch.api import create_app
from heistwatch.api.auth import Role
from heistwatch.kb import KnowledgeStore, SQLiteStore
from heistwatch.kb.open import StoreTarget
from heistwatch.model import TLP, ImportBatch, make_indicator
from tests.conftest import sample_batch


def marked_domain(tlp: TLP) -> str:
    """The domain the small knowledge base holds at `tlp` ("amber-strict.example" for AMBER+STRICT)."""
    return f"{tlp.value.replace('+', '-')}.example"


def fill_small_kb(store: KnowledgeStore) -> None:
    """conftest's sample batch plus one domain indicator at each TLP level."""
    try:
        store.import_batch(sample_batch())
        indicators = tuple(make_indicator("domain", marked_domain(t), source="vendor-a", tlp=t) for t in TLP)
        store.import_batch(ImportBatch(indicators=indicators))
    finally:
        store.close()


def build_small_kb(path: Path) -> Path:
    """The small knowledge base in a file."""
    fill_small_kb(SQLiteStore(path))
    return path


@dataclass
class Api:
    """The app, a client, the knowledge base (a file or a PostgreSQL URL), and a token per kind of user."""

    app: FastAPI
    client: TestClient
    kb: StoreTarget
    tokens: dict[str, str]

    def headers(self, user: str) -> dict[str, str]:
        """The Authorization header of one of the fixture's users."""
        return {"Authorization": f"Bearer {self.tokens[user]}"}


USERS = {
    # name: (role, clearance, partner)
    "clear-reader": (Role.READER, TLP.CLEAR, None),
    "reader": (Role.READER, TLP.GREEN, None),
    "amber-reader": (Role.READER, TLP.AMBER, None),
    "partner": (Role.READER, TLP.AMBER, "Partner Bank"),
    "red-reader": (Role.READER, TLP.RED, None),
    "analyst": (Role.ANALYST, TLP.AMBER, None),
    "red-analyst": (Role.ANALYST, TLP.RED, None),
    "admin": (Role.ADMIN, TLP.RED, None),
}


def make_api(tmp_path: Path, kb: StoreTarget, *, max_body: int = 1024 * 1024) -> Api:
    app = create_app(kb, tmp_path / "tokens.sqlite", max_body=max_body)
    store = app.state.heistwatch.tokens
    tokens = {name: store.add(name, role, tlp, partner=partner) for name, (role, tlp, partner) in USERS.items()}
    return Api(app, TestClient(app), kb, tokens)


@pytest.fixture
def small_kb(tmp_path: Path) -> Path:
    return build_small_kb(tmp_path / "kb.sqlite")


@pytest.fixture
def api(tmp_path: Path, small_kb: Path) -> Iterator[Api]:
    made = make_api(tmp_path, small_kb)
    with made.client:
        yield made
