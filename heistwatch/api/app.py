"""The FastAPI app: the REST API and the TAXII 2.1 server over one knowledge base, with tokens, TLP and audit."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from heistwatch.api import records, taxii
from heistwatch.api.audit import AuditLog, Clock
from heistwatch.api.auth import TokenStore
from heistwatch.api.catalog import Catalog
from heistwatch.api.context import ApiState, KnowledgeBases
from heistwatch.api.markings import SourceLevels
from heistwatch.errors import InputError, NotFoundError, StoreError
from heistwatch.kb.open import StoreTarget, open_store
from heistwatch.web import pages

DEFAULT_MAX_BODY = 8 * 1024 * 1024


def create_app(
    kb: StoreTarget,
    token_store_path: Path,
    *,
    catalog_path: Path | None = None,
    open_access: bool = False,
    max_body: int = DEFAULT_MAX_BODY,
    clock: Clock | None = None,
) -> FastAPI:
    """The API over the knowledge base at `kb` (a file or a PostgreSQL URL); users, audit log and source levels
    live in `token_store_path`.

    `open_access` answers requests without a token as the local operator: only for a server bound to loopback
    with no users yet (see `heistwatch.api.server`). The catalog TAXII pages from defaults to a file beside the
    token store.
    """
    open_store(kb).close()  # refuses, naming it, a knowledge base not built or not reachable
    tokens = TokenStore(token_store_path)
    levels = SourceLevels(token_store_path)
    catalog = Catalog(kb, catalog_path or default_catalog_path(token_store_path), levels, clock=clock)
    catalog.refresh()
    state = ApiState(
        kb=KnowledgeBases(kb),
        tokens=tokens,
        audit=AuditLog(token_store_path, clock=clock),
        levels=levels,
        catalog=catalog,
        open_access=open_access,
        max_body=max_body,
    )

    app = FastAPI(
        title="heistwatch",
        version=metadata.version("heistwatch"),
        description="Threat intelligence on the campaigns against an exchange: indicators, actors and the claims "
        "each source makes about them, ingested reports, and a TAXII 2.1 server. Every record carries a TLP 2.0 "
        "marking, enforced on every read. Authenticate with `Authorization: Bearer <token>`.",
    )
    app.state.heistwatch = state
    app.include_router(records.router)
    app.include_router(taxii.router)
    app.include_router(pages.router)
    app.add_middleware(BodyLimit, max_bytes=max_body)
    app.add_exception_handler(InputError, _bad_input)
    app.add_exception_handler(NotFoundError, _not_found)
    app.add_exception_handler(StoreError, _store_problem)
    app.add_exception_handler(HTTPException, _http_problem)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    return app


def default_catalog_path(token_store_path: Path) -> Path:
    """Where the catalog lives by default: beside the token store."""
    return token_store_path.with_name(f"{token_store_path.stem}.catalog.sqlite")


def sync_catalog(kb: StoreTarget, token_store_path: Path) -> None:
    """Bring the default catalog up to date with the knowledge base (what `create_app` does first)."""
    open_store(kb).close()
    levels = SourceLevels(token_store_path)
    try:
        catalog = Catalog(kb, default_catalog_path(token_store_path), levels)
        try:
            catalog.refresh()
        finally:
            catalog.close()
    finally:
        levels.close()


def _error(request: Request, status: int, where: str, problem: str, headers: dict[str, str] | None = None) -> Response:
    """The error body: TAXII's error message under /taxii2, `{"error": {where, problem}}` elsewhere."""
    if request.url.path.startswith("/taxii2"):
        body: dict[str, Any] = {
            "title": f"{where}: {problem}"[:200],
            "description": problem,
            "http_status": str(status),
        }
        return Response(json.dumps(body), status, headers, media_type=taxii.TAXII_MEDIA_TYPE)
    return JSONResponse({"error": {"where": where, "problem": problem}}, status, headers)


async def _bad_input(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InputError)
    return _error(request, 400, exc.where, exc.problem)


async def _not_found(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotFoundError)
    return _error(request, 404, "path", f"no {exc.what} that you may read")


async def _store_problem(request: Request, exc: Exception) -> Response:
    return _error(request, 503, "knowledge base", str(exc))


async def _http_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _error(request, exc.status_code, "request", str(exc.detail), dict(exc.headers or {}))


async def _invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if request.url.path.startswith("/taxii2"):
        first = exc.errors()[0] if exc.errors() else {"loc": ["request"], "msg": "invalid"}
        return _error(request, 400, ".".join(str(p) for p in first["loc"]), str(first["msg"]))
    return await request_validation_exception_handler(request, exc)


class BodyLimit:
    """Refuse (413) a request body larger than `max_bytes`, by its Content-Length or as it streams in."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise HTTPException(413, f"the body is larger than the {self.max_bytes} byte limit")
            return message

        await self.app(scope, counted, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = f"the body is larger than the {self.max_bytes} byte limit"
        request = Request(scope, receive)
        await _error(request, 413, "request body", problem)(scope, receive, send)
