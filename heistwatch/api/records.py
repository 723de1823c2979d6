"""The REST API: indicator search, actors with claims per source, reports with findings, and the writes.

Every record shown is filtered by the catalog's effective marking (see `markings`); a record the catalog does
not hold yet is not shown. Writes run in one transaction each, are refused before anything is stored when the
input is bad, and are written to the audit log.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Iterable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from heistwatch.api.auth import Role, User
from heistwatch.api.catalog import Catalog, Entry, Match
from heistwatch.api.context import ApiState, authenticated, current_catalog, requires, server_state
from heistwatch.api.markings import most_restrictive, readable, report_level
from heistwatch.api.schemas import (
    ActorDetail,
    ActorOut,
    ActorPage,
    AuditOut,
    AuditPage,
    ClaimOut,
    ErrorBody,
    FindingOut,
    ImportResult,
    IndicatorPage,
    IngestResult,
    Me,
    ReportDetail,
    ReportIn,
    ReportList,
    ReportOut,
    SourceClaims,
    SourceLevelIn,
    SourceLevelOut,
    UsedOut,
)
from heistwatch.errors import InputError, NotFoundError, StoreError
from heistwatch.ingest.analyze import Analyzer
from heistwatch.ingest.text import document_from_string
from heistwatch.model import TLP, Claim, Indicator, KBObject, ObjectType, Relationship, Report
from heistwatch.model.indicators import KINDS
from heistwatch.share.stix import bundle_to_batch

State = Annotated[ApiState, Depends(server_state)]
Reader = Annotated[User, Depends(authenticated)]
Analyst = Annotated[User, Depends(requires(Role.ANALYST))]
Admin = Annotated[User, Depends(requires(Role.ADMIN))]
Fresh = Annotated[Catalog, Depends(current_catalog)]
Limit = Annotated[int, Query(ge=1, le=1000, description="Items per page.")]
Cursor = Annotated[str | None, Query(max_length=300, description="`next_cursor` of the previous page.")]

_KIND_PATTERN = f"^({'|'.join(sorted(KINDS))})$"
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Bad input, named"},
    401: {"description": "No valid API token"},
    403: {"description": "Role or clearance too low"},
    413: {"description": "Body too large"},
}
router = APIRouter(prefix="/api", responses=_ERRORS)


@router.get("/me", tags=["users"])
def me(user: Reader) -> Me:
    """The user the request was made as."""
    return Me(name=user.name, role=user.role.value, clearance=user.clearance.value, partner=user.partner)


@router.get("/indicators", tags=["indicators"], name="search_indicators", response_model=IndicatorPage)
async def indicator_search(
    user: Reader,
    catalog: Fresh,
    q: Annotated[str | None, Query(max_length=500, description="Text to look for in the value, any case.")] = None,
    match: Annotated[
        Match,
        Query(
            description="How `q` is compared: the value `contains` it (3+ characters use a trigram index), "
            "starts with it (`prefix`), or is it (`exact`)."
        ),
    ] = Match.CONTAINS,
    kind: Annotated[
        str | None, Query(pattern=_KIND_PATTERN, description="One indicator kind: domain, sha256...")
    ] = None,
    limit: Limit = 100,
    cursor: Annotated[str | None, Query(max_length=4000, description="`next_cursor` of the previous page.")] = None,
) -> Response:
    """Indicators the user may read whose value matches `q`, through an index; the search text is only ever data.

    It runs on the event loop (an indexed query takes well under a millisecond) and writes its JSON with orjson:
    a hop to a thread and validating the page through pydantic cost many times the query.
    """
    page = search_page(user, catalog, q=q, match=match, kind=kind, limit=limit, cursor=cursor)
    return Response(orjson.dumps(page), media_type="application/json")


def search_page(
    user: User, catalog: Catalog, *, q: str | None, match: Match, kind: str | None, limit: int, cursor: str | None
) -> dict[str, Any]:
    """An `IndicatorPage` of the search as plain JSON data."""
    levels = readable(user.clearance, internal=user.internal)
    entries, after = catalog.search_indicators(levels, text=q, kind=kind, match=match, limit=limit, after=cursor)
    return {"indicators": [_indicator(e) for e in entries], "next_cursor": after}


def search_indicators(
    user: User,
    catalog: Catalog,
    q: str | None = None,
    match: Match = Match.CONTAINS,
    kind: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> IndicatorPage:
    """The search's page as its model (for the web view, which renders it)."""
    page = search_page(user, catalog, q=q, match=match, kind=kind, limit=limit, cursor=cursor)
    return IndicatorPage.model_validate(page)


def _indicator(entry: Entry) -> dict[str, Any]:
    """An `IndicatorOut` as plain JSON data."""
    sdo = orjson.loads(entry.json)
    given = sdo.get("x_heistwatch_indicator", {})
    refs = sdo.get("external_references") or [{}]
    return {
        "id": entry.id,
        "kind": given.get("kind", ""),
        "value": given.get("value", sdo.get("name", "")),
        "pattern": sdo["pattern"],
        "source": entry.source,
        "confidence": sdo.get("confidence"),
        "first_seen": given.get("first_seen"),
        "last_seen": given.get("last_seen"),
        "description": sdo.get("description", ""),
        "reference": refs[0].get("url"),
        "tlp": entry.tlp.value,
        "added": entry.added,
    }


@router.get("/actors", tags=["actors"])
def list_actors(
    user: Reader,
    state: State,
    catalog: Fresh,
    q: Annotated[str | None, Query(max_length=200, description="Text a name or alias contains, any case.")] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> ActorPage:
    """Actors (intrusion sets, one record per source) the user may read, by id."""
    actors = state.kb.get().objects(type=ObjectType.INTRUSION_SET)
    if q:
        needle = q.casefold()
        actors = [a for a in actors if any(needle in n.casefold() for n in (a.name, *a.aliases))]
    actors = [a for a in actors if cursor is None or a.id > cursor]
    shown = _visible(user, catalog, actors)
    page = shown[:limit]
    return ActorPage(actors=page, next_cursor=page[-1].id if len(shown) > limit else None)


def _visible(user: User, catalog: Catalog, objects: list[KBObject]) -> list[ActorOut]:
    """The objects the user may read, in order, with their effective markings."""
    levels = catalog.levels_of([o.id for o in objects])
    return [_actor(o, levels[o.id]) for o in objects if o.id in levels and user.may_read(levels[o.id])]


def _actor(obj: KBObject, tlp: TLP) -> ActorOut:
    return ActorOut(
        id=obj.id,
        name=obj.name,
        source=obj.source,
        aliases=list(obj.aliases),
        external_id=obj.external_id,
        reference=obj.reference,
        confidence=obj.confidence,
        tlp=tlp.value,
    )


@router.get("/actors/{actor_id}", tags=["actors"], responses={404: {"model": ErrorBody}})
def get_actor(actor_id: str, user: Reader, state: State, catalog: Fresh) -> ActorDetail:
    """An actor with what each source claims about it, and the techniques and software it uses."""
    store = state.kb.get()
    actor = store.get(actor_id)
    levels = catalog.levels_of([actor_id])
    if actor is None or actor.type is not ObjectType.INTRUSION_SET or not _may(user, levels, actor_id):
        raise NotFoundError(f"actor {actor_id}")
    claims = store.claims(about=[actor_id])
    uses = store.relationships(from_ids=[actor_id], type="uses")
    linked = {c.object_id if c.subject_id == actor_id else c.subject_id for c in claims} | {r.target_ref for r in uses}
    others = {o.id: o for o in store.objects(ids=linked)}
    levels = catalog.levels_of([*linked, *(c.id for c in claims), *(r.id for r in uses)])
    sources = {s.key: s for s in store.sources()}
    grouped: defaultdict[str, list[ClaimOut]] = defaultdict(list)
    for claim in claims:
        subject = claim.subject_id == actor_id
        other = others.get(claim.object_id if subject else claim.subject_id)
        if other is None or not (_may(user, levels, claim.id) and _may(user, levels, other.id)):
            continue
        grouped[claim.source].append(
            ClaimOut(
                id=claim.id,
                relation=claim.relation.value,
                direction="subject" if subject else "object",
                other_id=other.id,
                other_name=other.name,
                other_source=other.source,
                likelihood=claim.likelihood.value if claim.likelihood else None,
                said=claim.said,
                date=claim.date,
                reference=claim.reference,
                title=claim.title,
                note=claim.note,
                tlp=levels[claim.id].value,
            )
        )
    used = [
        UsedOut(id=o.id, type=o.type.value, name=o.name, external_id=o.external_id, source=o.source)
        for r in uses
        if (o := others.get(r.target_ref)) is not None and _may(user, levels, r.id) and _may(user, levels, o.id)
    ]
    return ActorDetail(
        actor=_actor(actor, catalog.levels_of([actor_id])[actor_id]),
        claims_by_source=[
            SourceClaims(
                source=key,
                source_name=sources[key].name if key in sources else key,
                version=sources[key].version if key in sources else None,
                claims=grouped[key],
            )
            for key in sorted(grouped)
        ],
        uses=sorted(used, key=lambda u: (u.type, u.external_id or "", u.name)),
    )


def _may(user: User, levels: dict[str, TLP], record_id: str) -> bool:
    """Whether the user may read a record; one the catalog does not hold yet is not shown."""
    return record_id in levels and user.may_read(levels[record_id])


@router.get("/reports", tags=["reports"])
def list_reports(user: Reader, state: State, catalog: Fresh) -> ReportList:
    """Every ingested report the user may read, oldest first."""
    marked = _report_levels(state, catalog, state.kb.get().reports())
    return ReportList(reports=[_report(r, t) for r, t in marked if user.may_read(t)])


def _report_levels(state: ApiState, catalog: Catalog, reports: Iterable[Report]) -> list[tuple[Report, TLP]]:
    """Each report with its marking: its source's level, raised to its most restricted indicator."""
    floors = state.levels.all()
    held = catalog.indicator_levels()
    return [(r, report_level(r, floors, held)) for r in reports]


def _report(report: Report, tlp: TLP) -> ReportOut:
    return ReportOut(**dataclasses.asdict(report), tlp=tlp.value)


@router.get("/reports/{report_id}", tags=["reports"], responses={404: {"model": ErrorBody}})
def get_report(report_id: str, user: Reader, state: State, catalog: Fresh) -> ReportDetail:
    """A report and its findings (indicators, mentions, named entities, techniques) in text order."""
    store = state.kb.get()
    found = [(r, t) for r, t in _report_levels(state, catalog, store.reports()) if r.id == report_id]
    if not found or not user.may_read(found[0][1]):
        raise NotFoundError(f"report {report_id}")
    report, tlp = found[0]
    findings = [
        FindingOut(**{**dataclasses.asdict(f), "object_ids": list(f.object_ids)}) for f in store.findings(report.id)
    ]
    return ReportDetail(report=_report(report, tlp), findings=findings)


@router.post("/reports", tags=["reports"], status_code=201, responses={409: {"model": ErrorBody}})
def ingest_report(body: ReportIn, user: Analyst, state: State) -> IngestResult:
    """Ingest a report's text: its indicators, named actors and techniques go into the knowledge base at `tlp`.

    The same document ingested again keeps the most restricted marking it was ever given.
    """
    requested = TLP(body.tlp)
    if not user.may_read(requested):
        raise HTTPException(403, f"cannot mark above your clearance ({user.clearance.label})")
    document = document_from_string(body.text, body.format, body.name)
    store = state.kb.get()
    analysis = Analyzer(store, state.tagger()).analyze(document)
    batch = analysis.batch
    key = batch.source.key
    marking = most_restrictive((requested, state.levels.get(key), state.catalog.indicator_levels().get(key, TLP.CLEAR)))
    if not user.may_read(marking):
        raise HTTPException(
            403, f"this document is already held at a level above your clearance ({user.clearance.label})"
        )
    state.levels.raise_to(batch.source.key, marking)  # before the write: a failed write leaves it stricter, not looser
    indicators = tuple(dataclasses.replace(i, tlp=most_restrictive((i.tlp, marking))) for i in batch.indicators)
    report = store.import_report(dataclasses.replace(batch, indicators=indicators))
    state.audit.record(
        user.name,
        "ingest-report",
        report.id,
        {"name": report.name, "sha256": report.sha256, "tlp": marking.value, "indicators": len(indicators)},
    )
    state.catalog.refresh()
    return IngestResult(
        report=_report(report, marking), indicators_stored=len(indicators), findings=len(batch.findings)
    )


@router.post(
    "/stix",
    tags=["stix"],
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object", "description": "A STIX 2.1 bundle."}}},
        }
    },
)
async def import_stix(request: Request, user: Analyst, state: State) -> ImportResult:
    """Import a STIX 2.1 bundle in one transaction: all of it, or (on any problem, named) none of it."""
    raw = await request.body()
    return await run_in_threadpool(_import_stix, raw, user, state)


def _import_stix(raw: bytes, user: User, state: ApiState) -> ImportResult:
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError("request body", f"not JSON: {exc}") from exc
    batch, skipped = bundle_to_batch(data, "request body")
    records: list[KBObject | Claim | Relationship | Indicator] = [
        *batch.objects,
        *batch.claims,
        *batch.relationships,
        *batch.indicators,
    ]
    floors = state.levels.all()
    above = [r.id for r in records if not user.may_read(most_restrictive((r.tlp, floors.get(r.source, TLP.CLEAR))))]
    if above:
        raise HTTPException(403, f"{len(above)} objects are marked above your clearance, e.g. {above[0]}")
    hidden = [oid for oid, tlp in state.catalog.levels_of([r.id for r in records]).items() if not user.may_read(tlp)]
    if hidden:
        raise HTTPException(403, f"would replace {len(hidden)} records you are not cleared for, e.g. {hidden[0]}")
    try:
        state.kb.get().import_batch(batch)
    except StoreError as exc:
        raise InputError("request body", str(exc)) from exc
    state.audit.record(user.name, "import-stix", "knowledge base", {"stored": len(batch), "skipped": skipped})
    state.catalog.refresh()
    return ImportResult(stored=len(batch), skipped=skipped)


@router.put("/sources/{source}/tlp", tags=["markings"], responses={404: {"model": ErrorBody}})
def set_source_level(source: str, body: SourceLevelIn, user: Admin, state: State) -> SourceLevelOut:
    """Hold every record of a source at least at a TLP level (admin)."""
    if source not in {s.key for s in state.kb.get().sources()}:
        raise NotFoundError(f"source {source}")
    before = state.levels.get(source)
    state.levels.set(source, TLP(body.tlp))
    state.audit.record(user.name, "set-source-level", source, {"from": before.value, "to": body.tlp})
    state.catalog.refresh(force=True)
    return SourceLevelOut(source=source, tlp=body.tlp)


@router.get("/audit", tags=["users"])
def read_audit(
    user: Admin,
    state: State,
    limit: Limit = 100,
    before: Annotated[int | None, Query(ge=1, le=2**62, description="Only entries older than this id.")] = None,
) -> AuditPage:
    """The newest writes and exports first (admin)."""
    entries = state.audit.entries(limit=limit, before=before)
    return AuditPage(entries=[AuditOut(**{**dataclasses.asdict(e), "detail": dict(e.detail)}) for e in entries])
