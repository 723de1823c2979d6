"""`heistwatch --help` lists every command without importing it, in the commands' own words."""

from __future__ import annotations

import subprocess
import sys

import click

from heistwatch.cli.main import _COMMANDS, cli


def test_listed_summaries_are_the_commands_own() -> None:
    ctx = click.Context(cli)
    for name, (_, summary) in _COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None, name
        assert click.Command(name, help=summary).get_short_help_str(200) == command.get_short_help_str(200), name
    assert set(click.Group.list_commands(cli, ctx)) == set(_COMMANDS)  # every registered command is listed


def test_help_imports_no_command_module() -> None:
    probe = (
        "import sys; from heistwatch.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('heistwatch.cli.') and m != 'heistwatch.cli.main'))"
    )
    output = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert "Commands:" in output and "trace " in output
    assert output.strip().splitlines()[-1] == "[]"
