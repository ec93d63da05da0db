"""The `quant` command line: the one place that wires data, llm, strategies and quant together.

Every command works on a workspace (the current folder or `--workspace DIR`) and takes `--json`
for machine-readable output. Framework errors print one clear line and exit with status 2.
The commands live by subject in this package; importing it registers them all.
"""

from __future__ import annotations

import sys

import click

from data.errors import FrameworkError
from quant.cli import models, research, schedule, warehouse  # noqa: F401  (registers them)
from quant.cli.app import cli, err_console

__all__ = ["cli", "main"]


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except FrameworkError as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)

