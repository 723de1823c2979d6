"""Running the API: where it may listen, and with whom it talks.

Secure by default: a server without users answers only on loopback (as the local operator, who can read the
knowledge base file anyway); on any other interface it refuses to start until a token store holds users.

With several workers, uvicorn runs the app in that many processes on one socket, so the server uses more than
one core; each process has its own connections. The catalog is synced once before they start, and each finds it
current (see `heistwatch.api.catalog`).
"""

from __future__ import annotations

import gc
import ipaddress
import json
import os
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from heistwatch.api.app import DEFAULT_MAX_BODY, create_app, sync_catalog
from heistwatch.api.auth import TokenStore
from heistwatch.errors import InputError
from heistwatch.kb.open import StoreTarget, parse_target


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


_SETTINGS = "HEISTWATCH_SERVE_SETTINGS"  # how `run_server` tells uvicorn's worker processes what to serve


def run_server(
    kb: StoreTarget,
    token_store_path: Path,
    *,
    host: str,
    port: int,
    max_body: int = DEFAULT_MAX_BODY,
    workers: int = 1,
    access_log: bool = False,
) -> None:
    """Serve the API over the knowledge base at `kb` (a file or a PostgreSQL URL) in `workers` processes until
    interrupted.

    uvicorn's per-request access log is off unless asked for: writes and exports go to the audit log anyway,
    and a log line per request is work a loaded server would do on every request.
    """
    unauthenticated = open_access(host, token_store_path)
    if workers == 1:
        app = settled(create_app(kb, token_store_path, open_access=unauthenticated, max_body=max_body))
        uvicorn.run(app, host=host, port=port, log_level="info", access_log=access_log)
        return
    sync_catalog(kb, token_store_path)  # here, once: a worker that took minutes to start would be restarted
    settings = {"kb": str(kb), "tokens": str(token_store_path), "open": unauthenticated, "max_body": max_body}
    os.environ[_SETTINGS] = json.dumps(settings)
    uvicorn.run(
        f"{__name__}:worker_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=access_log,
    )


def worker_app() -> FastAPI:
    """The app of one worker process, from the settings `run_server` left in the environment."""
    settings = json.loads(os.environ[_SETTINGS])
    return settled(
        create_app(
            parse_target(settings["kb"]),
            Path(settings["tokens"]),
            open_access=settings["open"],
            max_body=settings["max_body"],
        )
    )


def settled(app: FastAPI) -> FastAPI:
    """The app, with what its start-up made hidden from the garbage collector (`gc.freeze`).

    A full collection would otherwise walk every object the process holds, the catalog's and token store's
    included, about 100 ms on a large knowledge base during which no connection of this process is answered;
    frozen, it walks only what requests have made since.
    """
    gc.collect()
    gc.freeze()
    return app
