"""Entry point: the command group, shared options, and the one place errors become exit codes."""

from __future__ import annotations

import enum
import importlib
import json
import sys
from pathlib import Path
from typing import Any

import click

from heistwatch.config import data_folder, default_kb
from heistwatch.errors import HeistwatchError, InputError, NotFoundError, StoreError
from heistwatch.kb.open import is_postgres, open_store, parse_target
from heistwatch.kb.store import KnowledgeStore


class Exit(enum.IntEnum):
    """Exit codes of the `heistwatch` command."""

    OK = 0
    FAILED = 1
    USAGE = 2  # click's own code for bad arguments
    BAD_INPUT = 3
    NOT_FOUND = 4
    STORE = 5


def echo_json(data: Any) -> None:
    """Write data as JSON to stdout."""
    click.echo(json.dumps(data, indent=2, default=str))


def open_kb(ctx: click.Context) -> KnowledgeStore:
    """The knowledge base the user chose (a file or a PostgreSQL URL), refusing one that has not been built."""
    return open_store(ctx.obj["kb"])


def kb_folder(ctx: click.Context) -> Path:
    """The folder beside the knowledge base, for state files (the default data folder for a server)."""
    target = ctx.obj["kb"]
    return data_folder() if is_postgres(target) else Path(target).parent


# Each top-level command: the modules that register it (and its subcommands), imported when the command is used,
# and the first paragraph of its help, which `heistwatch --help` lists without importing them (a test keeps the two
# equal to the commands' own).
_COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "actor": (
        ("actor",),
        "Claims per source, combined view, techniques and software of an actor, campaign or family NAME.",
    ),
    "attribute": (("attribute",), "Rank the knowledge base's actors (and an unknown actor) given EVIDENCE."),
    "demo": (
        ("demo",),
        "Build the knowledge base, resolve the names, ingest the report, attribute the case, trace the theft.",
    ),
    "export": (
        ("export",),
        "Share the knowledge base: STIX, MISP, ATT&CK Navigator, indicator feeds, YARA and Sigma rule packs.",
    ),
    "hunt": (
        ("hunt", "hunt_domains", "hunt_files", "hunt_mail", "hunt_sigma"),
        "Search the exchange's own data for the campaign.",
    ),
    "ingest": (
        ("ingest",),
        "Extract indicators, named actors and malware, and ATT&CK techniques from reports, and store them.",
    ),
    "kb": (("kb",), "Build and inspect the knowledge base."),
    "serve": (("serve",), "Serve the REST API and TAXII 2.1 (localhost only unless the token store holds users)."),
    "trace": (
        ("trace", "trace_cluster", "trace_load", "trace_spark"),
        "Follow stolen funds through a ledger to the services that can freeze them.",
    ),
}


class _LazyGroup(click.Group):
    """Imports a command's modules only when it is asked for: `heistwatch kb` need not load the web server, and
    `heistwatch --help` loads none."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        for module in _COMMANDS.get(cmd_name, ((), ""))[0]:
            importlib.import_module(f"heistwatch.cli.{module}")
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, click.Command(name, help=_COMMANDS[name][1]).get_short_help_str(limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=_LazyGroup)
@click.option(
    "--kb",
    "kb",
    default=None,
    help="Knowledge base file or postgresql:// URL (default: $HEISTWATCH_KB or ~/.local/share/heistwatch/kb.sqlite).",
)
@click.version_option(package_name="heistwatch")
@click.pass_context
def cli(ctx: click.Context, kb: str | None) -> None:
    """Defend an exchange against state-sponsored theft campaigns, from lure to laundering."""
    ctx.obj = {"kb": parse_target(kb or default_kb())}


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; map heistwatch errors to named exit codes with one clear line on stderr."""
    try:
        code = cli.main(args=argv, prog_name="heistwatch", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)  # a command's ctx.exit(code): click returns it when not in standalone mode
    except click.exceptions.Abort:
        sys.exit(Exit.FAILED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except HeistwatchError as exc:
        click.echo(f"heistwatch: error: {exc}", err=True)
        code = (
            Exit.NOT_FOUND
            if isinstance(exc, NotFoundError)
            else Exit.BAD_INPUT
            if isinstance(exc, InputError)
            else Exit.STORE
            if isinstance(exc, StoreError)
            else Exit.FAILED
        )
        sys.exit(code)
