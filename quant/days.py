"""A day as the API takes it: a `date`, or text in the form YYYY-MM-DD."""

from __future__ import annotations

from datetime import date

from quant.errors import ConfigError


def day_of(value: str | date | None) -> date | None:
    """`value` as a date (None stays None); anything else is a ConfigError saying the form."""
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ConfigError(f"dates are YYYY-MM-DD, not {value!r}") from None
