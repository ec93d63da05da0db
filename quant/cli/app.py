"""The `quant` command group and what every command shares: the workspace option, `--json`
output and the console."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console

from quant import jsonable
from quant.config import Config, load_config, workspace_config

# A long value (a path) is never cut: the terminal wraps it; `:x:` in a value stays text.
console = Console(soft_wrap=True, emoji=False)


def emit(data: object, as_json: bool, render=None) -> None:
    """Print `data` as JSON, or through `render` (rich) for people."""
    if as_json:
        click.echo(json.dumps(data, default=jsonable.default, indent=2))
    elif render is not None:
        render(data)
    else:
        console.print(data)


def json_option(fn):
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(fn)


def config_of(ctx: click.Context, workspace: bool = False) -> Config:
    """quant.toml's settings (the defaults where there is none, unless `workspace`: a
    command that writes to a workspace refuses a folder that is not one)."""
    return (workspace_config if workspace else load_config)(ctx.obj["workspace"])


def api():
    """`quant.api`, which the commands go through."""
    from quant import api as module  # the API's modules: loaded by a command, not by --help

    return module


def workspace_of(ctx: click.Context, write: bool = False):
    """The Python API's workspace: every command on a workspace goes through it."""
    return api().Workspace(ctx.obj["workspace"], write=write)


def day(value) -> str | None:
    """A click DateTime as the API's YYYY-MM-DD."""
    return value.date().isoformat() if value else None


@click.group()
@click.option("--workspace", "-w", type=click.Path(file_okay=False), default=".",
              help="Workspace folder holding quant.toml and the warehouse (default: here).")
@click.pass_context
def cli(ctx: click.Context, workspace: str) -> None:
    """Point-in-time LLM signals, factor evaluation and honest backtests."""
    ctx.obj = {"workspace": Path(workspace)}

