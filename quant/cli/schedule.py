"""Scheduled batch jobs: start, once, status, history, and a replay on a copy."""

from __future__ import annotations

import json
import sys

import click

from quant.batch.scheduler import Scheduler, history, run_once, status
from quant.cli.app import cli, config_of, console, day, emit, json_option, workspace_of
from quant.tables import fmt, record_of, table_of


@cli.group()
def schedule() -> None:
    """Scheduled batch jobs (APScheduler cron lines from quant.toml)."""


@schedule.command("start")
@click.pass_context
def schedule_start(ctx):
    """Run the scheduler in the foreground until SIGTERM/SIGINT; logs each run."""
    import logging

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
    row = run_once(config_of(ctx, workspace=True), job, as_of.date() if as_of else None)
    emit(row, as_json, lambda r: console.print(record_of(r, title=f"job {job}")))
    if row["status"] in ("failed", "aborted"):
        sys.exit(1)


@schedule.command("status")
@json_option
@click.pass_context
def schedule_status(ctx, as_json):
    """Whether a scheduler runs, the next fire times, the latest runs."""
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
    info = history(config_of(ctx, workspace=True), limit)
    emit(info, as_json, lambda h: console.print(table_of(
        [{k: str(fmt(v))[:60] for k, v in r.items()} for r in h["runs"]],
        title=f"job runs ({h['source']})")))


@schedule.command("replay")
@click.option("--deployment", "name", required=True)
@click.option("--from", "since", type=click.DateTime(["%Y-%m-%d"]), required=True)
@click.option("--to", "until", type=click.DateTime(["%Y-%m-%d"]), required=True)
@click.option("--into", type=click.Path(file_okay=False), default=None,
              help="The copy's folder (default: replays/NAME-FROM-TO in the workspace).")
@json_option
@click.pass_context
def schedule_replay(ctx, name, since, until, into, as_json):
    """Run the daily book step for every session of a range on a copy of the workspace and
    set it against a backtest of the same sessions; exit 1 when they differ."""
    ws = workspace_of(ctx, write=into is None)
    result = ws.replay_on_copy(name, day(since), day(until), into)
    emit(result, as_json, lambda r: console.print(record_of(
        {k: f"{v:.2e}" if k.endswith("_gap") else fmt(v, 6) for k, v in r.items()},
        title=f"replay of {name}")))
    if not result["equal"]:
        sys.exit(1)
