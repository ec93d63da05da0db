"""Research commands: evaluate, backtest, report, strategies, demo."""

from __future__ import annotations

import json
from pathlib import Path

import click

from quant.cli.app import cli, console, day, emit, json_option, workspace_of
from quant.tables import print_evaluation, record_of, safe, table_of
from strategies import REGISTRY, get_strategy

# ------------------------------------------------------------------ research

def _horizons(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(h) for h in text.split(","))
    except ValueError:
        raise click.BadParameter(f"--horizons takes integers like 1,5,20, not {text!r}") from None


@cli.command("evaluate")
@click.option("--signal", default=None, help="Panel column (default: [evaluate].signal).")
@click.option("--horizons", default=None, help="Comma-separated sessions, e.g. 1,5,20.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), default=None)
@json_option
@click.pass_context
def evaluate_cmd(ctx, signal, horizons, since, until, as_json):
    """IC, rank IC, decay, quantile returns, turnover, coverage and calibration."""
    report = workspace_of(ctx).evaluate(signal=signal, horizons=_horizons(horizons),
                                        since=day(since), until=day(until))
    emit(report.to_json() if as_json else report, as_json,
         lambda r: print_evaluation(r, console))


# ------------------------------------------------------------------ backtests

def params_of(pairs: tuple[str, ...]) -> dict:
    out: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"--params takes key=value, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


@cli.command()
@click.option("--strategy", "strategy_name", required=True)
@click.option("--params", "pairs", multiple=True,
              help="A parameter, key=value, held in every mode (a sweep varies the rest).")
@click.option("--sweep", is_flag=True, help="Every point of the strategy's grid.")
@click.option("--walk-forward", is_flag=True, help="Rolling train/test over the grid.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--engine", "engine_name", type=click.Choice(["local", "ray"]), default=None)
@json_option
@click.pass_context
def backtest(ctx, strategy_name, pairs, sweep, walk_forward, since, until, engine_name,
             as_json):
    """Backtest a strategy on the signal panel (vectorbt), store the run and write its report."""
    if sweep and walk_forward:
        raise click.BadParameter("choose --sweep or --walk-forward, not both")
    run = workspace_of(ctx, write=True).backtest(
        strategy_name, params_of(pairs), sweep, walk_forward, day(since), day(until),
        engine=engine_name)
    emit(run.summary, as_json, lambda s: console.print(record_of(s, title="backtest")))


@cli.command()
@click.argument("run_id", default="latest")
@json_option
@click.pass_context
def report(ctx, run_id, as_json):
    """Write the HTML report of a stored run (RUN_ID or `latest`)."""
    from quant.reports.runs import summary  # pandas and plotly: with the run it reports

    ws = workspace_of(ctx)
    run = ws.run(run_id)
    path = ws.report(run)
    emit(summary(run, path, ws.config.reports_dir / run.run_id), as_json,
         lambda s: console.print(f"report: [bold]{safe(s['report'])}[/]"))


@cli.command("strategies")
@json_option
def strategies_cmd(as_json):
    """The registered strategies with their parameters and grids."""
    get_strategy("buy_and_hold")  # loads the built-ins
    rows = [{"name": s.name, "description": s.description, "defaults": s.defaults,
             "grid": s.grid} for s in REGISTRY.values()]
    emit(rows, as_json, lambda r: console.print(table_of(r, title="strategies")))


# ------------------------------------------------------------------ demo

@cli.command()
@click.option("--dir", "directory", default="demo-workspace", show_default=True,
              type=click.Path(file_okay=False), help="Workspace the demo builds (reused).")
@json_option
def demo(directory: str, as_json: bool) -> None:
    """Build a workspace from the bundled sample data and run the whole pipeline on it."""
    from quant.demo import run_demo  # everything the demo runs: only for `quant demo`

    summary = run_demo(Path(directory), quiet=as_json)
    emit(summary, as_json, lambda s: None)
