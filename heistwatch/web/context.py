"""What a page request works with, on top of the API's: a browser-friendly login, the cases, the user's view."""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from heistwatch.api.auth import Role, User
from heistwatch.api.catalog import Catalog
from heistwatch.api.context import ApiState, api_state, current_catalog, current_user, server_state
from heistwatch.web.cases import CaseStore
from heistwatch.web.view import ReaderView

_cases_lock = threading.Lock()


def page_user(request: Request) -> User:
    """The API's user check, but a 401 asks for Basic credentials (name and token) so a browser shows a login."""
    try:
        return current_user(request)
    except HTTPException as exc:
        if exc.status_code != 401:
            raise
        raise HTTPException(401, exc.detail, headers={"WWW-Authenticate": 'Basic realm="heistwatch"'}) from None


def page_analyst(user: Annotated[User, Depends(page_user)]) -> User:
    """The page user, if their role may write (analyst or admin); else 403."""
    if not user.role.includes(Role.ANALYST):
        raise HTTPException(403, f"{user.name} is a {user.role.value}; this needs the {Role.ANALYST.value} role")
    return user


def case_store(request: Request) -> CaseStore:
    """The app's cases, in the server's state file beside its users and audit log; opened on first use."""
    app_state = request.app.state
    with _cases_lock:
        store: CaseStore | None = getattr(app_state, "heistwatch_cases", None)
        if store is None:
            store = CaseStore(api_state(request).tokens.path)
            app_state.heistwatch_cases = store
    return store


def reader_view(
    user: Annotated[User, Depends(page_user)],
    state: Annotated[ApiState, Depends(server_state)],
    catalog: Annotated[Catalog, Depends(current_catalog)],
) -> ReaderView:
    """The knowledge base as the requesting user may see it."""
    return ReaderView(state.kb.get(), catalog, state.levels.all(), user)


State = Annotated[ApiState, Depends(server_state)]
PageUser = Annotated[User, Depends(page_user)]
Analyst = Annotated[User, Depends(page_analyst)]
Fresh = Annotated[Catalog, Depends(current_catalog)]
Cases = Annotated[CaseStore, Depends(case_store)]
View = Annotated[ReaderView, Depends(reader_view)]
