"""TAXII 2.1 (OASIS, 2021): discovery, one API root, collections, objects, object versions and manifests.

Collections: `all` (everything the user may read) and one per TLP level. A user sees only the collections
and objects their clearance allows, and every page of objects leaves an entry in the audit log. Paging follows
the spec: `limit`, then `next` with the `more` flag; filters `added_after`, `match[id]`, `match[type]`,
`match[version]` and `match[spec_version]`. The knowledge base keeps one version of each object.
"""

from __future__ import annotations

import datetime
import json
import re
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from heistwatch.api.auth import User
from heistwatch.api.catalog import Catalog, Entry, Page
from heistwatch.api.catalog import Query as CatalogQuery
from heistwatch.api.context import ApiState, authenticated, current_catalog, server_state
from heistwatch.api.markings import readable
from heistwatch.errors import InputError
from heistwatch.model import TLP

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"
STIX_MEDIA_TYPE = "application/stix+json;version=2.1"
MAX_PAGE = 1000
_NAMESPACE = uuid.UUID("0b8f2b1e-6c1d-5d43-9a57-4c1f6f0e2a10")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z")


@dataclass(frozen=True)
class Collection:
    """A TAXII collection: the objects marked with one of `levels` (None: every level)."""

    key: str
    title: str
    description: str
    levels: frozenset[TLP] | None

    @property
    def id(self) -> str:
        """A stable UUID for the collection."""
        return str(uuid.uuid5(_NAMESPACE, self.key))

    def levels_for(self, user: User) -> frozenset[TLP]:
        """The levels of this collection the user may read."""
        allowed = readable(user.clearance, internal=user.internal)
        return allowed if self.levels is None else allowed & self.levels


COLLECTIONS = [
    Collection("all", "heistwatch knowledge base", "Every object you are cleared to read.", None),
    *(
        Collection(f"tlp-{t.value}", f"heistwatch {t.label}", f"The objects marked {t.label}.", frozenset({t}))
        for t in TLP
    ),
]


async def check_accept(request: Request) -> None:
    """Refuse (406) a client whose Accept header allows neither TAXII 2.1 JSON nor any type."""
    header = request.headers.get("accept")
    if header and not any(_accepts(part) for part in header.split(",")):
        raise HTTPException(406, f"this server sends {TAXII_MEDIA_TYPE}")


def _accepts(media_range: str) -> bool:
    kind, *params = (p.strip().lower() for p in media_range.split(";"))
    if kind in {"*/*", "application/*"}:
        return True
    versions = [p.partition("=")[2] for p in params if p.startswith("version=")]
    return kind == "application/taxii+json" and versions in ([], ["2.1"])


Reader = Annotated[User, Depends(authenticated)]
State = Annotated[ApiState, Depends(server_state)]
Fresh = Annotated[Catalog, Depends(current_catalog)]
router = APIRouter(prefix="/taxii2", tags=["taxii"], dependencies=[Depends(check_accept)])


def taxii(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A TAXII JSON response."""
    return Response(json.dumps(body), status, headers, media_type=TAXII_MEDIA_TYPE)


@router.get("/")
async def discovery(request: Request, user: Reader) -> Response:
    """The server's discovery resource."""
    root = f"{request.base_url}taxii2/api/"
    return taxii(
        {
            "title": "heistwatch TAXII 2.1",
            "description": "The heistwatch knowledge base: actors, alias claims, malware, techniques, indicators.",
            "default": root,
            "api_roots": [root],
        }
    )


@router.get("/api/")
async def api_root(user: Reader, state: State) -> Response:
    """The one API root."""
    return taxii(
        {
            "title": "heistwatch",
            "description": "Collections by TLP 2.0 level, and one with everything you may read.",
            "versions": [TAXII_MEDIA_TYPE],
            "max_content_length": state.max_body,
        }
    )


@router.get("/api/collections/")
async def collections(user: Reader) -> Response:
    """The collections the user may read."""
    return taxii({"collections": [_describe(c) for c in COLLECTIONS if c.levels_for(user)]})


def _describe(collection: Collection) -> dict[str, Any]:
    return {
        "id": collection.id,
        "title": collection.title,
        "description": collection.description,
        "can_read": True,
        "can_write": False,
        "media_types": [STIX_MEDIA_TYPE],
    }


def _collection(collection_id: str, user: User) -> Collection:
    found = next((c for c in COLLECTIONS if c.id == collection_id and c.levels_for(user)), None)
    if found is None:
        raise HTTPException(404, f"no collection {collection_id} you may read")
    return found


@router.get("/api/collections/{collection_id}/")
async def collection(collection_id: str, user: Reader) -> Response:
    """One collection."""
    return taxii(_describe(_collection(collection_id, user)))


Limit = Annotated[str | None, Query(description=f"Objects per page (at most {MAX_PAGE}).")]
Next = Annotated[str | None, Query(alias="next", max_length=500, description="`next` of the previous page.")]
AddedAfter = Annotated[str | None, Query(description="Only objects added after this timestamp.")]
MatchId = Annotated[str | None, Query(alias="match[id]", description="Comma-separated object ids.")]
MatchType = Annotated[str | None, Query(alias="match[type]", description="Comma-separated STIX types.")]
MatchVersion = Annotated[
    str | None, Query(alias="match[version]", description="`last` (default), `first`, `all` or timestamps.")
]
MatchSpec = Annotated[str | None, Query(alias="match[spec_version]", description="Only `2.1` is held.")]


@dataclass(frozen=True)
class _Filters:
    """The paging and filter parameters of an objects or manifest request (TAXII 2.1, section 3.4)."""

    limit: str | None = None
    after: str | None = None
    added_after: str | None = None
    ids: str | None = None
    types: str | None = None
    versions: str | None = None
    spec_versions: str | None = None


async def _filters(
    limit: Limit = None,
    next_: Next = None,
    added_after: AddedAfter = None,
    match_id: MatchId = None,
    match_type: MatchType = None,
    match_version: MatchVersion = None,
    match_spec: MatchSpec = None,
) -> _Filters:
    return _Filters(limit, next_, added_after, match_id, match_type, match_version, match_spec)


Filters = Annotated[_Filters, Depends(_filters)]


@dataclass(frozen=True)
class _Request:
    """A parsed objects or manifest request."""

    query: CatalogQuery
    limit: int
    after: str | None
    empty: bool


def _parse(collection: Collection, user: User, f: _Filters) -> _Request:
    version_list = _split(f.versions)
    query = CatalogQuery(
        levels=collection.levels_for(user),
        ids=_split(f.ids),
        types=_split(f.types),
        versions=[v if v in {"first", "last", "all"} else _timestamp(v, "match[version]") for v in version_list]
        if version_list
        else None,
        added_after=_timestamp(f.added_after, "added_after") if f.added_after is not None else None,
    )
    empty = f.spec_versions is not None and "2.1" not in (_split(f.spec_versions) or [])
    return _Request(query, _limit(f.limit), f.after, empty)


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value is not None else None


def _limit(value: str | None) -> int:
    if value is None:
        return MAX_PAGE
    if not value.isdigit() or int(value) < 1:
        raise InputError("limit", f"{value!r} is not a positive whole number")
    return min(int(value), MAX_PAGE)


def _timestamp(value: str, where: str) -> str:
    """A STIX timestamp at the millisecond precision the catalog keeps (truncating keeps `>` exact)."""
    if not _TIMESTAMP.fullmatch(value):
        raise InputError(where, f"{value!r} is not a timestamp like 2024-01-31T12:00:00.000Z")
    try:
        moment = datetime.datetime.fromisoformat(value[:23].rstrip("Z") + "+00:00")
    except ValueError as exc:
        raise InputError(where, f"{value!r}: {exc}") from exc
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _page(catalog: Catalog, request: _Request) -> Page:
    if request.empty:
        return Page([], False, None)
    return catalog.page(request.query, limit=request.limit, after=request.after)


def _dates(entries: list[Entry]) -> dict[str, str]:
    if not entries:
        return {}
    return {"X-TAXII-Date-Added-First": entries[0].added, "X-TAXII-Date-Added-Last": entries[-1].added}


def _envelope(page: Page, items: str) -> str:
    head = {"more": page.more, **({"next": page.next} if page.next else {})}
    text = json.dumps(head)
    return f'{text[:-1]}, "objects": [{items}]}}' if page.entries else text


@router.get("/api/collections/{collection_id}/objects/")
async def objects(collection_id: str, user: Reader, state: State, catalog: Fresh, filters: Filters) -> Response:
    """A page of the collection's objects in the order they were added."""
    found = _collection(collection_id, user)
    page = _page(catalog, _parse(found, user, filters))
    await state.audit.record_async(
        user.name, "taxii-export", found.key, {"objects": len(page.entries), "more": page.more, "next": filters.after}
    )
    body = _envelope(page, ",".join(e.json for e in page.entries))
    return Response(body, 200, _dates(page.entries), media_type=TAXII_MEDIA_TYPE)


@router.get("/api/collections/{collection_id}/objects/{object_id}/")
async def get_object(
    collection_id: str,
    object_id: str,
    user: Reader,
    state: State,
    catalog: Fresh,
    limit: Limit = None,
    next_: Next = None,
    added_after: AddedAfter = None,
    match_version: MatchVersion = None,
    match_spec: MatchSpec = None,
) -> Response:
    """The versions of one object the filters select (one: the knowledge base keeps the current version)."""
    found = _collection(collection_id, user)
    parsed = _parse(found, user, _Filters(limit, next_, added_after, object_id, None, match_version, match_spec))
    if catalog.get(object_id, found.levels_for(user)) is None:
        raise HTTPException(404, f"no object {object_id} in this collection that you may read")
    page = _page(catalog, parsed)
    await state.audit.record_async(
        user.name, "taxii-export", found.key, {"objects": len(page.entries), "id": object_id}
    )
    body = _envelope(page, ",".join(e.json for e in page.entries))
    return Response(body, 200, _dates(page.entries), media_type=TAXII_MEDIA_TYPE)


@router.get("/api/collections/{collection_id}/objects/{object_id}/versions/")
async def versions(collection_id: str, object_id: str, user: Reader, catalog: Fresh) -> Response:
    """The versions held of one object."""
    found = _collection(collection_id, user)
    entry = catalog.get(object_id, found.levels_for(user))
    if entry is None:
        raise HTTPException(404, f"no object {object_id} in this collection that you may read")
    return taxii({"more": False, "versions": [entry.version]}, headers=_dates([entry]))


@router.get("/api/collections/{collection_id}/manifest/")
async def manifest(collection_id: str, user: Reader, catalog: Fresh, filters: Filters) -> Response:
    """A page of the collection's manifest: id, date added, version and media type of each object."""
    found = _collection(collection_id, user)
    page = _page(catalog, _parse(found, user, filters))
    records = [
        {"id": e.id, "date_added": e.added, "version": e.version, "media_type": STIX_MEDIA_TYPE} for e in page.entries
    ]
    body = _envelope(page, ",".join(json.dumps(r) for r in records))
    return Response(body, 200, _dates(page.entries), media_type=TAXII_MEDIA_TYPE)
