"""Deployments: a strategy frozen for daily use, and the SQL of the `deployments` and
`targets` tables (this module is their one owner).

A deployment freezes the strategy, its parameters, the signal set it reads (model fingerprint,
prompt version, mode), the costs and sizing, the universe and its go-live session; a `learned`
one also its model (spec and the first session of its training history). It is
never edited: deploying the same name again is refused; retire it and deploy under a new
name. Its targets are written per session, all of a session's rows in one transaction.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone

import polars as pl

from data.warehouse import Warehouse
from quant.errors import ConfigError
from quant.settings import BacktestSettings


@dataclass(frozen=True)
class Deployment:
    name: str
    strategy: str
    params: dict
    model_fingerprint: str | None
    prompt_version: str | None
    mode: str | None
    settings: dict
    universe: tuple[str, ...]
    go_live: date
    created_at: datetime | None = None
    retired_at: datetime | None = None
    model: dict | None = None         # a learned strategy's model spec and history start

    @property
    def live(self) -> bool:
        return self.retired_at is None

    @property
    def backtest_settings(self) -> BacktestSettings:
        known = BacktestSettings.__dataclass_fields__
        return BacktestSettings(**{k: v for k, v in self.settings.items() if k in known})


def create(wh: Warehouse, deployment: Deployment) -> Deployment:
    """Store a new deployment; a name already used (live or retired) is refused."""
    if get(wh, deployment.name, missing_ok=True) is not None:
        raise ConfigError(f"a deployment named {deployment.name!r} exists; deployments are "
                          "never edited: retire it (`quant retire NAME`) and deploy the change "
                          "under a new name")
    created = datetime.now(timezone.utc)
    wh.con.execute("INSERT INTO deployments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)", [
        deployment.name, deployment.strategy, json.dumps(deployment.params, sort_keys=True),
        deployment.model_fingerprint, deployment.prompt_version, deployment.mode,
        json.dumps(deployment.settings, sort_keys=True), json.dumps(list(deployment.universe)),
        deployment.go_live, created,
        None if deployment.model is None else json.dumps(deployment.model, sort_keys=True)])
    return get(wh, deployment.name)


def get(wh: Warehouse, name: str, missing_ok: bool = False) -> Deployment | None:
    row = wh.con.execute("SELECT * FROM deployments WHERE name = ?", [name]).fetchone()
    if row is None:
        if missing_ok:
            return None
        raise ConfigError(f"no deployment named {name!r}; `quant deployments` lists them")
    record = dict(zip([d[0] for d in wh.con.description], row, strict=True))
    return Deployment(record["name"], record["strategy"], json.loads(record["params"]),
                      record["model_fingerprint"], record["prompt_version"], record["mode"],
                      json.loads(record["settings"]), tuple(json.loads(record["universe"])),
                      record["go_live"], record["created_at"], record["retired_at"],
                      None if record["model"] is None else json.loads(record["model"]))


def listing(wh: Warehouse, live_only: bool = False) -> list[Deployment]:
    names = wh.con.execute("SELECT name FROM deployments WHERE NOT $live OR retired_at IS NULL "
                           "ORDER BY created_at", {"live": live_only}).fetchall()
    return [get(wh, name) for (name,) in names]


def retire(wh: Warehouse, name: str) -> Deployment:
    deployment = get(wh, name)
    if not deployment.live:
        raise ConfigError(f"deployment {name!r} was retired at {deployment.retired_at}")
    wh.con.execute("UPDATE deployments SET retired_at = ? WHERE name = ?",
                   [datetime.now(timezone.utc), name])
    return get(wh, name)


def write_targets(wh: Warehouse, name: str, session: date, targets: pl.DataFrame,
                  decided_at: datetime) -> int:
    """A session's book (ticker, weight, signal, n_docs, documents), replacing an earlier
    try's whole."""
    frame = targets.select("ticker", "weight", "signal", "n_docs", "documents").with_columns(
        deployment=pl.lit(name), session=pl.lit(session, pl.Date),
        decided_at=pl.lit(decided_at).dt.convert_time_zone("UTC"))
    with wh.transaction() as con:
        con.execute("DELETE FROM targets WHERE deployment = ? AND session = ?", [name, session])
        con.register("_targets_in", frame.to_arrow())
        con.execute("INSERT INTO targets BY NAME SELECT * FROM _targets_in")
        con.unregister("_targets_in")
    return frame.height


def clear_targets(wh: Warehouse, name: str) -> None:
    """Every target of deployment `name` (a replay's copy starts its record afresh)."""
    wh.con.execute("DELETE FROM targets WHERE deployment = ?", [name])


def read_targets(wh: Warehouse, name: str, since: date | None = None,
                 until: date | None = None) -> pl.DataFrame:
    return wh.con.execute("""
        SELECT session, ticker, weight, signal, n_docs, documents, decided_at FROM targets
        WHERE deployment = $name AND ($since IS NULL OR session >= $since)
          AND ($until IS NULL OR session <= $until)
        ORDER BY session, ticker""", {"name": name, "since": since, "until": until}).pl()


def as_dict(deployment: Deployment) -> dict:
    out = asdict(deployment)
    out["universe"] = list(deployment.universe)
    return out
