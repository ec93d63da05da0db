"""The Workspace's live-trading methods: deploy a strategy, decide its book, replay past
sessions, and read its paper record beside what its backtest expected."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl

from quant.artefact import inside
from quant.days import day_of
from quant.errors import ConfigError
from quant.live import book, deployments


class LiveMethods:
    """Mixed into `quant.api.Workspace` (which gives `config`, `warehouse` and `writable`)."""

    def deploy(self, name: str, strategy: str, params: dict | None = None,
               go_live: str | date | None = None, universe: list[str] | None = None,
               model: dict | str | None = None):
        """Freeze `strategy` with `params`, the warehouse's latest signal set, the configured
        costs and `universe` (default: every name with prices) from `go_live` (default: the
        next session); `learned` also freezes its `model` (ModelSpec fields and `since`, or a
        fitted model's name). A `Deployment` (`quant.live.book.freeze`)."""
        with self.warehouse(write=True) as wh:
            return book.freeze(self.config, wh, name, strategy, params,
                               day_of(go_live) or (date.today() + timedelta(days=1)), universe,
                               model)

    def deployments(self, live_only: bool = False) -> list:
        with self.warehouse() as wh:
            return deployments.listing(wh, live_only)

    def retire(self, name: str):
        with self.warehouse(write=True) as wh:
            return deployments.retire(wh, name)

    def book(self, name: str, session: str | date) -> pl.DataFrame:
        """Decide and store `name`'s book for `session` from what was known before its open:
        ticker, weight (null: hold), the signal behind it, its documents."""
        with self.warehouse(write=True) as wh:
            return book.targets_for(self.config, wh, deployments.get(wh, name), day_of(session))

    def replay(self, name: str, since: str | date, until: str | date, on_session=None) -> int:
        """Decide every session from `since` to `until` as it would have been decided then."""
        with self.warehouse(write=True) as wh:
            return book.replay(self.config, wh, deployments.get(wh, name), day_of(since),
                               day_of(until), on_session)

    def replay_on_copy(self, name: str, since: str | date, until: str | date,
                       into: str | Path | None = None) -> dict:
        """Replay `name` on a copy of the workspace (`into`, default replays/NAME-FROM-TO,
        replacing an earlier replay there) through the daily job's book step, and measure the
        gaps to a backtest of the same sessions (`quant.live.replay`); `equal` says whether they
        are floating-point noise. The workspace itself is not changed."""
        from quant.live.replay import replay_on_copy  # pandas and plotly: when a replay runs

        start, end = day_of(since), day_of(until)
        if into is None:
            if not self.writable:
                raise ConfigError(f"{self.config.root} was opened read-only, and a replay "
                                  "writes its copy under replays/: pass into=... elsewhere, "
                                  "or quant.open(..., write=True)")
            into = inside(self.config.root / "replays", f"{name}-{start}-{end}", "replay")
        return replay_on_copy(self.config, name, start, end, Path(into))

    def targets(self, name: str) -> pl.DataFrame:
        with self.warehouse() as wh:
            deployments.get(wh, name)
            return deployments.read_targets(wh, name)

    def track(self, name: str) -> dict:
        """The paper record since go-live (`returns`, Sharpe, CAGR, worst drawdown) beside the
        backtest's expectation: the same strategy before go-live, and the interval in which
        the live Sharpe ratio would fall 95% of the time were the backtest right."""
        with self.warehouse() as wh:
            return _track().track_record(self.config, wh, deployments.get(wh, name))

    def daily_books(self, as_of: str | date) -> dict:
        """Every live deployment's book for the session after `as_of` (`quant.live.book`), each
        decided book's track record written beside it; by name, what was decided or why not."""
        with self.warehouse(write=True) as wh:
            books = book.daily_books(self.config, wh, day_of(as_of))
            for name, decided in books.items():
                if "names" in decided:
                    deployment = deployments.get(wh, name)
                    record = _track().track_record(self.config, wh, deployment)
                    _track().write_track(self.config, deployment, record)
        return books


def _track():
    """quant.live.track: the paper record beside the backtest's expectation."""
    from quant.live import track  # pandas and plotly: only when a track record is read

    return track
