"""Running the API: where it may listen, and with whom it talks.

Secure by default: a server without users answers only on loopback (as the local operator, who can read the
knowledge base file anyway); on any other interface it refuses to start until a token store holds users.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import uvicorn

from heistwatch.api.app import DEFAULT_MAX_BODY, create_app
from heistwatch.api.auth import TokenStore
from heistwatch.errors import InputError


def is_loopback(host: str) -> bool:
    """Whether `host` names the loopback interface (a host name other than localhost counts as not)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def open_access(host: str, token_store_path: Path) -> bool:
    """Whether requests without a token are answered: only on loopback with no users; InputError where refused."""
    users = []
    if token_store_path.exists():
        store = TokenStore(token_store_path)
        try:
            users = store.users()
        finally:
            store.close()
    if users:
        return False
    if is_loopback(host):
        return True
    raise InputError(
        "--host",
        f"refusing to listen on {host} without a token store holding users ({token_store_path});"
        " create one with `heistwatch serve token add NAME --role reader`",
    )


def run_server(
    kb_path: Path, token_store_path: Path, *, host: str, port: int, max_body: int = DEFAULT_MAX_BODY
) -> None:
    """Serve the API with uvicorn until interrupted."""
    unauthenticated = open_access(host, token_store_path)
    app = create_app(kb_path, token_store_path, open_access=unauthenticated, max_body=max_body)
    uvicorn.run(app, host=host, port=port, log_level="info")
