"""The REST API's request and response bodies, which FastAPI turns into the OpenAPI spec."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

TlpValue = Literal["clear", "green", "amber", "amber+strict", "red"]


class Problem(BaseModel):
    """A refused request: which input, and what is wrong with it."""

    where: str
    problem: str


class ErrorBody(BaseModel):
    """The body of every 4xx the REST API sends on purpose."""

    error: Problem


class Me(BaseModel):
    """The user a request was made as."""

    name: str
    role: str
    clearance: TlpValue
    partner: str | None


class IndicatorOut(BaseModel):
    """An indicator with its provenance and effective marking."""

    id: str
    kind: str
    value: str
    pattern: str
    source: str | None
    confidence: int | None
    first_seen: str | None
    last_seen: str | None
    description: str
    reference: str | None
    tlp: TlpValue
    added: str


class IndicatorPage(BaseModel):
    """One page of an indicator search; pass `next_cursor` as `cursor` for the next."""

    indicators: list[IndicatorOut]
    next_cursor: str | None


class ActorOut(BaseModel):
    """An actor (intrusion set) as one source records it."""

    id: str
    name: str
    source: str
    aliases: list[str]
    external_id: str | None
    reference: str | None
    confidence: int | None
    tlp: TlpValue


class ActorPage(BaseModel):
    """One page of actors; pass `next_cursor` as `cursor` for the next."""

    actors: list[ActorOut]
    next_cursor: str | None


class ClaimOut(BaseModel):
    """What one source says relates this actor to another record."""

    id: str
    relation: str
    direction: Literal["subject", "object"]
    other_id: str
    other_name: str
    other_source: str
    likelihood: str | None
    said: str | None
    date: str | None
    reference: str | None
    title: str | None
    note: str | None
    tlp: TlpValue


class SourceClaims(BaseModel):
    """A source and its claims about the actor."""

    source: str
    source_name: str
    version: str | None
    claims: list[ClaimOut]


class UsedOut(BaseModel):
    """A technique, malware or tool the actor uses, per the linked record's source."""

    id: str
    type: str
    name: str
    external_id: str | None
    source: str


class ActorDetail(BaseModel):
    """An actor with the claims about it grouped by the source that makes them, and what it uses."""

    actor: ActorOut
    claims_by_source: list[SourceClaims]
    uses: list[UsedOut]


class ReportOut(BaseModel):
    """An ingested report and its effective marking."""

    id: str
    sha256: str
    name: str
    title: str
    format: str
    chars: int
    ingested: str
    source: str
    tlp: TlpValue


class ReportList(BaseModel):
    """Every report the user may read."""

    reports: list[ReportOut]


class FindingOut(BaseModel):
    """A fact found in a report, with its span."""

    id: str
    kind: str
    value: str
    role: str
    reason: str
    start: int
    end: int
    sentence_start: int
    sentence_end: int
    object_ids: list[str]
    score: float | None


class ReportDetail(BaseModel):
    """A report with its findings in text order."""

    report: ReportOut
    findings: list[FindingOut]


class ReportIn(BaseModel):
    """A threat report to ingest, as text, with the marking everything it yields is held at."""

    name: str = Field(min_length=1, max_length=200, pattern=r"^[^/\\\x00]+$", description="A file name, no path.")
    format: Literal["txt", "md", "adoc", "html"] = "txt"
    text: str = Field(min_length=1)
    tlp: TlpValue = "clear"


class IngestResult(BaseModel):
    """What ingesting a report stored."""

    report: ReportOut
    indicators_stored: int
    findings: int


class ImportResult(BaseModel):
    """What importing a STIX bundle stored, and the object types it passed over."""

    stored: int
    skipped: dict[str, int]


class SourceLevelIn(BaseModel):
    """The minimum marking of a source's records."""

    tlp: TlpValue


class SourceLevelOut(BaseModel):
    """A source and the minimum marking now in force for it."""

    source: str
    tlp: TlpValue


class AuditOut(BaseModel):
    """One audit entry."""

    id: int
    at: str
    user: str
    action: str
    target: str
    detail: dict[str, Any]


class AuditPage(BaseModel):
    """The newest audit entries first."""

    entries: list[AuditOut]
