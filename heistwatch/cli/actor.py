"""`heistwatch actor NAME`: what every source says about a name."""

from __future__ import annotations

import click

from heistwatch.cli.main import cli, echo_json, open_kb
from heistwatch.kb import Resolver
from heistwatch.share.text import render_resolution


@cli.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the resolution as JSON.")
@click.pass_context
def actor(ctx: click.Context, name: str, as_json: bool) -> None:
    """Claims per source, combined view, techniques and software of an actor, campaign or family NAME."""
    store = open_kb(ctx)
    try:
        resolution = Resolver(store).resolve(name)
        names = {s.key: s.name for s in store.sources()}
    finally:
        store.close()
    if as_json:
        echo_json(resolution.to_dict())
    else:
        click.echo(render_resolution(resolution, names))
