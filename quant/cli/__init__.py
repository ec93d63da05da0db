"""The `quant` command line: the one place that wires data, llm, strategies and quant together.

Every command works on a workspace (the current folder or `--workspace DIR`) and takes `--json`
for machine-readable output. Framework errors print one clear line and exit with status 2.
The commands live by subject in this package; importing it registers them all.
"""

from __future__ import annotations

import json
import os
import re
import sys

import click

from data.errors import FrameworkError, is_disk_full
from quant.batch.threads import wait_politely
from quant.cli import learning, live, research, schedule, warehouse  # noqa: F401  (registers them)
from quant.cli.app import cli
from quant.tables import err_console, safe

__all__ = ["cli", "main"]


class ModelCommands(click.Group):
    """`quant llm`: its commands, and torch with them, load when one is run or listed."""

    def commands_group(self) -> click.Group:
        from quant.cli.models import llm_group  # torch and transformers: only for `quant llm`

        return llm_group

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self.commands_group().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self.commands_group().get_command(ctx, name)


cli.add_command(ModelCommands("llm", help="The local model: info, evaluation and fine-tuning."))


def main() -> None:
    """Run the command line: a framework error is one line (one JSON object with `--json`)
    and exit status 2; anything unexpected the same, with status 3 (QUANT_DEBUG=1 for the
    traceback)."""
    as_json = "--json" in sys.argv
    wait_politely()   # before any command loads torch or LightGBM (quant.batch.threads)
    try:
        cli.main(standalone_mode=False)
    except FrameworkError as exc:
        _fail(exc, type(exc).__name__, as_json, 2)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        if as_json:
            _fail(exc.format_message(), "UsageError", True, exc.exit_code)
        exc.show()
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug or an input we did not foresee: never a traceback
        if os.environ.get("QUANT_DEBUG"):
            raise
        if is_disk_full(exc):  # the warehouse's writes roll back; artefacts keep their old version
            _fail(f"no space left on device ({exc}); free space and rerun (what was being "
                  "written was not kept, earlier data is intact)", "NoSpace", as_json, 2)
        _fail(f"unexpected {type(exc).__name__}: {exc} (rerun with QUANT_DEBUG=1 for the "
              "traceback, and please report it)", type(exc).__name__, as_json, 3)


# A message says what went wrong, then after ": " or "; " how to fix it, in the imperative.
_FIX = re.compile(r"[:;] (?=(?:add|build|call|cast|check|choose|convert|copy|create|delete|drop|"
                  r"fit|fix|free|give|ingest|install|keep|leave|list|lower|map|move|name|open|"
                  r"pass|remove|rename|rerun|run|score|see|set|start|stop|try|use|wait|widen|"
                  r"write|quant\.open|`)\b)")


def split_fix(message: str) -> tuple[str, str]:
    """(what went wrong, how to fix it); the fix is empty where the message states none."""
    found = _FIX.search(message)
    return (message[:found.start()], message[found.end():]) if found else (message, "")


def _fail(error: object, kind: str, as_json: bool, status: int) -> None:
    message = str(error)
    what, fix = split_fix(message)
    if as_json:
        click.echo(json.dumps({"error": what, "type": kind, "where": " ".join(
            ["quant", *sys.argv[1:]]), "fix": fix or None}))
    else:
        err_console.print(f"[red]error:[/] {safe(message)}", highlight=False)
    sys.exit(status)
