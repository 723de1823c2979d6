"""Indicator search through the indexes: exact values, prefixes, substrings (trigrams), cursors that fit one search."""

from __future__ import annotations

import pytest

from heistwatch.api.schemas import IndicatorPage
from heistwatch.kb.open import open_store
from heistwatch.model import TLP, ImportBatch, make_indicator
from tests.api.conftest import Api, marked_domain

EVERY_LEVEL = {marked_domain(t) for t in TLP}
ALL_DOMAINS = EVERY_LEVEL | {"evil.example"}


def search(api: Api, user: str = "red-reader", **params: str) -> dict[str, object]:
    response = api.client.get("/api/indicators", params=params, headers=api.headers(user))
    assert response.status_code == 200, response.text
    page: dict[str, object] = response.json()
    return page


def values(api: Api, user: str = "red-reader", **params: str) -> list[str]:
    indicators = search(api, user, **params)["indicators"]
    assert isinstance(indicators, list)
    return [i["value"] for i in indicators]


def test_prefix_finds_values_that_start_with_the_text_in_any_case(api: Api) -> None:
    assert values(api, q="AMBER", match="prefix") == ["amber-strict.example", "amber.example"]  # in value order
    assert values(api, q="example", match="prefix") == []
    assert values(api, q="amber", match="prefix", kind="sha256") == []


def test_prefix_follows_clearance(api: Api) -> None:
    assert values(api, "reader", q="amber", match="prefix") == []
    assert values(api, "partner", q="amber", match="prefix") == ["amber.example"]


def test_exact_finds_only_the_whole_value(api: Api) -> None:
    assert values(api, q="Evil.Example", match="exact") == ["evil.example"]
    assert values(api, q="evil", match="exact") == []
    assert values(api, "clear-reader", q="red.example", match="exact") == []


@pytest.mark.parametrize("q", ["xam", "MBER-S", "le", "e", "example", "r.ex", "strict.example", "nothing-like-it"])
def test_contains_matches_a_plain_substring_test(api: Api, q: str) -> None:
    everything = values(api, limit="1000")
    expected = sorted(v for v in everything if q.lower() in v.lower())
    assert sorted(values(api, q=q, limit="1000")) == expected


@pytest.mark.parametrize("match", ["contains", "prefix", "exact"])
def test_paging_visits_each_match_once(api: Api, match: str) -> None:
    q = {"contains": "example", "prefix": "a", "exact": "evil.example"}[match]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = search(api, q=q, match=match, limit="2", **({"cursor": cursor} if cursor else {}))
        seen += [i["value"] for i in page["indicators"]]  # type: ignore[attr-defined]
        cursor = page["next_cursor"]  # type: ignore[assignment]
        if cursor is None:
            break
    expected = {"contains": ALL_DOMAINS, "prefix": {"amber.example", "amber-strict.example"}}
    assert sorted(seen) == sorted(expected.get(match, {"evil.example"}))


def test_search_paging_is_stable_while_indicators_are_added(api: Api) -> None:
    first = search(api, q="example", limit="3")
    store = open_store(api.kb)
    try:
        added = tuple(make_indicator("domain", f"new{i}.example", source="vendor-a") for i in range(5))
        store.import_batch(ImportBatch(indicators=added))
    finally:
        store.close()
    seen = [i["value"] for i in first["indicators"]]  # type: ignore[attr-defined]
    cursor = first["next_cursor"]
    while cursor is not None:
        page = search(api, q="example", limit="3", cursor=str(cursor))
        seen += [i["value"] for i in page["indicators"]]  # type: ignore[attr-defined]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) and set(seen) >= ALL_DOMAINS
    assert {f"new{i}.example" for i in range(5)} <= set(seen)  # added after the first page: rows come after


def test_a_cursor_fits_only_the_search_that_gave_it(api: Api) -> None:
    cursor = search(api, q="a", match="prefix", limit="1")["next_cursor"]
    assert isinstance(cursor, str)
    for params in ({"q": "example", "match": "contains"}, {"q": "a", "match": "exact"}, {}):
        response = api.client.get(
            "/api/indicators", params={**params, "cursor": cursor}, headers=api.headers("red-reader")
        )
        assert response.status_code == 400 and response.json()["error"]["where"] == "cursor", params
    for forged in ("not base64!", "bm90IGpzb24=", "WyJpZCIsIDFd"):  # ..., "not json", ["id", 1]
        response = api.client.get("/api/indicators", params={"cursor": forged}, headers=api.headers("red-reader"))
        assert response.status_code == 400 and response.json()["error"]["where"] == "cursor"


def test_unknown_match_is_refused_by_name(api: Api) -> None:
    response = api.client.get("/api/indicators", params={"q": "a", "match": "regex"}, headers=api.headers("reader"))
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["query", "match"]


@pytest.mark.parametrize("q", ["\U0010ffff", "a\U0010ffff", "\ud7ff", "%", "_", '"', "a\"b'c"])
def test_odd_prefixes_and_phrases_are_just_text(api: Api, q: str) -> None:
    assert values(api, q=q, match="prefix") == []
    assert values(api, q=q) == []


@pytest.mark.parametrize("q", ["00\x00", "\x00abc"])
def test_a_nul_in_a_substring_search_is_refused_by_name(api: Api, q: str) -> None:
    response = api.client.get("/api/indicators", params={"q": q}, headers=api.headers("red-reader"))
    assert response.status_code == 400 and response.json()["error"]["where"] == "q"


def test_the_page_written_without_pydantic_is_what_its_schema_says(api: Api) -> None:
    page = search(api, q="example", limit="3")
    assert IndicatorPage.model_validate(page).model_dump(mode="json") == page
    assert page["next_cursor"] and len(page["indicators"]) == 3  # type: ignore[arg-type]
    indicator = page["indicators"][0]  # type: ignore[index]
    assert indicator["kind"] == "domain" and indicator["tlp"] in {t.value for t in TLP} and indicator["pattern"]
