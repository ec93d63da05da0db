"""A replay on a copy of the workspace: the daily job's book step run for every session of a
range, each on the evening before it, then set against a backtest of the same strategy over
the same sessions.

The copy holds everything the workspace knows; what each evening may read is decided by
time, as the daily job decides it (documents by `published_at`, prices by session). The
workspace itself is not touched. Over the same sessions, params and costs, the replay's paper
returns must equal the backtest's and its targets the backtest's weights, to floating-point
noise: any larger gap is a point-in-time bug in one of the two paths.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from data.calendar import get_calendar
from data.errors import DataError
from data.warehouse import Warehouse
from quant.artefact import write_file
from quant.backtests import backtest as bt
from quant.config import CONFIG_NAME, Config
from quant.errors import ConfigError
from quant.live import book, deployments, track

WEIGHT_TOLERANCE = 1e-12   # weights: ranks of the same numbers, so equal but for sums' order
RETURN_TOLERANCE = 1e-10   # daily returns: the same orders through the same simulation
RESULT = "replay.json"     # what a finished replay measured, in its copy


def copy_workspace(config: Config, into: Path) -> Config:
    """`into`, a new folder, holding a copy of the warehouse and quant.toml; its config (the
    model cache stays shared: a replay reads models, never writes them)."""
    into = Path(into).resolve()
    if into.exists() and not into.is_dir():
        raise ConfigError(f"{into} is a file: a replay's copy goes in a folder")
    if (into / RESULT).is_file():   # an earlier replay's copy: replaced whole
        shutil.rmtree(into)
    if into.exists() and any(into.iterdir()):
        raise ConfigError(f"{into} is not empty: a replay writes a fresh copy; name a new "
                          "folder with --into, or delete that one")
    into.mkdir(parents=True, exist_ok=True)
    if (config.root / CONFIG_NAME).is_file():
        shutil.copy2(config.root / CONFIG_NAME, into / CONFIG_NAME)
    copied = dataclasses.replace(config, root=into, warehouse="warehouse.duckdb",
                                 reports="reports", cache=str(config.cache_dir))
    try:  # DuckDB copies tables, constraints and the schema version as they are committed
        with duckdb.connect(str(copied.warehouse_path)) as con:
            quoted = str(config.warehouse_path).replace("'", "''")   # ATTACH takes no parameter
            con.execute(f"ATTACH '{quoted}' AS original (READ_ONLY)")
            con.execute("COPY FROM DATABASE original TO warehouse")
            con.execute("DETACH original")
    except duckdb.Error as exc:
        raise DataError(f"could not copy {config.warehouse_path} into {into}: "
                        f"{str(exc).splitlines()[0]}; if another command is writing it, "
                        "wait for it and run the replay again") from None
    return copied


def replay_on_copy(config: Config, name: str, start: date, end: date, into: Path) -> dict:
    """Copy the workspace into `into`, run the daily job's book step for deployment `name`
    on the evening before every session from `start` to `end` with prices, write its track
    record there, and measure the gaps to a backtest of the same sessions."""
    with Warehouse(config.warehouse_path, read_only=True) as wh:  # refused before copying
        book.replay_sessions(config, wh, deployments.get(wh, name), start, end)
    copied = copy_workspace(config, into)
    calendar = get_calendar(copied.data.calendar)
    with Warehouse(copied.warehouse_path) as wh:
        deployment = deployments.get(wh, name)
        deployments.clear_targets(wh, name)   # the copy's own record, decided afresh
        sessions = book.replay_sessions(copied, wh, deployment, start, end)
        models: dict = {}
        for session in sessions:
            evening = calendar.shift(session, -1)
            decided = book.daily_books(copied, wh, evening, only=name, models=models)[name]
            if "refused" in decided:
                raise DataError(f"the replay stopped at {session}: {decided['refused']}")
        record = track.track_record(copied, wh, deployment)
        track.write_track(copied, deployment, record)
        gaps = _gaps(copied, wh, deployment, sessions[0], sessions[-1], record)
    result = {"deployment": name, "copy": str(copied.root), "sessions": len(sessions),
              "from": str(sessions[0]), "to": str(sessions[-1]), **gaps,
              "equal": gaps["max_weight_gap"] <= WEIGHT_TOLERANCE
              and gaps["max_return_gap"] <= RETURN_TOLERANCE}
    write_file(copied.root / RESULT, json.dumps(result, indent=1))
    return result


def _gaps(config: Config, wh: Warehouse, deployment: deployments.Deployment, start: date,
          end: date, record: dict) -> dict:
    """The largest gaps between the replay and a backtest of the same sessions: in a
    session's weights and in a day's return."""
    panel, strategy = book.backtest_panel(config, wh, deployment, start, end)
    expected = bt.backtest(panel, strategy, deployment.params,
                           deployment.backtest_settings).returns[0]
    paper = record["returns"]
    if len(paper) != len(expected):
        raise DataError(f"the replay traded {len(paper)} sessions and the backtest "
                        f"{len(expected)}: their calendars differ")
    weights = strategy.weights(panel, **deployment.params).select(
        "session", "ticker", target="weight")
    targets = deployments.read_targets(wh, deployment.name).select(
        "session", "ticker", "weight")
    joined = targets.join(weights, on=["session", "ticker"], how="full", coalesce=True)
    # A name's first session (an IPO) is a row in the backtest's panel but not in a book
    # decided before its first price: a null there trades nothing, as a zero does.
    gap = (pl.col("weight").fill_null(0.0) - pl.col("target").fill_null(0.0)).abs()
    return {"max_weight_gap": float(joined.select(gap.max()).item() or 0.0),
            "max_return_gap": float(np.abs(paper.to_numpy() - expected.to_numpy()).max()),
            "paper_return": float((1 + paper).prod() - 1),
            "backtest_return": float((1 + expected).prod() - 1)}
