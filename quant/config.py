"""The workspace's `quant.toml`, read into frozen dataclasses: the sections are the settings
objects the code itself takes (`[pipeline]` is `quant.settings.PanelParams`, `[backtest]`
extends `quant.settings.BacktestSettings`, `[model]` extends `llm.settings.EngineSettings`), so
a default is written once. None of them imports a heavy library, so neither does this module.

Every section is optional and has defaults; an unknown key is an error naming the key and the
file, because a misspelt setting silently ignored is a wrong backtest nobody notices.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from llm.settings import MODES, PRECISIONS, EngineSettings
from quant.errors import ConfigError
from quant.settings import BacktestSettings as Settings
from quant.settings import PanelParams

CONFIG_NAME = "quant.toml"


@dataclass(frozen=True)
class DataConfig:
    calendar: str = "XNYS"
    assume_zone: str = "America/New_York"       # for naive timestamps in input files
    inbox: str = "inbox"                        # holds prices/, news/, filings/ for the jobs
    max_file_mb: int = 2048                     # a larger input file is rejected, not read

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.assume_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"assume_zone {self.assume_zone!r} is not a time zone name "
                              "(e.g. America/New_York, UTC)") from None
        if self.max_file_mb < 1:
            raise ConfigError(f"max_file_mb must be at least 1, not {self.max_file_mb}")

    @property
    def max_bytes(self) -> int:
        return self.max_file_mb * 1024**2


@dataclass(frozen=True)
class ModelConfig(EngineSettings):
    """Which model, how it is loaded, and the engine's own settings."""

    spec: str = "default"          # default | a local HF directory | a .gguf file | a [models] name
    adapter: str = ""              # a shipped adapter's name or a directory (llm finetune --out)
    precision: str = "auto"        # auto | fp32 | bf16 | fp8 | int8
    mode: str = "score"            # score | reason
    cache_dir: str = ""            # converted models; "" = the user's cache (llm.load)

    def __post_init__(self) -> None:
        _one_of("mode", self.mode, MODES)
        _one_of("precision", self.precision, PRECISIONS)
        if min(self.batch_size, self.max_input_tokens, self.max_new_tokens) < 1:
            raise ConfigError("batch_size, max_input_tokens and max_new_tokens must be "
                              "at least 1")
        if self.batch_tokens < 0:
            raise ConfigError("batch_tokens must be 0 (batches by count alone) or more")
        if self.think_tokens < 0:
            raise ConfigError("think_tokens must be 0 (no thinking phase) or more")


@dataclass(frozen=True)
class EvaluateConfig:
    signal: str = "sentiment_z"
    quantiles: int = 5


@dataclass(frozen=True)
class BacktestConfig(Settings):
    """The backtest module's own settings, plus what the jobs run and compare against."""

    strategies: tuple[str, ...] = ("sentiment_long_short", "event_drift", "sentiment_momentum",
                                   "buy_and_hold")
    benchmark: str = "buy_and_hold"


@dataclass(frozen=True)
class ScheduleEntry:
    cron: str = "30 6 * * 1-5"
    timezone: str = "America/New_York"


@dataclass(frozen=True)
class AlertsConfig:
    """What the monitor checks after each daily run, and whom it tells (`quant.batch.monitor`)."""

    max_price_age: int = 2            # sessions since the last price row
    max_news_age_days: int = 3        # days since the last news document was published
    max_failure_rate: float = 0.05    # failed or abstained signals, last `window_days`
    min_coverage: float = 0.2         # universe names with a signal, last `window_days`
    min_live_ic: float = 0.0          # a deployment's mean rank IC over its last 63 sessions
    window_days: int = 7
    late_after_hours: float = 2.0     # a scheduled slot not run this long after is late
    file: str = "logs/alerts.jsonl"   # every alert, one JSON object a line ("" = none)
    notify_command: str = ""          # run with the alerts as JSON on stdin
    smtp_host: str = ""               # "" = no mail
    smtp_port: int = 25
    smtp_from: str = "quant@localhost"
    smtp_to: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.max_failure_rate <= 1 or not 0 <= self.min_coverage <= 1:
            raise ConfigError("max_failure_rate and min_coverage are shares between 0 and 1")
        if min(self.max_price_age, self.max_news_age_days, self.window_days) < 1:
            raise ConfigError("max_price_age, max_news_age_days and window_days must be at "
                              "least 1")


@dataclass(frozen=True)
class Config:
    """Everything a job needs; `root` is the workspace folder holding quant.toml."""

    root: Path = Path(".")
    warehouse: str = "warehouse.duckdb"
    reports: str = "reports"
    cache: str = "cache"
    engine: str = "local"          # local | ray (scoring and sweeps)
    ray_address: str = ""          # a Ray cluster ("ray://head:10001" or "head:6379"); "" = local
    ray_workers: int = 2           # model replicas / CPU workers for scoring on Ray
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    models: dict[str, str] = field(default_factory=dict)      # name -> spec
    pipeline: PanelParams = field(default_factory=PanelParams)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    backtest: BacktestConfig = field(default_factory=BacktestConfig)
    schedule: dict[str, ScheduleEntry] = field(default_factory=dict)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)

    def __post_init__(self) -> None:
        _one_of("engine", self.engine, ("local", "ray"))

    @property
    def warehouse_path(self) -> Path:
        return self.root / self.warehouse

    @property
    def reports_dir(self) -> Path:
        return self.root / self.reports

    @property
    def cache_dir(self) -> Path:
        return self.root / self.cache

    @property
    def inbox_dir(self) -> Path:
        return self.root / self.data.inbox


def _one_of(name: str, value: str, known: tuple[str, ...]) -> None:
    if value not in known:
        raise ConfigError(f"{name} must be one of {', '.join(known)}, not {value!r}")


def load_config(root: str | Path) -> Config:
    """Read `<root>/quant.toml` (defaults when absent)."""
    root = Path(root).resolve()
    path = root / CONFIG_NAME
    table: dict = {}
    if path.exists():
        try:
            table = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    config = _build(Config, table, path, "")
    return dataclasses.replace(config, root=root)


def workspace_config(root: str | Path) -> Config:
    """The config of a workspace made by `quant init`; refused for a folder without quant.toml,
    so a misspelt path never becomes a new, empty workspace."""
    if not (Path(root) / CONFIG_NAME).is_file():
        raise ConfigError(f"no workspace at {Path(root).resolve()} (no {CONFIG_NAME}): "
                          f"create it with `quant init {root}`, or check --workspace")
    return load_config(root)


def _build(cls: type, table: dict, path: Path, prefix: str):
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [{prefix.rstrip('.')}] must be a table")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.name != "root"}
    unknown = sorted(set(table) - names)
    if unknown:
        raise ConfigError(
            f"{path}: unknown key {prefix}{unknown[0]!s}; known keys here: "
            f"{', '.join(sorted(names))}")
    values = {}
    for name, value in table.items():
        values[name] = _convert(hints[name], value, path, f"{prefix}{name}")
    try:
        return cls(**values)
    except ConfigError as exc:  # a value out of its range: say in which file and table
        raise ConfigError(f"{path}: [{prefix.rstrip('.') or 'top level'}] {exc}") from None


def _convert(hint, value, path: Path, key: str):
    if isinstance(hint, types.UnionType):  # `int | None`: TOML has no null, so the int
        hint = next(h for h in typing.get_args(hint) if h is not type(None))
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, path, key + ".")
    if origin is dict:
        value_type = typing.get_args(hint)[1]
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: {key} must be a table")
        return {k: _convert(value_type, v, path, f"{key}.{k}") for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{path}: {key} must be a list, got {value!r}")
        item_type = typing.get_args(hint)[0]
        return tuple(_convert(item_type, v, path, key) for v in value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and (
            not isinstance(value, hint) or (hint is not bool and isinstance(value, bool))):
        raise ConfigError(f"{path}: {key} must be {hint.__name__}, got {value!r}")
    return value


DEFAULT_TOML = """\
# Workspace settings. Every key is optional; an unknown key is an error.
warehouse = "warehouse.duckdb"
reports = "reports"
cache = "cache"
engine = "local"                   # local | ray  (scoring and sweeps; pip install .[distributed])
ray_address = ""                   # "" = a local Ray; else the cluster's address

[data]
calendar = "XNYS"                  # exchange_calendars name
assume_zone = "America/New_York"   # zone for timestamps that carry none
inbox = "inbox"                    # the ingest job reads inbox/prices, inbox/news, inbox/filings

[model]
# default (the bundled MoE with its domain adapter) | default-base (the MoE before fine-tuning)
# | default-dense | smollm2-135m[-base|-dense] | gemma-270m[-base|-dense] | /path/to/hf-dir
# | /path/to/x.gguf | a [models] name
spec = "default"
adapter = ""                       # a shipped adapter (sentiment-v1..v3, reason-v1) or a directory
# auto = bf16 where the hardware computes it natively (CUDA, CPUs with AVX512-BF16 or AMX),
# else fp32 | fp32 | bf16 | fp8 (experts) | int8 (CPU: int8 weights, faster, slightly less exact)
precision = "auto"
mode = "score"                     # score (one forward pass) | reason (grammar-constrained JSON)
# Score mode stops at the sentiment head's layer and reads no event type (event_type "other").
# true: run every layer and read the event type from the label words too (about 3x slower).
events = false
cache_dir = ""                     # converted models; "" = ~/.cache/quant-models (or
                                   # $QUANT_MODEL_CACHE, $XDG_CACHE_HOME/quant-models)

[models]
# mymoe = "/models/Qwen3-30B-A3B"

[pipeline]
execution_lag = 0
half_life = 2.0
horizons = [1, 5, 10, 20]

[backtest]
fees_bps = 5.0
slippage_bps = 5.0

[schedule.daily]
cron = "30 6 * * 1-5"
timezone = "America/New_York"

[alerts]
# Checked after each daily run; a breach goes to the file, the command and the mail below.
max_price_age = 2                  # sessions since the last price
max_news_age_days = 3
max_failure_rate = 0.05            # failed or abstained signals over the last window_days
min_coverage = 0.2                 # universe names with a signal over the last window_days
min_live_ic = 0.0                  # each deployment's mean rank IC, last 63 sessions
file = "logs/alerts.jsonl"
notify_command = ""                # e.g. "mail -s quant-alert desk@example.com"
smtp_host = ""                     # e.g. "smtp.example.com"; smtp_to = ["desk@example.com"]
"""
