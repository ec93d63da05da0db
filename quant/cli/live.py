"""Live commands: deploy, deployments, retire, book, replay, track."""

from __future__ import annotations

import click

from quant.cli.app import cli, console, day, emit, json_option, workspace_of
from quant.cli.research import params_of
from quant.tables import fmt, record_of, table_of


@cli.command()
@click.argument("name")
@click.option("--strategy", "strategy_name", required=True)
@click.option("--params", "pairs", multiple=True, help="A parameter, key=value (frozen).")
@click.option("--go-live", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="The first session it trades (default: the next one).")
@click.option("--universe", default=None,
              help="The names it trades, comma-separated (default: every name with prices).")
@click.option("--model", default=None,
              help="learned: the fitted model (`quant model fit --name`) whose spec it "
                   "refits on the walk-forward's schedule.")
@json_option
@click.pass_context
def deploy(ctx, name, strategy_name, pairs, go_live, universe, model, as_json):
    """Freeze a strategy, its params, signal set, costs and universe for daily use."""
    names = None if universe is None else [t for t in universe.split(",") if t.strip()]
    made = workspace_of(ctx, write=True).deploy(name, strategy_name, params_of(pairs),
                                                day(go_live), names, model=model)
    emit(_row(made), as_json, lambda r: console.print(record_of(r, title=f"deployed {name}")))


@cli.command("deployments")
@json_option
@click.pass_context
def deployments_cmd(ctx, as_json):
    """Every deployment, live and retired."""
    rows = [_row(d) for d in workspace_of(ctx).deployments()]
    emit(rows, as_json, lambda r: console.print(table_of(r, title="deployments")))


@cli.command()
@click.argument("name")
@json_option
@click.pass_context
def retire(ctx, name, as_json):
    """Retire a deployment: the daily job stops deciding its book."""
    emit(_row(workspace_of(ctx, write=True).retire(name)), as_json,
         lambda r: console.print(record_of(r, title=f"retired {name}")))


@cli.command("book")
@click.argument("name")
@click.option("--session", type=click.DateTime(["%Y-%m-%d"]), required=True)
@json_option
@click.pass_context
def book_cmd(ctx, name, session, as_json):
    """Decide a deployment's book for one session from what was known before its open."""
    targets = workspace_of(ctx, write=True).book(name, day(session))
    emit(targets.to_dicts(), as_json, lambda r: console.print(table_of(
        [{k: fmt(v, 4) for k, v in row.items()} for row in r], title=f"{name} {day(session)}")))


@cli.command()
@click.argument("name")
@click.option("--from", "since", type=click.DateTime(["%Y-%m-%d"]), required=True)
@click.option("--to", "until", type=click.DateTime(["%Y-%m-%d"]), required=True)
@json_option
@click.pass_context
def replay(ctx, name, since, until, as_json):
    """Decide every session of a range as it would have been decided then; its paper record
    is then what the same backtest earns, or one of them is not point-in-time."""
    ws = workspace_of(ctx, write=True)
    sessions = ws.replay(name, day(since), day(until))
    record = ws.track(name)
    out = {"sessions": sessions, **_track_row(record)}
    emit(out, as_json, lambda r: console.print(record_of(r, title=f"replayed {name}")))


@cli.command()
@click.argument("name")
@json_option
@click.pass_context
def track(ctx, name, as_json):
    """The paper record since go-live beside what the backtest expected."""
    emit(_track_row(workspace_of(ctx).track(name)), as_json,
         lambda r: console.print(record_of(r, title=f"track record of {name}")))


def _row(deployment) -> dict:
    return {"name": deployment.name, "strategy": deployment.strategy,
            "params": deployment.params, "signals": deployment.model_fingerprint,
            "go_live": str(deployment.go_live), "names": len(deployment.universe),
            "retired": str(deployment.retired_at) if deployment.retired_at else ""}


def _track_row(record: dict) -> dict:
    returns = record["returns"]
    out = {"deployment": record["deployment"], "since": record["since"],
           "sessions": record["sessions"],
           "paper_return": float((1 + returns).prod() - 1) if len(returns) else 0.0,
           **{f"live_{k}": v for k, v in record["live"].items()}}
    expected = record.get("backtest") or {}
    out |= {f"backtest_{k}": v for k, v in expected.items()}
    if "interval" in record:
        out |= {"sharpe_interval": f"{record['interval']['low']:.2f} .. "
                                   f"{record['interval']['high']:.2f}",
                "inside_interval": record["interval"]["inside"]}
    return out
