"""What a request works with: the server's stores, the knowledge base for this thread, and the requesting user."""

from __future__ import annotations

import base64
import binascii
import os
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from heistwatch.api.audit import AuditLog
from heistwatch.api.auth import LOCAL_OPERATOR, Role, TokenStore, User
from heistwatch.api.catalog import Catalog
from heistwatch.api.markings import SourceLevels
from heistwatch.ingest.techniques import TechniqueTagger
from heistwatch.kb.open import StoreTarget, is_postgres, open_store
from heistwatch.kb.store import KnowledgeStore


class KnowledgeBases:
    """One open knowledge base per worker thread: a file, reopened when a rebuild swaps a new one in, or a
    PostgreSQL database (the API's writes go there too), reconnected when its connection was lost."""

    def __init__(self, target: StoreTarget) -> None:
        """Serve the knowledge base at `target` (a file path or a PostgreSQL URL)."""
        self.target = target
        self._local = threading.local()

    def get(self) -> KnowledgeStore:
        """This thread's store on the current file or a live connection."""
        identity = self._identity()
        store: KnowledgeStore | None = getattr(self._local, "store", None)
        if store is None or self._local.identity != identity or getattr(store, "broken", False):
            if store is not None:
                store.close()
            store = open_store(self.target, must_exist=False)
            self._local.store, self._local.identity = store, identity
        return store

    def _identity(self) -> tuple[int, int] | None:
        """The file's device and inode (None for a server)."""
        if is_postgres(self.target):
            return None
        stat = os.stat(self.target)
        return stat.st_dev, stat.st_ino


@dataclass
class ApiState:
    """Everything the API's handlers share."""

    kb: KnowledgeBases
    tokens: TokenStore
    audit: AuditLog
    levels: SourceLevels
    catalog: Catalog
    open_access: bool
    max_body: int
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    _tagger: TechniqueTagger | None = None

    def tagger(self) -> TechniqueTagger:
        """The packaged technique model, loaded on the first report ingested."""
        with self.write_lock:
            if self._tagger is None:
                self._tagger = TechniqueTagger.load()
            return self._tagger


def api_state(request: Request) -> ApiState:
    """The state of the app serving this request."""
    state: ApiState = request.app.state.heistwatch
    return state


async def server_state(request: Request) -> ApiState:
    """`api_state` as a dependency that runs on the event loop (a sync one would take a hop to a thread)."""
    return api_state(request)


def current_user(request: Request) -> User:
    """The user whose token the request carries (Bearer, or Basic with the token as password); else 401."""
    state = api_state(request)
    header = request.headers.get("authorization")
    if not header:
        if state.open_access:
            return LOCAL_OPERATOR
        raise _unauthorized("this server needs an API token (Authorization: Bearer <token>)")
    scheme, _, value = header.partition(" ")
    name: str | None = None
    token = value.strip()
    if scheme.lower() == "basic":
        try:
            name, _, token = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise _unauthorized("malformed Basic credentials") from None
    elif scheme.lower() != "bearer":
        raise _unauthorized(f"unsupported authorization scheme {scheme!r}; use Bearer")
    user = state.tokens.authenticate(token)
    if user is None or (name is not None and name != user.name):
        raise _unauthorized("unknown or revoked token")
    return user


async def authenticated(request: Request) -> User:
    """`current_user` on the event loop: an indexed lookup of microseconds costs less than a hop to a thread."""
    return current_user(request)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": 'Bearer realm="heistwatch"'})


def requires(role: Role) -> Callable[[User], Coroutine[Any, Any, User]]:
    """A dependency that lets through users whose role includes `role`, and answers 403 to the others."""

    async def check(user: User = Depends(authenticated)) -> User:  # noqa: B008  (FastAPI's dependency idiom)
        if not user.role.includes(role):
            raise HTTPException(403, f"{user.name} is a {user.role.value}; this needs the {role.value} role")
        return user

    return check


async def current_catalog(request: Request) -> Catalog:
    """The catalog, first brought up to date if the knowledge base changed and no refresh is already running: the
    check is cheap and runs on the event loop, a sync (rare, long) runs in a thread."""
    catalog = api_state(request).catalog
    if catalog.stale():
        await run_in_threadpool(catalog.refresh, wait=False)
    return catalog
