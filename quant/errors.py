"""Errors of the quant layer, derived from the base in `data.errors`."""

from data.errors import FrameworkError


class ConfigError(FrameworkError):
    """A bad or unknown key in quant.toml, or a missing workspace."""


class BacktestError(FrameworkError):
    """A strategy or backtest that cannot run on the given panel or parameters."""


class JobError(FrameworkError):
    """A scheduled job that cannot start or finish (lock held, bad schedule)."""
