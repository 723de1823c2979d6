"""Every page and its JSON twin in-process: TLP on every page and download, 401/403, cases, escaping."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import stix2
from pymisp import MISPEvent
from stix2validator import ValidationOptions, validate_string

from heistwatch.model import TLP
from tests.api.conftest import Api, marked_domain
from tests.web.conftest import HOSTILE, hostile_actor_id

NOT_RED = ("clear-reader", "reader", "amber-reader", "partner", "analyst")
LURE_REPORT = "# Lure\n\nThe recruiter's lure pointed to tradefirm-jobs[.]com and dropped a LNK file (T1566.001).\n"


def get(web: Api, user: str, url: str, **params: str) -> Any:
    response = web.client.get(url, params=params or None, headers=web.headers(user))
    assert response.status_code == 200, (url, response.text)
    return response


def actor_id(web: Api, name: str) -> str:
    actors = get(web, "admin", "/ui/actors", q=name, format="json").json()["actors"]
    return str(next(a["id"] for a in actors if a["name"] == name))


def post_case(web: Api, user: str, body: str, tlp: str = "amber") -> Any:
    headers = {**web.headers(user), "Content-Type": "application/json"}
    return web.client.post("/api/cases", params={"tlp": tlp}, content=body, headers=headers)


def every_page(web: Api, case_id: str) -> list[str]:
    cryptocore = actor_id(web, "CryptoCore")
    return [
        "/ui",
        "/ui/actors",
        f"/ui/actors/{cryptocore}",
        "/ui/reports",
        "/ui/indicators?q=example",
        "/ui/cases",
        f"/ui/cases/{case_id}",
        f"/ui/graph?actor={cryptocore}",
        f"/ui/graph?case={case_id}",
    ]


def test_every_page_has_a_json_twin_with_the_same_records(web: Api, case_json: str) -> None:
    case_id = post_case(web, "admin", case_json, "clear").json()["case"]["id"]
    body = {"name": "lure.md", "format": "md", "text": LURE_REPORT, "tlp": "clear"}
    assert web.client.post("/api/reports", json=body, headers=web.headers("analyst")).status_code == 201
    for url in every_page(web, case_id):
        page = get(web, "admin", url)
        assert page.headers["content-type"].startswith("text/html")
        assert (
            page.headers["cache-control"] == "no-store"
            and "script-src 'self'" in page.headers["content-security-policy"]
        )
        twin = get(web, "admin", url + ("&" if "?" in url else "?") + "format=json")
        assert twin.headers["content-type"] == "application/json"
        names = re.findall(r'"(?:name|value|title|posted_by)": ?"([^"<&>]{3,})"', twin.text)
        assert names, url
        for name in names[:20]:
            assert name in page.text, (url, name)


def test_actor_page_twin_extends_the_api_answer(web: Api) -> None:
    cryptocore = actor_id(web, "CryptoCore")
    twin = get(web, "red-reader", f"/ui/actors/{cryptocore}", format="json").json()
    api = get(web, "red-reader", f"/api/actors/{cryptocore}").json()
    assert {k: twin[k] for k in api} == api
    (column,) = twin["techniques_by_tactic"]
    assert column["shortname"] == "initial-access" and column["cells"][0]["technique_id"] == "T1566.001"
    assert set(twin["exports"]) == {"stix", "misp", "navigator"}


@pytest.mark.parametrize("user", NOT_RED)
def test_a_red_record_never_appears_on_a_page_for_a_reader_without_red(web: Api, case_json: str, user: str) -> None:
    red_case = post_case(web, "admin", case_json, "red").json()["case"]["id"]
    cryptocore = actor_id(web, "CryptoCore")
    lazarus = actor_id(web, "Lazarus Group")
    pages = [*every_page(web, red_case)[:6], "/ui/indicators?q=d.exam", f"/ui/graph?actor={cryptocore}"]
    pages += [f"/api/actors/{cryptocore}/export/{fmt}" for fmt in ("stix", "misp", "navigator")]
    for url in pages:
        for fmt in ("html", "json"):
            response = web.client.get(url + ("&" if "?" in url else "?") + f"format={fmt}", headers=web.headers(user))
            if response.status_code == 404:  # a reader below GREEN does not see CryptoCore's neighbours at all
                continue
            assert response.status_code == 200, (url, response.text)
            text = response.text
            assert marked_domain(TLP.RED) not in text and "tlp-red" not in text and '"red"' not in text, url
            assert red_case not in text and "almost-certain" not in text, url
    assert web.client.get(f"/ui/cases/{red_case}", headers=web.headers(user)).status_code == 404
    if user != "clear-reader":
        lazarus_page = get(web, user, f"/ui/actors/{lazarus}").text
        assert "KP" not in lazarus_page  # the RED claim "Lazarus is attributed to KP"
    assert marked_domain(TLP.RED) in get(web, "red-reader", "/ui/indicators", q="red").text
    assert red_case in get(web, "red-reader", "/ui/cases").text


def test_amber_strict_stays_inside_the_organisation_on_pages_graph_and_downloads(web: Api) -> None:
    cryptocore = actor_id(web, "CryptoCore")
    urls = [f"/ui/actors/{cryptocore}", f"/ui/graph?actor={cryptocore}&format=json"]
    urls.append(f"/api/actors/{cryptocore}/export/stix")
    for url in urls:
        assert "CageyChameleon" not in get(web, "partner", url).text, url
        assert "CageyChameleon" in get(web, "red-reader", url).text, url
    assert "CageyChameleon" not in get(web, "partner", f"/api/actors/{cryptocore}/export/misp").text


def test_unauthenticated_requests_get_a_browser_login_and_wrong_roles_403(web: Api, case_json: str) -> None:
    for url in ("/ui", "/ui/actors", "/ui/cases", "/api/cases"):
        response = web.client.get(url)
        assert response.status_code == 401, url
        assert response.headers["www-authenticate"].startswith("Basic")
    bad = web.client.get("/ui/actors", headers={"Authorization": "Bearer hw_0000000000000000_" + "x" * 43})
    assert bad.status_code == 401
    assert web.client.get("/ui", auth=("reader", web.tokens["reader"])).status_code == 200  # Basic: name + token
    assert web.client.get("/ui", auth=("admin", web.tokens["reader"])).status_code == 401
    assert post_case(web, "reader", case_json).status_code == 403
    assert post_case(web, "analyst", case_json, "red").status_code == 403  # above the analyst's clearance
    assert get(web, "red-reader", "/api/cases").json() == {"cases": []}


def test_static_files_and_plotly_come_from_the_server(web: Api, case_json: str) -> None:
    plotly_js = web.client.get("/ui/static/plotly.min.js")
    assert plotly_js.status_code == 200 and "plotly" in plotly_js.text[:2000].lower() and len(plotly_js.text) > 1e6
    assert web.client.get("/ui/static/..%2Fcases.py").status_code == 404
    assert web.client.get("/ui/static/nothing.css").status_code == 404
    case_id = post_case(web, "admin", case_json).json()["case"]["id"]
    page = get(web, "admin", f"/ui/cases/{case_id}").text
    sources = re.findall(r'<(?:script|link)[^>]*(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith(("/ui/static/", "data:")) for s in sources)  # nothing from the network


def test_markup_in_records_and_cases_is_escaped(web: Api, case_json: str) -> None:
    case_id = post_case(web, "admin", case_json).json()["case"]["id"]
    pages = ["/ui/actors", f"/ui/actors/{hostile_actor_id()}", f"/ui/cases/{case_id}", "/ui/cases", "/ui"]
    pages.append(f"/ui/graph?actor={hostile_actor_id()}&case={case_id}")
    for url in pages:
        text = get(web, "admin", url).text
        assert HOSTILE not in text, url
        assert "&lt;img src=x onerror=alert(1)&gt;" in text or "\\u003cimg src=x" in text, url
    twin = get(web, "admin", f"/ui/cases/{case_id}", format="json").json()
    assert twin["case"]["title"] == "Case " + HOSTILE  # the twin carries the data as it is


def test_a_case_is_stored_once_audited_and_shown_with_its_figures(web: Api, case_json: str) -> None:
    first = post_case(web, "analyst", case_json, "green")
    assert first.status_code == 201 and first.json()["created"] is True
    again = post_case(web, "analyst", case_json, "amber")
    assert again.status_code == 200 and again.json()["created"] is False
    case = again.json()["case"]
    assert case["tlp"] == "amber"  # the most restricted marking it was given
    stored = get(web, "amber-reader", f"/api/cases/{case['id']}").json()
    assert stored["report"] == json.loads(case_json)
    assert web.client.get(f"/api/cases/{case['id']}", headers=web.headers("reader")).status_code == 404
    page = get(web, "amber-reader", f"/ui/cases/{case['id']}").text
    assert page.count('class="plotly-figure"') == 2  # the timeline and the Sankey of the one asset
    flow = get(web, "amber-reader", "/ui/graph", case=case["id"], format="json").json()["case"]["flows"]
    fifo = next(f for f in flow if f["policy"] == "fifo")["sankey"]
    into_services = sum(v for _, b, v in fifo["links"] if "svc-" in fifo["labels"][b])
    assert into_services == 1_000  # every unit stolen reaches a service in the hand-made ledger
    actions = [e["action"] for e in get(web, "admin", "/api/audit").json()["entries"]]
    assert actions.count("post-case") == 2


@pytest.mark.parametrize(
    ("body", "content_type", "status", "where"),
    [
        ("{not json", "application/json", 400, "request body"),
        ('{"title": "x"}', "application/json", 400, "request body"),
        ("{}", "text/plain", 415, "request"),
    ],
)
def test_bad_cases_are_refused_by_name_and_store_nothing(
    web: Api, body: str, content_type: str, status: int, where: str
) -> None:
    headers = {**web.headers("analyst"), "Content-Type": content_type}
    response = web.client.post("/api/cases", content=body, headers=headers)
    assert response.status_code == status and response.json()["error"]["where"] == where
    assert get(web, "admin", "/api/cases").json() == {"cases": []}


def test_wrong_fields_are_named(web: Api, case_json: str) -> None:
    data = json.loads(case_json)
    data["flow"]["assets"][0]["routes"][0]["amount"] = "lots"
    response = post_case(web, "analyst", json.dumps(data))
    assert response.status_code == 400 and "flow.assets.0.routes.0.amount" in response.json()["error"]["problem"]


def test_stix_download_parses_validates_and_is_audited(web: Api) -> None:
    cryptocore = actor_id(web, "CryptoCore")
    response = get(web, "reader", f"/api/actors/{cryptocore}/export/stix")
    assert response.headers["content-disposition"] == 'attachment; filename="CryptoCore.stix.json"'
    assert validate_string(response.text, ValidationOptions(strict=False)).is_valid
    bundle = stix2.parse(response.text, allow_custom=True)
    names = {getattr(o, "name", None) for o in bundle.objects}
    assert {"CryptoCore", "Lazarus Group", "Spearphishing Attachment"} <= names and "CageyChameleon" not in names
    markings = {m for o in bundle.objects for m in getattr(o, "object_marking_refs", [])}
    assert markings <= {TLP.CLEAR.stix_marking_id, TLP.GREEN.stix_marking_id}
    (entry, *_) = get(web, "admin", "/api/audit").json()["entries"]
    assert (entry["user"], entry["action"], entry["target"]) == ("reader", "export-stix", cryptocore)


def test_misp_and_navigator_downloads_load_in_their_models(web: Api) -> None:
    cryptocore = actor_id(web, "CryptoCore")
    event = MISPEvent()
    event.load(get(web, "amber-reader", f"/api/actors/{cryptocore}/export/misp").text)
    assert "evil.example" in {a.value for a in event.attributes}
    layer = get(web, "amber-reader", f"/api/actors/{cryptocore}/export/navigator").json()
    assert [t["techniqueID"] for t in layer["techniques"]] == ["T1566.001"]
    assert web.client.get(f"/api/actors/{cryptocore}/export/csv", headers=web.headers("admin")).status_code == 422


def test_hidden_actors_are_not_found_anywhere(web: Api) -> None:
    lazarus = actor_id(web, "Lazarus Group")  # GREEN
    for url in (f"/ui/actors/{lazarus}", f"/ui/graph?actor={lazarus}", f"/api/actors/{lazarus}/export/stix"):
        assert web.client.get(url, headers=web.headers("clear-reader")).status_code == 404, url
    assert web.client.get("/ui/graph", headers=web.headers("admin")).status_code == 400


def test_report_page_shows_findings_with_their_sentences(web: Api) -> None:
    body = {"name": "lure.md", "format": "md", "text": LURE_REPORT, "tlp": "green"}
    assert web.client.post("/api/reports", json=body, headers=web.headers("analyst")).status_code == 201
    (report,) = get(web, "reader", "/ui/reports", format="json").json()["reports"]
    twin = get(web, "reader", f"/ui/reports/{report['id']}", format="json").json()
    by_value = {f["value"]: f for f in twin["findings"]}
    sentence = "The recruiter's lure pointed to tradefirm-jobs[.]com and dropped a LNK file (T1566.001)."
    assert by_value["tradefirm-jobs.com"]["sentence"] == sentence
    assert by_value["T1566.001"]["sentence"] == sentence  # the technique shares the indicator's sentence
    page = get(web, "reader", f"/ui/reports/{report['id']}").text
    assert "The recruiter&#39;s lure pointed to" in page
    assert web.client.get(f"/ui/reports/{report['id']}", headers=web.headers("clear-reader")).status_code == 404
