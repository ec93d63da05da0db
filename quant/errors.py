"""Errors of the quant layer, derived from the base in `data.errors`."""

from data.errors import QuantError


class ConfigError(QuantError):
    """A bad or unknown key in quant.toml, or a missing workspace."""


class BacktestError(QuantError):
    """A strategy or backtest that cannot run on the given panel or parameters."""


class JobError(QuantError):
    """A scheduled job that cannot start or finish (lock held, bad schedule)."""
