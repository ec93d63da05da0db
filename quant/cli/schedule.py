"""Scheduled batch jobs: start, once, status, history."""

from __future__ import annotations

import json
import sys

import click

from quant.cli.app import cli, config_of, console, emit, json_option
from quant.tables import fmt, record_of, table_of


@cli.group()
def schedule() -> None:
    """Scheduled batch jobs (APScheduler cron lines from quant.toml)."""


@schedule.command("start")
@click.pass_context
def schedule_start(ctx):
    """Run the scheduler in the foreground until SIGTERM/SIGINT; logs each run."""
    import logging

    from quant.scheduler import Scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    Scheduler(config_of(ctx, workspace=True)).start()


@schedule.command("once")
@click.argument("job")
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), default=None)
@json_option
@click.pass_context
def schedule_once(ctx, job, as_of, as_json):
    """Run one job now (for system cron, CI or a one-shot container)."""
    from quant.scheduler import run_once

    row = run_once(config_of(ctx, workspace=True), job, as_of.date() if as_of else None)
    emit(row, as_json, lambda r: console.print(record_of(r, title=f"job {job}")))
    if row["status"] in ("failed", "aborted"):
        sys.exit(1)


@schedule.command("status")
@json_option
@click.pass_context
def schedule_status(ctx, as_json):
    """Whether a scheduler runs, the next fire times, the latest runs."""
    from quant.scheduler import status

    info = status(config_of(ctx, workspace=True))

    def render(s: dict) -> None:
        holder = s["scheduler"]
        console.print(f"scheduler: {'running ' + json.dumps(holder) if holder else 'not running'}")
        console.print(table_of(s["schedules"], title="schedules"))
        console.print(table_of(s["latest"], title="latest runs"))

    emit(info, as_json, render)


@schedule.command("history")
@click.option("--limit", default=50, show_default=True)
@json_option
@click.pass_context
def schedule_history(ctx, limit, as_json):
    """Past job runs, newest first."""
    from quant.scheduler import history

    info = history(config_of(ctx, workspace=True), limit)
    emit(info, as_json, lambda h: console.print(table_of(
        [{k: str(fmt(v))[:60] for k, v in r.items()} for r in h["runs"]],
        title=f"job runs ({h['source']})")))
