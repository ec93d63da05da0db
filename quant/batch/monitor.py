"""Watching the daily loop: checks after each run, and the notifiers that carry a breach.

Checks, each against a threshold in quant.toml's `[alerts]`: prices and news fresh, scoring's
failure rate, the signal's coverage of the universe, each live deployment's rank IC since it
went live, and failed jobs. A breach is written to the alerts file (JSON lines), given to
`notify_command` on stdin, and mailed when `smtp_host` is set. A notifier that fails is logged
with the alert and never fails the job.
"""

from __future__ import annotations

import json
import logging
import smtplib
import subprocess
from datetime import date, datetime, timedelta, timezone
from email.message import EmailMessage

import numpy as np
import polars as pl

from data.calendar import get_calendar
from data.warehouse import Warehouse
from quant.batch import job_log
from quant.batch.cron import previous_fire
from quant.config import AlertsConfig, Config
from quant.live import deployments
from quant.signal_store import recent_statuses

log = logging.getLogger("quant.batch.monitor")
LIVE_IC_SESSIONS = 63


def checks(config: Config, wh: Warehouse, as_of: date) -> list[dict]:
    """Every check as {check, ok, value, threshold, message}."""
    alerts = config.alerts
    recent = _recent_signals(wh, as_of, alerts)   # read once, for two checks
    out = [_price_age(config, wh, as_of), _news_age(wh, as_of, alerts),
           _failure_rate(recent, alerts), _coverage(wh, recent, as_of, alerts),
           _failed_jobs(wh, as_of)]
    out += _late_jobs(config, wh, datetime.now(timezone.utc))
    out += _live_ic(config, wh, as_of)
    return [c for c in out if c is not None]


def _check(name: str, ok: bool, value, threshold, message: str) -> dict:
    return {"check": name, "ok": bool(ok), "value": value, "threshold": threshold,
            "message": message}


def _price_age(config: Config, wh: Warehouse, as_of: date) -> dict:
    last = wh.scalar("SELECT max(session) FROM prices WHERE session <= ?", [as_of])
    if last is None:
        return _check("price_age", False, None, config.alerts.max_price_age,
                      "no prices at all: ingest prices")
    age = len(get_calendar(config.data.calendar).sessions_between(last, as_of)) - 1
    return _check("price_age", age <= config.alerts.max_price_age, age,
                  config.alerts.max_price_age,
                  f"the last prices are of {last}, {age} sessions before {as_of}")


def _news_age(wh: Warehouse, as_of: date, alerts: AlertsConfig) -> dict | None:
    last = wh.scalar("SELECT max(published_at)::DATE FROM documents WHERE kind = 'news' "
                     "AND published_at::DATE <= ?", [as_of])
    if last is None:
        return None  # a workspace without news has no feed to go stale
    days = (as_of - last).days
    return _check("news_age", days <= alerts.max_news_age_days, days, alerts.max_news_age_days,
                  f"the last news item was published on {last}, {days} days before {as_of}")


def _recent_signals(wh: Warehouse, as_of: date, alerts: AlertsConfig) -> pl.DataFrame:
    return recent_statuses(wh, as_of - timedelta(days=alerts.window_days), as_of)


def _failure_rate(recent: pl.DataFrame, alerts: AlertsConfig) -> dict | None:
    if recent.is_empty():
        return None
    rate = float((recent["status"] != "ok").mean())
    return _check("failure_rate", rate <= alerts.max_failure_rate, round(rate, 4),
                  alerts.max_failure_rate,
                  f"{rate:.1%} of the last {alerts.window_days} days' {recent.height} signals "
                  "failed or abstained")


def _coverage(wh: Warehouse, recent: pl.DataFrame, as_of: date, alerts: AlertsConfig
              ) -> dict | None:
    names = wh.scalar("SELECT count(DISTINCT ticker) FROM prices WHERE session BETWEEN ? AND ?",
                      [as_of - timedelta(days=alerts.window_days), as_of])
    if not names:
        return None
    recent = recent.filter(pl.col("status") == "ok")
    share = recent["ticker"].n_unique() / names
    return _check("coverage", share >= alerts.min_coverage, round(share, 4), alerts.min_coverage,
                  f"{recent['ticker'].n_unique()} of {names} traded names had a signal in the "
                  f"last {alerts.window_days} days")


def _failed_jobs(wh: Warehouse, as_of: date) -> dict:
    failed = job_log.failed_on(wh, as_of)
    return _check("failed_jobs", not failed, len(failed), 0,
                  "; ".join(f"{job}: {error}" for job, error in failed) or "no job failed")


def _late_jobs(config: Config, wh: Warehouse, now: datetime) -> list[dict]:
    """Each scheduled job that has run before but not since a slot `late_after_hours` ago:
    the loop stopped (the scheduler is down, or its runs fail)."""
    grace = timedelta(hours=config.alerts.late_after_hours)
    out = []
    for name, entry in config.schedule.items():
        last = job_log.last_done(wh, name)
        slot = previous_fire(entry.cron, entry.timezone, now - grace)
        if last is None or slot is None:
            continue  # never run yet: nothing has stopped
        out.append(_check(f"late:{name}", last >= slot, str(last), str(slot),
                          f"{name} last ran {last}; its slot of {slot} has not run"))
    return out


def _live_ic(config: Config, wh: Warehouse, as_of: date) -> list[dict]:
    """Each live deployment's mean daily rank IC of its traded signal over its last sessions,
    from its stored targets and the returns that followed."""
    from quant.live import track  # pandas and plotly: only once a deployment is live

    out = []
    for deployment in deployments.listing(wh, live_only=True):
        daily = track.live_ic(config, wh, deployment, until=as_of).tail(LIVE_IC_SESSIONS)
        if daily.height < 5:
            continue
        ic = float(np.mean(daily["ic"].to_numpy()))
        out.append(_check(f"live_ic:{deployment.name}", ic >= config.alerts.min_live_ic,
                          round(ic, 4), config.alerts.min_live_ic,
                          f"{deployment.name}'s mean rank IC over its last {daily.height} "
                          f"sessions is {ic:.3f}"))
    return out


def notify(config: Config, breaches: list[dict], as_of: date) -> list[str]:
    """Tell every configured notifier; returns the notifiers that failed (logged, not
    raised)."""
    if not breaches:
        return []
    alerts, failed = config.alerts, []
    payload = {"workspace": str(config.root), "as_of": str(as_of),
               "at": datetime.now(timezone.utc).isoformat(), "breaches": breaches}
    senders = {"file": _to_file, "command": _to_command, "smtp": _to_smtp}
    for name, send in senders.items():
        try:
            send(config, alerts, payload)
        except Exception as exc:  # an alert that cannot be sent never fails the job
            log.error("alert notifier %s failed: %s", name, exc)
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
    return failed


def _to_file(config: Config, alerts: AlertsConfig, payload: dict) -> None:
    if alerts.file:
        path = config.root / alerts.file
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as out:
            out.write(json.dumps(payload, default=str) + "\n")


def _to_command(config: Config, alerts: AlertsConfig, payload: dict) -> None:
    if alerts.notify_command:
        subprocess.run(alerts.notify_command, shell=True, input=json.dumps(payload, default=str),
                       text=True, timeout=60, check=True, cwd=config.root)


def _to_smtp(config: Config, alerts: AlertsConfig, payload: dict) -> None:
    if not alerts.smtp_host or not alerts.smtp_to:
        return
    message = EmailMessage()
    message["Subject"] = (f"quant: {len(payload['breaches'])} alerts for {payload['as_of']} "
                          f"({config.root.name})")
    message["From"], message["To"] = alerts.smtp_from, ", ".join(alerts.smtp_to)
    message.set_content("\n".join(f"{b['check']}: {b['message']} (threshold "
                                  f"{b['threshold']})" for b in payload["breaches"]))
    with smtplib.SMTP(alerts.smtp_host, alerts.smtp_port, timeout=30) as server:
        server.send_message(message)
