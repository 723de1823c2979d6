"""The REST endpoints the UI adds: cases (post, list, read) and an actor's downloads (STIX, MISP, Navigator).

Cases and downloads follow the API's rules: analysts write, anyone reads what their clearance covers, and every
write and export goes to the audit log.
"""

from __future__ import annotations

import datetime
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from heistwatch.api.auth import User
from heistwatch.api.context import ApiState
from heistwatch.api.schemas import ErrorBody, TlpValue
from heistwatch.errors import InputError, NotFoundError
from heistwatch.model import TLP
from heistwatch.web.actor_exports import actor_download
from heistwatch.web.cases import Case, CaseStore, CaseSummary, parse_case_report
from heistwatch.web.context import Analyst, Cases, PageUser, State, View

router = APIRouter(prefix="/api", responses={400: {"model": ErrorBody}, 401: {}, 403: {}, 404: {"model": ErrorBody}})


class CaseOut(BaseModel):
    """A stored case: id, title, marking, who posted it and when, and when its report was generated."""

    id: str
    title: str
    tlp: TlpValue
    posted_by: str
    posted: str
    generated: str
    url: str


class CaseList(BaseModel):
    """The cases the user may read, newest first."""

    cases: list[CaseOut]


class CasePosted(BaseModel):
    """A case as stored, and whether it is new (the same report posted again is the same case)."""

    case: CaseOut
    created: bool


def case_out(summary: CaseSummary) -> CaseOut:
    """The API's form of a case summary."""
    s = summary
    return CaseOut(
        id=s.id,
        title=s.title,
        tlp=s.tlp.value,
        posted_by=s.posted_by,
        posted=s.posted,
        generated=s.generated,
        url=f"/ui/cases/{s.id}",
    )


def readable_case(cases: CaseStore, case_id: str, user: User) -> Case:
    """The case, if the user may read it; NotFoundError otherwise (the same answer as for no case at all)."""
    case = cases.get(case_id)
    if not user.may_read(case.summary.tlp):
        raise NotFoundError(f"case {case_id}")
    return case


@router.post(
    "/cases",
    tags=["cases"],
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "object", "description": "A CaseReport (report.json)."}}
            },
        }
    },
)
async def post_case(
    request: Request,
    user: Analyst,
    cases: Cases,
    state: State,
    tlp: Annotated[TlpValue, Query(description="The marking the case is held at.")] = "amber",
) -> Response:
    """Store an investigation report (`report.json` as `heistwatch demo` writes it) as a case (analyst)."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise HTTPException(415, "send the report as application/json")  # no form can post this from another site
    marking = TLP(tlp)
    if not user.may_read(marking):
        raise HTTPException(403, f"cannot mark above your clearance ({user.clearance.label})")
    raw = await request.body()
    return await run_in_threadpool(_store_case, raw, marking, user, cases, state)


def _store_case(raw: bytes, marking: TLP, user: User, cases: CaseStore, state: ApiState) -> Response:
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError("request body", f"not JSON: {exc}") from exc
    report = parse_case_report(data, "request body")
    summary, created = cases.put(report, marking, user.name, datetime.datetime.now(datetime.UTC))
    if not user.may_read(summary.tlp):
        raise HTTPException(403, f"this case is already held above your clearance ({user.clearance.label})")
    state.audit.record(user.name, "post-case", summary.id, {"title": summary.title, "tlp": summary.tlp.value})
    body = CasePosted(case=case_out(summary), created=created)
    return Response(body.model_dump_json(), 201 if created else 200, media_type="application/json")


@router.get("/cases", tags=["cases"])
def list_cases(user: PageUser, cases: Cases) -> CaseList:
    """The cases the user may read, newest first."""
    return CaseList(cases=[case_out(c) for c in cases.summaries() if user.may_read(c.tlp)])


@router.get("/cases/{case_id}", tags=["cases"])
def get_case(case_id: str, user: PageUser, cases: Cases) -> dict[str, Any]:
    """A case and its investigation report, as posted."""
    case = readable_case(cases, case_id, user)
    return {"case": case_out(case.summary).model_dump(), "report": case.report.to_dict()}


@router.get("/actors/{actor_id}/export/{fmt}", tags=["actors"])
def export_actor(actor_id: str, fmt: Literal["stix", "misp", "navigator"], view: View, state: State) -> Response:
    """An actor as a STIX 2.1 bundle, a MISP event or a Navigator layer, holding only what the user may read."""
    download = actor_download(view, actor_id, fmt)
    state.audit.record(view.user.name, f"export-{fmt}", actor_id, download.detail)
    disposition = f'attachment; filename="{download.filename}"'
    headers = {"Content-Disposition": disposition, "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    return Response(download.text, media_type=download.media_type, headers=headers)
