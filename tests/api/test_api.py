"""The REST API in-process: every TLP rule, writes that are audited, bad input refused with the data untouched."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from heistwatch.kb.open import StoreTarget, is_postgres
from heistwatch.model import TLP
from tests.api.conftest import Api, make_api, marked_domain


def kb_digest(kb: StoreTarget) -> str:
    """A digest of every row of the knowledge base (a file or a PostgreSQL schema): equal digests, untouched data."""
    if is_postgres(kb):
        return _pg_digest(str(kb))
    db = sqlite3.connect(kb)
    try:
        return hashlib.sha256("\n".join(db.iterdump()).encode()).hexdigest()
    finally:
        db.close()


def _pg_digest(dsn: str) -> str:
    """Every row of every table of the schema, its revision included."""
    digest = hashlib.sha256()
    with psycopg.connect(dsn) as db:
        tables = db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1"
        ).fetchall()
        for (table,) in tables:
            rows = db.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table))).fetchall()
            digest.update(repr((table, sorted(map(repr, rows)))).encode())
    return digest.hexdigest()


def domains(api: Api, user: str, **params: str) -> set[str]:
    response = api.client.get("/api/indicators", params={"kind": "domain", **params}, headers=api.headers(user))
    assert response.status_code == 200, response.text
    return {i["value"] for i in response.json()["indicators"]}


EVERY_LEVEL = {marked_domain(t) for t in TLP}


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("clear-reader", {TLP.CLEAR}),
        ("reader", {TLP.CLEAR, TLP.GREEN}),
        ("amber-reader", {TLP.CLEAR, TLP.GREEN, TLP.AMBER}),
        ("partner", {TLP.CLEAR, TLP.GREEN, TLP.AMBER}),
        ("red-reader", set(TLP)),
    ],
)
def test_indicators_shown_by_clearance(api: Api, user: str, expected: set[TLP]) -> None:
    assert domains(api, user) & EVERY_LEVEL == {marked_domain(t) for t in expected}


def test_red_never_reaches_a_reader_without_red_clearance(api: Api) -> None:
    for user in ("clear-reader", "reader", "amber-reader", "partner", "analyst"):
        assert marked_domain(TLP.RED) not in domains(api, user, q="red")
    assert marked_domain(TLP.RED) in domains(api, "red-reader", q="red")


def test_amber_strict_stays_inside_the_organisation(tmp_path: Path, api: Api) -> None:
    strict = marked_domain(TLP.AMBER_STRICT)
    assert strict in domains(api, "red-reader")
    assert strict not in domains(api, "partner")
    # even a partner given a high clearance by hand in the file is held at AMBER
    db = sqlite3.connect(tmp_path / "tokens.sqlite")
    db.execute("UPDATE users SET clearance = 'red' WHERE name = 'partner'")
    db.commit()
    db.close()
    assert strict not in domains(api, "partner") and marked_domain(TLP.RED) not in domains(api, "partner")


def test_relationship_is_held_at_the_level_of_what_it_ties(api: Api) -> None:
    actors = api.client.get("/api/actors", params={"q": "cryptocore"}, headers=api.headers("reader")).json()
    (actor,) = actors["actors"]
    seen = api.client.get(f"/api/actors/{actor['id']}", headers=api.headers("reader")).json()
    assert [u["name"] for u in seen["uses"]] == ["Spearphishing Attachment"]  # not the AMBER+STRICT malware
    inside = api.client.get(f"/api/actors/{actor['id']}", headers=api.headers("red-reader")).json()
    assert {u["name"] for u in inside["uses"]} == {"Spearphishing Attachment", "CageyChameleon"}
    claims = {c["other_name"]: c["tlp"] for s in seen["claims_by_source"] for c in s["claims"]}
    assert claims == {"Lazarus Group": "green"}  # a CLEAR claim about a GREEN actor is GREEN
    hidden = api.client.get(f"/api/actors/{actor['id']}", headers=api.headers("clear-reader")).json()
    assert hidden["claims_by_source"] == []


def test_a_hidden_actor_is_not_found(api: Api) -> None:
    listed = api.client.get("/api/actors", params={"q": "lazarus"}, headers=api.headers("reader")).json()["actors"]
    (lazarus,) = listed
    assert lazarus["tlp"] == "green"
    response = api.client.get(f"/api/actors/{lazarus['id']}", headers=api.headers("clear-reader"))
    assert response.status_code == 404
    assert api.client.get("/api/actors", params={"q": "lazarus"}, headers=api.headers("clear-reader")).json() == {
        "actors": [],
        "next_cursor": None,
    }


def test_paging_with_a_cursor_visits_each_indicator_once(api: Api) -> None:
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = api.client.get("/api/indicators", params=params, headers=api.headers("red-reader")).json()
        seen += [i["value"] for i in page["indicators"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(EVERY_LEVEL | {"evil.example"})


@pytest.mark.parametrize("q", ["' OR 1=1 --", "%", "_", "evil.example'; DROP TABLE indicators; --", '"', "\\"])
def test_sql_injection_in_search_is_just_text(api: Api, q: str) -> None:
    before = kb_digest(api.kb)
    response = api.client.get("/api/indicators", params={"q": q}, headers=api.headers("red-reader"))
    assert response.status_code == 200 and response.json()["indicators"] == []
    assert kb_digest(api.kb) == before
    assert domains(api, "red-reader", q="EXAMPLE") == EVERY_LEVEL | {"evil.example"}


def test_unknown_kind_is_refused_by_name(api: Api) -> None:
    response = api.client.get("/api/indicators", params={"kind": "shoe"}, headers=api.headers("reader"))
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["query", "kind"]


REPORT = "# Fake trading firm\n\nThe lure pointed to tradefirm-jobs[.]com and dropped a LNK file (T1566.001).\n"


def post_report(api: Api, user: str, tlp: str, text: str = REPORT) -> dict[str, object]:
    body = {"name": "lure.md", "format": "md", "text": text, "tlp": tlp}
    response = api.client.post("/api/reports", json=body, headers=api.headers(user))
    assert response.status_code == 201, response.text
    result: dict[str, object] = response.json()
    return result


def test_ingested_report_keeps_its_marking_and_is_audited(api: Api) -> None:
    result = post_report(api, "analyst", "amber")
    assert result["indicators_stored"] == 1
    assert "tradefirm-jobs.com" in domains(api, "amber-reader")
    assert "tradefirm-jobs.com" not in domains(api, "reader")
    titles = [r["title"] for r in api.client.get("/api/reports", headers=api.headers("reader")).json()["reports"]]
    assert titles == []
    (report,) = api.client.get("/api/reports", headers=api.headers("amber-reader")).json()["reports"]
    assert report["tlp"] == "amber" and report["title"] == "Fake trading firm"
    detail = api.client.get(f"/api/reports/{report['id']}", headers=api.headers("amber-reader")).json()
    assert {f["value"] for f in detail["findings"]} >= {"tradefirm-jobs.com", "T1566.001"}
    assert api.client.get(f"/api/reports/{report['id']}", headers=api.headers("reader")).status_code == 404
    entry = api.client.get("/api/audit", headers=api.headers("admin")).json()["entries"][0]
    assert (entry["user"], entry["action"], entry["target"]) == ("analyst", "ingest-report", report["id"])
    assert entry["detail"]["tlp"] == "amber"


def test_a_report_without_indicators_keeps_its_marking(api: Api) -> None:
    post_report(api, "red-analyst", "red", "# Internal note\n\nThe Lazarus Group was seen again.\n")
    assert api.client.get("/api/reports", headers=api.headers("amber-reader")).json()["reports"] == []
    (report,) = api.client.get("/api/reports", headers=api.headers("red-reader")).json()["reports"]
    assert report["tlp"] == "red"


def test_ingesting_again_never_lowers_the_marking(api: Api) -> None:
    post_report(api, "analyst", "amber")
    again = post_report(api, "analyst", "clear")
    assert again["report"]["tlp"] == "amber"  # type: ignore[index]
    assert "tradefirm-jobs.com" not in domains(api, "reader")


def test_marking_above_own_clearance_is_refused(api: Api) -> None:
    before = kb_digest(api.kb)
    body = {"name": "lure.md", "text": REPORT, "tlp": "red"}
    assert api.client.post("/api/reports", json=body, headers=api.headers("analyst")).status_code == 403
    assert kb_digest(api.kb) == before


@pytest.mark.parametrize(
    "body",
    [
        {"name": "lure.pdf", "format": "pdf", "text": REPORT},
        {"name": "lure.md", "text": ""},
        {"name": "../../etc/passwd", "text": REPORT},
        {"name": "lure.md", "text": REPORT, "tlp": "white"},
        {"text": REPORT},
        {"name": "lure.md", "text": 42},
    ],
)
def test_bad_report_is_a_4xx_and_changes_nothing(api: Api, body: dict[str, object]) -> None:
    before = kb_digest(api.kb)
    response = api.client.post("/api/reports", json=body, headers=api.headers("analyst"))
    assert response.status_code == 422
    assert kb_digest(api.kb) == before
    assert api.client.get("/api/audit", headers=api.headers("admin")).json()["entries"] == []


def test_oversized_body_is_413_and_changes_nothing(tmp_path: Path, small_kb: Path) -> None:
    api = make_api(tmp_path, small_kb, max_body=4096)
    before = kb_digest(small_kb)
    body = {"name": "big.txt", "text": "a" * 5000 + " tradefirm-jobs.com"}
    response = api.client.post("/api/reports", json=body, headers=api.headers("analyst"))
    assert response.status_code == 413 and "4096" in response.json()["error"]["problem"]
    chunks = (json.dumps(body).encode()[i : i + 1000] for i in range(0, 6000, 1000))  # no Content-Length
    streamed = api.client.post(
        "/api/stix", content=chunks, headers={**api.headers("analyst"), "Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert kb_digest(small_kb) == before


def bundle(*objects: dict[str, object]) -> dict[str, object]:
    return {"type": "bundle", "id": "bundle--2f3c1a4e-0d3b-4c8a-9a47-3f0c1d2e4b5a", "objects": list(objects)}


def indicator(value: str, marking: TLP = TLP.CLEAR, **extra: object) -> dict[str, object]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--" + hashlib.md5(value.encode()).hexdigest()[:8] + "-1111-4111-8111-111111111111",
        "created": "2024-01-01T00:00:00.000Z",
        "modified": "2024-01-01T00:00:00.000Z",
        "pattern": f"[domain-name:value = '{value}']",
        "pattern_type": "stix",
        "valid_from": "2024-01-01T00:00:00Z",
        "object_marking_refs": [marking.stix_marking_id],
        **extra,
    }


def test_stix_import_is_stored_visible_and_audited(api: Api) -> None:
    response = api.client.post("/api/stix", json=bundle(indicator("imported.example")), headers=api.headers("analyst"))
    assert response.status_code == 201 and response.json()["stored"] == 1
    assert "imported.example" in domains(api, "reader")
    entry = api.client.get("/api/audit", headers=api.headers("admin")).json()["entries"][0]
    assert (entry["user"], entry["action"], entry["detail"]["stored"]) == ("analyst", "import-stix", 1)


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        (b"{not json", "not JSON"),
        (json.dumps({"type": "report"}).encode(), "not a STIX bundle"),
        (json.dumps(bundle(indicator("a.example", created="yesterday"))).encode(), "indicator--"),
        (json.dumps(bundle(indicator("a.example"), {"type": "indicator", "id": "nope"})).encode(), "invalid STIX"),
        (
            json.dumps(
                bundle(
                    {
                        "type": "relationship",
                        "spec_version": "2.1",
                        "id": "relationship--3f0c1d2e-4b5a-4c8a-9a47-2f3c1a4e0d3b",
                        "created": "2024-01-01T00:00:00.000Z",
                        "modified": "2024-01-01T00:00:00.000Z",
                        "relationship_type": "uses",
                        "source_ref": "intrusion-set--3f0c1d2e-4b5a-4c8a-9a47-2f3c1a4e0d3b",
                        "target_ref": "malware--3f0c1d2e-4b5a-4c8a-9a47-2f3c1a4e0d3b",
                    }
                )
            ).encode(),
            "unknown object",
        ),
    ],
)
def test_malformed_stix_is_a_named_400_and_changes_nothing(api: Api, payload: bytes, named: str) -> None:
    before = kb_digest(api.kb)
    headers = {**api.headers("analyst"), "Content-Type": "application/json"}
    response = api.client.post("/api/stix", content=payload, headers=headers)
    assert response.status_code == 400, response.text
    assert named in response.json()["error"]["problem"] + response.json()["error"]["where"]
    assert kb_digest(api.kb) == before


def test_stix_import_cannot_mark_above_or_overwrite_beyond_clearance(api: Api) -> None:
    before = kb_digest(api.kb)
    red = bundle(indicator("secret.example", TLP.RED))
    assert api.client.post("/api/stix", json=red, headers=api.headers("analyst")).status_code == 403
    red_id = next(
        i["id"]
        for i in api.client.get("/api/indicators", params={"q": "red."}, headers=api.headers("red-reader")).json()[
            "indicators"
        ]
    )
    downgrade = indicator("red.example", TLP.CLEAR)
    downgrade["id"] = red_id
    response = api.client.post("/api/stix", json=bundle(downgrade), headers=api.headers("analyst"))
    assert response.status_code == 403 and "not cleared" in response.json()["error"]["problem"]
    assert kb_digest(api.kb) == before


def test_admin_raises_a_source_level(api: Api) -> None:
    assert "evil.example" in domains(api, "reader")
    response = api.client.put("/api/sources/vendor-a/tlp", json={"tlp": "amber"}, headers=api.headers("admin"))
    assert response.status_code == 200
    assert domains(api, "reader") & (EVERY_LEVEL | {"evil.example"}) == set()
    assert "evil.example" in domains(api, "amber-reader")
    entry = api.client.get("/api/audit", headers=api.headers("admin")).json()["entries"][0]
    assert entry["action"] == "set-source-level" and entry["detail"] == {"from": "clear", "to": "amber"}
    missing = api.client.put("/api/sources/nobody/tlp", json={"tlp": "red"}, headers=api.headers("admin"))
    assert missing.status_code == 404


def test_openapi_spec_is_served(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    assert {"/api/indicators", "/api/actors/{actor_id}", "/api/reports", "/api/stix"} <= set(spec["paths"])
    assert "/taxii2/api/collections/{collection_id}/objects/" in spec["paths"]
