"""The web UI: server-rendered pages over the knowledge base and the cases, each with a JSON twin.

Every page answers `?format=json` from the same handler with the data the page is drawn from (as datasette
does). The pages reuse the REST API's handlers and dependencies, so tokens, roles and TLP are enforced exactly
as the API enforces them; a browser logs in with Basic credentials (user name, and the API token as password).
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import RedirectResponse, Response
from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]

from heistwatch.api import records
from heistwatch.api.auth import Role
from heistwatch.api.markings import readable
from heistwatch.errors import NotFoundError
from heistwatch.model.indicators import KINDS, normalize_indicator
from heistwatch.share.report_html import report_figures, sankey_flow
from heistwatch.web import endpoints
from heistwatch.web.actor_exports import FORMATS
from heistwatch.web.actor_graph import actor_graph, graph_figure
from heistwatch.web.context import Cases, Fresh, PageUser, State, View
from heistwatch.web.render import Format, json_block, respond
from heistwatch.web.report_sentences import finding_sentences
from heistwatch.web.technique_matrix import technique_matrix

router = APIRouter()
router.include_router(endpoints.router)

AsFormat = Annotated[Format, Query(description="html (the page) or json (its twin).")]
Text = Annotated[str | None, Query(max_length=500)]
Cursor = Annotated[str | None, Query(max_length=4000)]
_STATIC = ("style.css", "pages.js")
_PLOTLY = "plotly.min.js"
_KIND_PATTERN = f"^({'|'.join(sorted(KINDS))})$"


@router.get("/ui", include_in_schema=False)
def home(user: PageUser, cases: Cases, format: AsFormat = "html") -> Response:
    """Who is logged in, and where to go."""
    levels = readable(user.clearance, internal=user.internal)
    shown = [c for c in cases.summaries() if c.tlp in levels]
    data = {"me": records.me(user), "cases": shown[:10], "kinds": sorted(KINDS)}
    return respond("home.html.j2", data, format)


@router.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    """The UI's home."""
    return RedirectResponse("/ui")


@router.get("/ui/actors", include_in_schema=False)
def actors(
    user: PageUser, state: State, catalog: Fresh, q: Text = None, cursor: Cursor = None, format: AsFormat = "html"
) -> Response:
    """Actors (one record per source) the user may read, filtered by a name or alias."""
    page = records.list_actors(user=user, state=state, catalog=catalog, q=q, limit=100, cursor=cursor)
    return respond("actors.html.j2", {"q": q, **page.model_dump()}, format)


@router.get("/ui/actors/{actor_id}", include_in_schema=False)
def actor(
    actor_id: str, user: PageUser, state: State, catalog: Fresh, view: View, format: AsFormat = "html"
) -> Response:
    """An actor: claims per source, a technique matrix by tactic, what it uses, and its downloads."""
    detail = records.get_actor(actor_id=actor_id, user=user, state=state, catalog=catalog)
    matrix = technique_matrix(view, actor_id)
    exports = {fmt: f"/api/actors/{actor_id}/export/{fmt}" for fmt in FORMATS}
    data = {**detail.model_dump(), "techniques_by_tactic": matrix, "exports": exports}
    return respond("actor.html.j2", data, format)


@router.get("/ui/reports", include_in_schema=False)
def reports(user: PageUser, state: State, catalog: Fresh, format: AsFormat = "html") -> Response:
    """The ingested reports the user may read."""
    listed = records.list_reports(user=user, state=state, catalog=catalog)
    return respond("reports.html.j2", listed.model_dump(), format)


@router.get("/ui/reports/{report_id}", include_in_schema=False)
def report(report_id: str, user: PageUser, state: State, catalog: Fresh, format: AsFormat = "html") -> Response:
    """A report's findings in text order, each with its sentence where the knowledge base keeps it."""
    detail = records.get_report(report_id=report_id, user=user, state=state, catalog=catalog)
    store = state.kb.get()
    found = store.findings(report_id)
    own: dict[tuple[str, str], Any] = {}
    for f in found:
        if f.role == "indicator" and f.kind in KINDS and (f.kind, f.value) not in own:
            try:
                value = normalize_indicator(f.kind, f.value)
            except ValueError:
                continue
            # The user may read the report, and so every indicator of its source (the report is held at the most
            # restricted of them): its sentences may be shown.
            matches = [i for i in store.indicators(kind=f.kind, value=value) if i.source == detail.report.source]
            if matches:
                own[(f.kind, f.value)] = matches[0]
    sentences = finding_sentences(found, own)
    data = detail.model_dump()
    data["findings"] = [{**f, "sentence": sentences.get(f["id"])} for f in data["findings"]]
    return respond("report.html.j2", data, format)


@router.get("/ui/indicators", include_in_schema=False)
def indicators(
    user: PageUser,
    catalog: Fresh,
    q: Text = None,
    kind: Annotated[str | None, Query(pattern=_KIND_PATTERN)] = None,
    cursor: Cursor = None,
    format: AsFormat = "html",
) -> Response:
    """Indicator search: values containing the text, of one kind, that the user may read."""
    page = records.search_indicators(user=user, catalog=catalog, q=q, kind=kind, limit=100, cursor=cursor)
    data = {"q": q, "kind": kind, **page.model_dump()}
    return respond("indicators.html.j2", data, format, page={"kinds": sorted(KINDS)})


@router.get("/ui/cases", include_in_schema=False)
def cases_page(user: PageUser, cases: Cases, format: AsFormat = "html") -> Response:
    """The cases the user may read, and (for analysts) a form to load one."""
    levels = readable(user.clearance, internal=user.internal)
    shown = [c for c in cases.summaries() if c.tlp in levels]
    page = {"may_post": user.role.includes(Role.ANALYST), "levels": [t.value for t in levels]}
    return respond("cases.html.j2", {"cases": shown}, format, page=page)


@router.get("/ui/cases/{case_id}", include_in_schema=False)
def case_page(case_id: str, user: PageUser, cases: Cases, format: AsFormat = "html") -> Response:
    """One case: the investigation report with its timeline, attribution and fund-flow figures."""
    case = endpoints.readable_case(cases, case_id, user)
    data = {"case": case.summary, "report": case.report.to_dict()}
    page = {"r": case.report, "figures": report_figures(case.report)}
    return respond("case.html.j2", data, format, page=page)


@router.get("/ui/graph", include_in_schema=False)
def graph(
    user: PageUser,
    cases: Cases,
    view: View,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    case: Annotated[str | None, Query(max_length=200)] = None,
    format: AsFormat = "html",
) -> Response:
    """The graph around an actor (claims, campaigns, malware, indicators) and a case's flow of funds."""
    data: dict[str, Any] = {"actor": None, "case": None}
    page: dict[str, Any] = {"network": None, "flows": []}
    if actor:
        drawn = actor_graph(view, actor)
        if not drawn.nodes:
            raise NotFoundError(f"actor {actor}")
        data["actor"] = drawn
        page["network"] = json_block(graph_figure(drawn).to_plotly_json())
    if case:
        found = endpoints.readable_case(cases, case, user)
        flow = found.report.flow
        data["case"] = {
            "summary": found.summary,
            "flows": [
                {"chain": a.chain, "asset": a.asset, "policy": p, "sankey": sankey_flow(a, p)}
                for a in (flow.assets if flow else ())
                for p in (flow.policies if flow else ())
                if any(r.policy == p for r in a.routes)
            ],
        }
        page["flows"] = report_figures(found.report)["flow"]
    if not actor and not case:
        raise HTTPException(400, "give ?actor=ID and/or ?case=ID")
    return respond("graph.html.j2", data, format, page=page)


@router.get("/ui/static/{name}", include_in_schema=False)
def static(name: str) -> Response:
    """The UI's own stylesheet and script, and Plotly's bundle from the installed package (no CDN)."""
    if name == _PLOTLY:
        return Response(_plotly_js(), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})
    if name not in _STATIC:
        raise NotFoundError(f"static file {name}")
    text = resources.files("heistwatch.web").joinpath("static", name).read_text("utf-8")
    media = "text/css" if name.endswith(".css") else "text/javascript"
    return Response(text, media_type=media, headers={"Cache-Control": "max-age=3600"})


@functools.cache
def _plotly_js() -> str:
    """Plotly's JavaScript bundle, read from the package once."""
    return str(get_plotlyjs())
