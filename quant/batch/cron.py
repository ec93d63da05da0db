"""Cron lines from quant.toml as APScheduler triggers, and the slots they fire at."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

from quant.errors import JobError


def trigger(cron: str, zone: str) -> CronTrigger:
    try:
        return CronTrigger.from_crontab(cron, timezone=zone)
    except (ValueError, KeyError) as exc:
        raise JobError(f"bad schedule {cron!r} ({zone}) in quant.toml: {exc}") from None


def previous_fire(cron: str, zone: str, now: datetime) -> datetime | None:
    """The latest slot at or before `now` (searched over the last 35 days)."""
    rule = trigger(cron, zone)
    fire, last = rule.get_next_fire_time(None, now - timedelta(days=35)), None
    while fire is not None and fire <= now:
        last = fire
        fire = rule.get_next_fire_time(fire, fire + timedelta(seconds=1))
    return last


def as_of_for(fire: datetime, zone: str) -> date:
    from zoneinfo import ZoneInfo

    return fire.astimezone(ZoneInfo(zone)).date()
