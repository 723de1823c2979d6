"""TAXII 2.1 through the real client (taxii2-client) against the app on a real uvicorn server on localhost."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn
from stix2validator import ValidationOptions, validate_instance
from taxii2client.exceptions import TAXIIServiceException
from taxii2client.v21 import ApiRoot, Collection, Server, as_pages

from heistwatch.api.app import create_app
from heistwatch.kb import SQLiteStore
from heistwatch.kb.build import BuildReport
from heistwatch.kb.open import StoreTarget
from heistwatch.model import TLP
from heistwatch.share.stix import export_bundle
from tests.api.conftest import USERS, build_small_kb, marked_domain


class Served:
    """The app served by uvicorn on a free localhost port, and its users' tokens."""

    def __init__(self, kb: StoreTarget, state: Path) -> None:
        self.app = create_app(kb, state / "tokens.sqlite")
        store = self.app.state.heistwatch.tokens
        self.tokens = {name: store.add(name, role, tlp, partner=org) for name, (role, tlp, org) in USERS.items()}
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/taxii2/"

    def root(self, user: str) -> ApiRoot:
        """The API root as `user` sees it (HTTP Basic with the token as password, as OpenCTI and MISP send it)."""
        server = Server(self.url, user=user, password=self.tokens[user])
        (root,) = server.api_roots
        return root

    def collection(self, user: str, title: str) -> Collection:
        return next(c for c in self.root(user).collections if c.title == title)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("taxii-small")
    with Served(build_small_kb(folder / "kb.sqlite"), folder) as served:
        yield served


@pytest.fixture(scope="module")
def full(built_kb: BuildReport, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with Served(built_kb.path, tmp_path_factory.mktemp("taxii-full")) as served:
        yield served


def pull(collection: Collection, per_request: int, **filters: Any) -> list[dict[str, Any]]:
    pages = list(as_pages(collection.get_objects, per_request=per_request, **filters))
    assert all(page.get("more") for page in pages[:-1]) and not pages[-1].get("more")
    return [obj for page in pages for obj in page.get("objects", [])]


@pytest.mark.parametrize(
    ("user", "levels"),
    [
        ("reader", {TLP.CLEAR, TLP.GREEN}),
        ("partner", {TLP.CLEAR, TLP.GREEN, TLP.AMBER}),
        ("amber-reader", {TLP.CLEAR, TLP.GREEN, TLP.AMBER}),
        ("red-reader", set(TLP)),
    ],
)
def test_collections_follow_clearance(small: Served, user: str, levels: set[TLP]) -> None:
    titles = {c.title for c in small.root(user).collections}
    assert titles == {"heistwatch knowledge base"} | {f"heistwatch {t.label}" for t in levels}


@pytest.mark.parametrize("user", ["reader", "partner", "amber-reader", "red-reader"])
def test_pages_never_carry_what_the_user_may_not_read(small: Served, user: str) -> None:
    objects = pull(small.collection(user, "heistwatch knowledge base"), per_request=3)
    _role, clearance, partner = USERS[user]
    allowed = {t.stix_marking_id for t in TLP if (partner is None or t in {TLP.CLEAR, TLP.GREEN, TLP.AMBER})}
    allowed &= {t.stix_marking_id for t in list(TLP)[: list(TLP).index(clearance) + 1]}
    for obj in objects:
        assert set(obj.get("object_marking_refs", [])) <= allowed, obj["id"]
    names = {o.get("name") for o in objects if o["type"] == "indicator"}
    expected = {marked_domain(t) for t in TLP if t.stix_marking_id in allowed}
    assert names & {marked_domain(t) for t in TLP} == expected
    assert len({o["id"] for o in objects}) == len(objects)


def test_one_level_collection_holds_only_that_level(small: Served) -> None:
    objects = pull(small.collection("red-reader", "heistwatch TLP:RED"), per_request=2)
    assert objects and all(o["object_marking_refs"] == [TLP.RED.stix_marking_id] for o in objects)
    assert marked_domain(TLP.RED) in {o.get("name") for o in objects}


def test_filters_and_single_objects(small: Served) -> None:
    everything = small.collection("red-reader", "heistwatch knowledge base")
    indicators = pull(everything, per_request=2, type="indicator")
    assert indicators and {o["type"] for o in indicators} == {"indicator"}
    red = next(o for o in indicators if o["name"] == marked_domain(TLP.RED))
    assert [o["id"] for o in pull(everything, per_request=5, id=red["id"])] == [red["id"]]
    assert everything.get_object(red["id"])["objects"][0]["id"] == red["id"]
    assert everything.get_object(red["id"], version=red["modified"])["objects"][0]["modified"] == red["modified"]
    with pytest.raises(requests.HTTPError) as refused:
        small.collection("reader", "heistwatch knowledge base").get_object(red["id"])
    assert refused.value.response is not None and refused.value.response.status_code == 404
    manifest = [r for page in as_pages(everything.get_manifest, per_request=4) for r in page.get("objects", [])]
    assert {r["id"] for r in manifest} == {o["id"] for o in pull(everything, per_request=50)}


def test_added_after_returns_only_what_came_later(small: Served) -> None:
    everything = small.collection("red-reader", "heistwatch knowledge base")
    first = everything.get_objects()
    last_added = max(r["date_added"] for r in everything.get_manifest()["objects"])
    assert not first.get("more") and everything.get_objects(added_after=last_added) == {"more": False}
    response = requests.post(
        f"http://127.0.0.1:{small.port}/api/reports",
        json={
            "name": "new.txt",
            "text": "The dropper called home to new-c2-host[.]com after the lure.",
            "tlp": "green",
        },
        headers={"Authorization": f"Bearer {small.tokens['red-analyst']}"},
        timeout=60,
    )
    assert response.status_code == 201, response.text
    later = pull(everything, per_request=10, added_after=last_added)
    assert "new-c2-host.com" in {o.get("name") for o in later}
    assert len(later) < len(first["objects"])


def test_taxii_media_type_and_refusals(small: Served) -> None:
    auth = ("reader", small.tokens["reader"])
    ok = requests.get(small.url, auth=auth, headers={"Accept": "application/taxii+json;version=2.1"}, timeout=30)
    assert ok.headers["Content-Type"] == "application/taxii+json;version=2.1"
    wrong = requests.get(small.url, auth=auth, headers={"Accept": "application/taxii+json;version=2.0"}, timeout=30)
    assert wrong.status_code == 406
    everything = small.collection("reader", "heistwatch knowledge base")
    bad = requests.get(everything.objects_url, auth=auth, params={"added_after": "yesterday"}, timeout=30)
    assert bad.status_code == 400 and bad.json()["http_status"] == "400" and "added_after" in bad.json()["title"]
    forged = requests.get(everything.objects_url, auth=auth, params={"next": "bm90IGEgdG9rZW4="}, timeout=30)
    assert forged.status_code == 400
    with pytest.raises((requests.HTTPError, TAXIIServiceException)):
        Server(small.url, user="reader", password="hw_wrong").api_roots  # noqa: B018


def test_every_page_is_audited(small: Served) -> None:
    audit = small.app.state.heistwatch.audit
    before = len(audit.entries(limit=10_000))
    pages = list(as_pages(small.collection("partner", "heistwatch knowledge base").get_objects, per_request=4))
    exports = [e for e in audit.entries(limit=10_000)[: len(audit.entries(limit=10_000)) - before]]
    assert len(exports) == len(pages) and {(e.user, e.action) for e in exports} == {("partner", "taxii-export")}


def test_objects_are_valid_stix(small: Served) -> None:
    options = ValidationOptions(version="2.1", strict=False)
    for obj in pull(small.collection("red-reader", "heistwatch knowledge base"), per_request=100):
        result = validate_instance(obj, options)
        assert result.is_valid, (obj["id"], [str(e) for e in result.errors])


def test_whole_knowledge_base_round_trips_through_the_client(full: Served, built_kb: BuildReport) -> None:
    store = SQLiteStore(built_kb.path)
    try:
        exported = {o["id"] for o in export_bundle(store)["objects"]}
    finally:
        store.close()
    pulled = pull(full.collection("red-reader", "heistwatch knowledge base"), per_request=1000)
    assert len(pulled) == len(exported) and {o["id"] for o in pulled} == exported
    # the built knowledge base is all TLP:CLEAR: a reader pulls it whole from the CLEAR collection
    assert len(pull(full.collection("reader", "heistwatch TLP:CLEAR"), per_request=1000)) == len(exported)
