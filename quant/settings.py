"""Settings that quant.toml's sections are read into, in a module that imports nothing heavy,
so reading a workspace's config (every command does) costs no polars, pandas or torch.
`quant.pipeline` and `quant.backtests.backtest` take them (the latter as `Settings`),
`quant.learned` its `ModelSpec`, whose defaults the command line's options show."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date

from llm.settings import GrpoSettings
from quant.errors import ConfigError

# The learned combiners' model kinds and what they predict (`ModelSpec`).
KINDS = ("linear", "lightgbm")
TARGETS = ("rank", "direction")

# The performance statistics `quant.backtests.stats` computes, by name (a walk-forward chooses
# by one).
METRICS = ("sharpe", "sortino", "cagr", "max_drawdown", "calmar", "hit_rate", "total_return",
           "volatility", "days")


@dataclass(frozen=True)
class PanelParams:
    execution_lag: int = 0
    half_life: float = 2.0            # sessions; 0 = no carry-over
    horizons: tuple[int, ...] = (1, 5, 10, 20)
    winsorize: float = 3.0            # clip z-scores at +-this (0 = off)
    min_history: int = 20             # sessions of prices before a ticker enters the universe
    min_price: float = 1.0
    stale_after: int | None = None    # sessions after the last document before the signal is
    #                                   null; default 4 half-lives (its weight is then 1/16)

    def __post_init__(self) -> None:
        if not self.horizons or any(not isinstance(h, int) or h < 1 for h in self.horizons):
            raise ConfigError(f"horizons must be positive whole sessions, not "
                              f"{list(self.horizons)} (a horizon of 0 or less would measure "
                              "past returns)")
        for name in ("execution_lag", "half_life", "winsorize", "min_history", "min_price"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative, not {getattr(self, name)}")
        if self.stale_after is not None and self.stale_after < 0:
            raise ConfigError(f"stale_after must not be negative, not {self.stale_after}")


@dataclass(frozen=True)
class BacktestSettings:
    """Costs, sizing and walk-forward windows (quant.toml's [backtest] section)."""

    fees_bps: float = 5.0
    slippage_bps: float = 5.0
    init_cash: float = 1_000_000.0
    max_leverage: float = 1.0
    walk_forward_train: int = 252     # sessions a window chooses its parameters on
    walk_forward_test: int = 63       # sessions it then trades them
    metric: str = "sharpe"            # what the walk-forward chooses by

    def __post_init__(self) -> None:
        if min(self.fees_bps, self.slippage_bps) < 0 or self.init_cash <= 0 or (
                self.max_leverage <= 0):
            raise ConfigError("fees_bps and slippage_bps must not be negative, init_cash and "
                              "max_leverage must be positive")
        if min(self.walk_forward_train, self.walk_forward_test) < 1:
            raise ConfigError("walk_forward_train and walk_forward_test must be at least 1")
        if self.metric not in METRICS:
            raise ConfigError(f"metric must be one of {', '.join(METRICS)}, "
                              f"not {self.metric!r}")


@dataclass(frozen=True)
class ModelSpec:
    kind: str = "lightgbm"            # linear (ridge / logistic) | lightgbm
    target: str = "rank"              # rank of the forward return | direction (> 0)
    horizon: int = 1                  # sessions of the forward return
    test: int = 21                    # sessions per walk-forward block
    train: int | None = None          # sessions of training window; None = expanding
    embargo: int | None = None        # sessions after the purge; None = the horizon
    min_train: int = 120              # sessions before the first test block
    features: tuple[str, ...] = ()    # () = every registered feature
    seed: int = 0

    @classmethod
    def of(cls, values: dict, owner: str = "ModelSpec", extra: tuple[str, ...] = ()
           ) -> ModelSpec:
        """A spec from given or stored values (features as a tuple); a key that is none of
        its settings is a ConfigError naming `owner`'s settings (`extra`: its own besides)."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"{owner} has no setting {unknown[0]!r}; its settings: "
                              f"{', '.join([*extra, *known])} (quant.settings.ModelSpec)")
        return cls(**{**values, "features": tuple(values.get("features", ()))})

    def __post_init__(self) -> None:
        if self.kind not in KINDS or self.target not in TARGETS:
            raise ConfigError(f"kind must be one of {KINDS} and target one of {TARGETS}, not "
                              f"{self.kind!r} / {self.target!r}")
        if min(self.horizon, self.test, self.min_train) < 1:
            raise ConfigError("horizon, test and min_train must be at least 1 session")
        if self.embargo is not None and self.embargo < self.horizon:
            raise ConfigError(f"embargo {self.embargo} is shorter than the horizon "
                              f"{self.horizon}: training labels would overlap the test block")


@dataclass(frozen=True)
class RewardSettings:
    split: date = date(2014, 9, 1)   # train before, evaluate from
    horizon: int = 1                 # sessions of forward return in the reward
    train_posts: int = 6000
    test_posts: int = 6000
    seed: int = 0
    grpo: GrpoSettings = field(default_factory=GrpoSettings)
