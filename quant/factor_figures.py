"""The factor half of a report, as alphalens draws it: the daily rank IC and its rolling mean,
its monthly means, its distribution (histogram and a normal QQ plot), its decay over horizons,
the mean return of each quantile with its standard error, and each quantile's cumulative
return."""

from __future__ import annotations

from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from quant.notebook_figure import shown

if TYPE_CHECKING:
    from quant.evaluate import Evaluation


def notebook_figures(evaluation: Evaluation) -> dict:
    """The factor figures by name, each with a static picture for notebooks."""
    return shown(ic_figures(evaluation))


def ic_figures(evaluation: Evaluation) -> list[tuple[str, go.Figure]]:
    """The factor figures by name; those the evaluation has no data for are left out."""
    figures = []
    daily = evaluation.daily_ic.to_pandas()
    if not daily.empty:
        daily["session"] = pd.to_datetime(daily["session"])
        ic = daily.set_index("session")["rank_ic"].dropna()
        figures += [("ic_series", _series(ic)), ("ic_monthly", _monthly(ic)),
                    ("ic_distribution", _distribution(ic)), ("ic_qq", _qq(ic))]
    decay = {str(h): v for h, v in evaluation.decay.items() if v is not None}
    if decay:
        figures.append(("ic_decay", go.Figure(go.Bar(x=list(decay), y=list(decay.values())))
                        .update_layout(title="IC decay: mean rank IC by horizon (sessions)")))
    first = evaluation.first
    if first.mean_return_by_quantile:
        figures.append(("quantiles", _quantiles(first.mean_return_by_quantile,
                                                first.return_by_quantile_se)))
    if evaluation.quantile_daily is not None and evaluation.quantile_daily.height:
        figures.append(("quantiles_cumulative", _cumulative(evaluation.quantile_daily)))
    return figures


def _series(ic: pd.Series) -> go.Figure:
    fig = go.Figure()
    fig.add_bar(x=ic.index, y=ic, name="daily rank IC", opacity=0.35)
    fig.add_scatter(x=ic.index, y=ic.rolling(21, min_periods=5).mean(), name="21-session mean")
    return fig.update_layout(title="Rank IC (horizon 1)")


def _monthly(ic: pd.Series) -> go.Figure:
    table = ic.groupby([ic.index.year, ic.index.month]).mean().unstack()
    return go.Figure(go.Heatmap(
        z=table.to_numpy(), x=[str(m) for m in table.columns], y=[str(y) for y in table.index],
        colorscale="RdYlGn", zmid=0, text=np.round(table.to_numpy(), 3),
        texttemplate="%{text}", colorbar=dict(title="rank IC"))).update_layout(
        title="Mean rank IC by month", xaxis_title="month")


def _distribution(ic: pd.Series) -> go.Figure:
    return go.Figure(go.Histogram(x=ic, nbinsx=40, name="daily rank IC")).update_layout(
        title=f"Daily rank IC: mean {ic.mean():.3f}, std {ic.std():.3f}", xaxis_title="rank IC")


def _qq(ic: pd.Series) -> go.Figure:
    """The daily rank IC's quantiles against the normal's of the same mean and spread: a bend
    at the ends is fat tails."""
    ordered = np.sort(ic.to_numpy())
    fitted = NormalDist(ordered.mean(), ordered.std(ddof=1) or 1.0)
    normal = np.array([fitted.inv_cdf((i + 0.5) / len(ordered)) for i in range(len(ordered))])
    fig = go.Figure(go.Scatter(x=normal, y=ordered, mode="markers", name="daily rank IC"))
    fig.add_scatter(x=normal, y=normal, mode="lines", name="normal", line=dict(dash="dot"))
    return fig.update_layout(title="Rank IC against the normal (QQ)",
                             xaxis_title="normal quantile", yaxis_title="observed")


def _quantiles(means: dict, errors: dict) -> go.Figure:
    labels = [f"Q{q}" for q in means]
    return go.Figure(go.Bar(
        x=labels, y=[v * 1e4 for v in means.values()],
        error_y=dict(type="data", array=[(errors.get(q) or 0.0) * 1e4 for q in means]))
    ).update_layout(title="Mean forward return by quantile (bp, ± standard error)")


def _cumulative(daily) -> go.Figure:
    fig = go.Figure()
    for (quantile,), part in daily.sort("session").group_by("quantile", maintain_order=True):
        growth = (1 + part["ret"].fill_null(0.0)).cum_prod()
        fig.add_scatter(x=part["session"].to_list(), y=growth.to_list(), name=f"Q{quantile}")
    return fig.update_layout(title="Cumulative return by quantile (daily means compounded)")
