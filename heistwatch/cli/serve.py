"""`heistwatch serve`: the REST API and TAXII 2.1 server; `heistwatch serve token ...`: its users and tokens."""

from __future__ import annotations

import os
from pathlib import Path

import click

from heistwatch.api.auth import Role, TokenStore
from heistwatch.api.server import run_server
from heistwatch.cli.main import cli, echo_json
from heistwatch.model import TLP


def default_token_path() -> Path:
    """$HEISTWATCH_TOKENS, else tokens.sqlite in the XDG data folder beside the default knowledge base."""
    if os.environ.get("HEISTWATCH_TOKENS"):
        return Path(os.environ["HEISTWATCH_TOKENS"])
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data_home / "heistwatch" / "tokens.sqlite"


_TOKENS = click.option(
    "--tokens",
    "tokens",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Token store: users, audit log, source levels (default: $HEISTWATCH_TOKENS or ~/.local/share/heistwatch).",
)


@cli.group(invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option(
    "--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Server processes (one per core)."
)
@click.option("--access-log", is_flag=True, help="Log every request (writes and exports are audited anyway).")
@_TOKENS
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, access_log: bool, tokens: Path | None) -> None:
    """Serve the REST API and TAXII 2.1 (localhost only unless the token store holds users)."""
    if ctx.invoked_subcommand is None:
        path = tokens or default_token_path()
        run_server(ctx.obj["kb"], path, host=host, port=port, workers=workers, access_log=access_log)


@serve.group()
def token() -> None:
    """Manage the API's users and their tokens."""


@token.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.READER.value, show_default=True)
@click.option(
    "--clearance",
    type=click.Choice([t.value for t in TLP]),
    default=TLP.GREEN.value,
    show_default=True,
    help="The most restricted TLP level the user may read.",
)
@click.option("--partner", metavar="ORG", help="The user belongs to a partner organisation (reads at most AMBER).")
@_TOKENS
@click.option("--json", "as_json", is_flag=True, help="Print the user and token as JSON.")
def add(name: str, role: str, clearance: str, partner: str | None, tokens: Path | None, as_json: bool) -> None:
    """Create a user and print their token: it is shown this once and only its hash is kept."""
    store = TokenStore(tokens or default_token_path())
    try:
        secret = store.add(name, Role(role), TLP(clearance), partner=partner)
    finally:
        store.close()
    if as_json:
        echo_json({"name": name, "role": role, "clearance": clearance, "partner": partner, "token": secret})
    else:
        click.echo(secret)
        click.echo(
            f"{name}: {role}, cleared for TLP:{clearance.upper()}; keep the token now, it is not stored", err=True
        )


@token.command("list")
@_TOKENS
@click.option("--json", "as_json", is_flag=True, help="Print the users as JSON.")
def list_users(tokens: Path | None, as_json: bool) -> None:
    """List the users (never their tokens)."""
    store = TokenStore(tokens or default_token_path())
    try:
        users = store.users()
    finally:
        store.close()
    if as_json:
        echo_json(
            [
                {"name": u.name, "role": u.role.value, "clearance": u.clearance.value, "partner": u.partner}
                for u in users
            ]
        )
    else:
        for u in users:
            click.echo(f"{u.name}\t{u.role.value}\t{u.clearance.label}\t{u.partner or 'ours'}")


@token.command("revoke")
@click.argument("name")
@_TOKENS
def revoke(name: str, tokens: Path | None) -> None:
    """Remove a user and their token."""
    store = TokenStore(tokens or default_token_path())
    try:
        store.revoke(name)
    finally:
        store.close()
    click.echo(f"revoked {name}")
