"""Backtest reports: `reports/<run_id>/report.html`, `metrics.json` and `equity.png`. The reports
of a folder share one copy of plotly.js beside them (`reports/plotly-<version>.min.js`), so a
report opens with no network and weighs hundreds of kB, not megabytes.

The report shows the strategy against its benchmark (equity, drawdown, rolling Sharpe, monthly
returns), the signal's evaluation (IC series, decay, quantile returns, turnover, coverage), the
sweep heat map and walk-forward windows when the run has them, and the run's provenance.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import polars as pl
from plotly.offline import get_plotlyjs

from quant import jsonable
from quant.artefact import write_file
from quant.backtests import stats
from quant.backtests.tearsheet import ROLLING as ROLLING_RISK
from quant.backtests.tearsheet import monthly_grid, rolling
from quant.errors import BacktestError
from quant.factor_figures import ic_figures
from quant.notebook_figure import shown
from quant.reports.headline import as_shown, benchmark_of, headline, headline_html, sample_label

if TYPE_CHECKING:  # both call into this module for their figures; here they are only types
    from quant.evaluate import Evaluation
    from quant.reports.run_store import StoredRun

ROLLING = 63


def figure_html(fig: go.Figure, div_id: str) -> str:
    # The toolbar stands upright at the right edge, clear of the title at the top left.
    fig.update_layout(template="plotly_white", height=360, margin=dict(l=50, r=40, t=50, b=40),
                      modebar=dict(orientation="v"), title=dict(x=0.01, xanchor="left",
                                                                font=dict(size=14)))
    return _compact(fig).to_html(full_html=False, include_plotlyjs=False, div_id=div_id)


def _compact(fig: go.Figure) -> go.Figure:
    """Data as a chart needs it: single precision (7 digits), sessions as dates (a report is
    a few hundred kB, not megabytes of doubles and midnight timestamps)."""
    for trace in fig.data:
        for axis in ("x", "y", "z"):
            values = getattr(trace, axis, None)
            if values is None or isinstance(values, str):
                continue
            array = np.asarray(values)
            if array.dtype.kind == "f":
                setattr(trace, axis, array.astype(np.float32))
            elif array.dtype.kind == "M":
                setattr(trace, axis, np.datetime_as_string(array, unit="D"))
            elif array.dtype.kind == "O" and array.size and hasattr(array.flat[0], "isoformat"):
                setattr(trace, axis, [v.isoformat()[:10] for v in array.ravel()])
    return fig


def equity_figure(returns: pd.Series, benchmark: pd.Series | None) -> go.Figure:
    fig = go.Figure()
    fig.add_scatter(x=returns.index, y=(1 + returns).cumprod(), name="strategy")
    if benchmark is not None:
        fig.add_scatter(x=benchmark.index, y=(1 + benchmark).cumprod(), name="market",
                        line=dict(dash="dot"))
    return fig.update_layout(title="Equity (growth of 1)")


def drawdown_figure(returns: pd.Series) -> go.Figure:
    drawdown = stats.drawdown(returns)
    return go.Figure(go.Scatter(x=drawdown.index, y=drawdown, fill="tozeroy",
                                name="drawdown")).update_layout(title="Drawdown")


def rolling_sharpe_figure(returns: pd.Series) -> go.Figure:
    sharpe = stats.rolling_sharpe(returns, ROLLING)
    return go.Figure(go.Scatter(x=sharpe.index, y=sharpe, name="rolling Sharpe")).update_layout(
        title=f"Rolling Sharpe ({ROLLING} sessions)")


def rolling_risk_figure(returns: pd.Series, market: pd.Series) -> go.Figure:
    window = rolling(returns, market)
    fig = go.Figure()
    fig.add_scatter(x=window.index, y=window["beta"], name="beta to the market")
    fig.add_scatter(x=window.index, y=window["volatility"], name="volatility (annualised)",
                    yaxis="y2")
    return fig.update_layout(title=f"Rolling beta and volatility ({ROLLING_RISK} sessions)",
                             yaxis=dict(title="beta"),
                             yaxis2=dict(title="volatility", overlaying="y", side="right",
                                         tickformat=".0%"))


def exposure_figure(account: pl.DataFrame) -> go.Figure:
    """Long, short, gross and net exposure held, as shares of the account's value."""
    fig = go.Figure()
    for column in ("long", "short", "gross", "net"):
        fig.add_scatter(x=account["session"].to_list(), y=account[column].to_list(),
                        name=column)
    return fig.update_layout(title="Exposure held (share of the account's value)",
                             yaxis=dict(tickformat=".0%"))


def monthly_figure(returns: pd.Series) -> go.Figure:
    monthly = (1 + returns).groupby([returns.index.year, returns.index.month]).prod() - 1
    table = monthly.unstack()
    return go.Figure(go.Heatmap(z=table.to_numpy() * 100, x=[str(m) for m in table.columns],
                                y=[str(y) for y in table.index], colorscale="RdYlGn", zmid=0,
                                colorbar=dict(title="%"))).update_layout(
        title="Monthly returns (%)", xaxis_title="month")


def turnover_figure(daily_turnover: pd.Series | None, evaluation: Evaluation
                    ) -> go.Figure | None:
    if daily_turnover is None or daily_turnover.empty:
        return None
    fig = go.Figure(go.Scatter(x=daily_turnover.index,
                               y=daily_turnover.rolling(21, min_periods=1).mean(),
                               name="strategy (21-session mean)"))
    for side, value in evaluation.first.turnover.items():
        if value is not None:
            fig.add_hline(y=value, line_dash="dot", annotation_text=f"signal {side} quantile")
    return fig.update_layout(title="Turnover (share of the book traded per session)")


def sweep_figure(sweep: pd.DataFrame | None) -> go.Figure | None:
    if sweep is None or sweep.empty:
        return None
    params = [c for c in sweep.columns if c not in ("sharpe",) and sweep[c].nunique() > 1]
    if len(params) >= 2:
        table = sweep.pivot_table(index=params[0], columns=params[1], values="sharpe",
                                  aggfunc="max")
        fig = go.Figure(go.Heatmap(z=table.to_numpy(), x=[str(c) for c in table.columns],
                                   y=[str(i) for i in table.index], colorscale="Viridis",
                                   colorbar=dict(title="Sharpe")))
        return fig.update_layout(title="Sweep: Sharpe by parameters", xaxis_title=params[1],
                                 yaxis_title=params[0])
    label = sweep[params[0]].astype(str) if params else sweep.index.astype(str)
    return go.Figure(go.Bar(x=label, y=sweep["sharpe"])).update_layout(title="Sweep: Sharpe")


def walk_forward_figure(windows: list[dict] | None) -> go.Figure | None:
    if not windows:
        return None
    fig = go.Figure()
    fig.add_bar(x=[str(w["test_start"]) for w in windows],
                y=[w.get("test_sharpe") for w in windows], name="out-of-sample Sharpe",
                hovertext=[", ".join(f"{k} = {v}" for k, v in w["params"].items())
                           for w in windows])  # on hover: as bar text it was unreadable
    fig.add_scatter(x=[str(w["test_start"]) for w in windows],
                    y=[w.get("train_sharpe") for w in windows], name="in-sample Sharpe",
                    mode="markers+lines")
    return fig.update_layout(title="Walk-forward windows (test start)")


def table_html(rows: dict | list[dict], title: str) -> str:
    if isinstance(rows, dict):
        rows = [{"key": k, "value": v} for k, v in rows.items()]
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in r.values())
                   + "</tr>" for r in rows)
    return f"<h2>{html.escape(title)}</h2><table><tr>{head}</tr>{body}</table>"


def _fmt(value: object) -> str:
    """A cell as a reader reads it: nested settings as `key = value` pairs, never JSON."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            value = json.loads(value)
        except ValueError:
            return value
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict):
        return "; ".join(f"{k} = {_fmt(v)}" for k, v in value.items()) or "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return "" if value is None else str(value)


STYLE = """body{font-family:system-ui,sans-serif;margin:24px;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:8px 0 24px}td,th{border:1px solid #ddd;padding:4px 8px;
font-size:13px;text-align:left}h1{font-size:22px}
.headline{border-left:4px solid #36c;padding:2px 14px;margin-bottom:20px}
.verdict{font-size:17px}.small{color:#666;font-size:12px}h2{font-size:17px;margin-top:28px}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:12px}"""


# What a reader would see wrong, counted in the page once drawn (a hidden element that tests
# read from headless Chromium): charts drawn, script errors, chart titles the toolbar covers
# or the chart cuts, and raw JSON in the visible text.
_LAYOUT_CHECK = """
function box(e){return e?e.getBoundingClientRect():null}
function meet(a,b){return a&&b&&a.width&&b.width&&a.left<b.right&&b.left<a.right&&
a.top<b.bottom&&b.top<a.bottom}
var charts=document.querySelectorAll('.js-plotly-plot'),bad=[];
charts.forEach(function(c){var t=box(c.querySelector('.gtitle')),m=box(c.querySelector('.modebar')),
o=box(c);if(meet(t,m)||(t&&t.right>o.right+1))bad.push(c.id);});
document.getElementById('render-status').textContent='charts:'+charts.length+';errors:'+
window.__errors.length+';overlaps:'+bad.length+';json:'+
(document.body.innerText.indexOf('{"')>=0?1:0)+';where:'+bad.join(',');
"""


def _tear_sheet_html(sheet: dict, benchmark: str) -> str:
    """The tear sheet's tables: against the market and the benchmark, the distribution, the
    costs, the worst drawdowns, monthly returns with numbers."""
    def shown(section: str) -> dict:
        return {k.replace("_", " "): as_shown(k, v) for k, v in sheet.get(section, {}).items()}

    costs = shown("costs")
    return "".join((
        "<h2>Tear sheet</h2><div class='grid'><div>",
        table_html(shown("against_market"), "Against the market (alpha and tracking error "
               "annualised)"),
        table_html(shown("against_benchmark"), f"Against the benchmark: {benchmark}"),
        "</div><div>",
        table_html(shown("distribution"), "Daily returns: distribution and tails"),
        table_html(costs, "Costs paid (fees and slippage, in the account's currency and as a "
               "share)") if costs else "", "</div></div>",
        table_html([{**d, "depth": f"{d['depth']:.1%}", "recovery": d["recovery"] or "not yet"}
                for d in sheet["drawdowns"]], "Worst drawdowns (sessions from peak to recovery)"),
        table_html(monthly_grid(sheet["monthly"]), "Monthly returns")))


def _overfitting_checks(run: StoredRun) -> list[dict]:
    """The sweep's honest statistics as a reader reads them, not as JSON."""
    m, rows = run.metrics, []
    if isinstance(m.get("deflated_sharpe"), dict):
        d = m["deflated_sharpe"]
        rows.append({"check": "deflated Sharpe ratio", "value": as_shown("dsr", d.get("dsr")),
                     "detail": f"in-sample best Sharpe {as_shown('s', d.get('sharpe_annualised'))}"
                               f" against {as_shown('s', d.get('sr0_annualised'))} expected "
                               f"from {d.get('trials')} tries by luck alone; evidence at 0.95"})
    if isinstance(m.get("pbo"), dict):
        p = m["pbo"]
        rows.append({"check": "probability of backtest overfitting",
                     "value": as_shown("pbo", p.get("pbo")),
                     "detail": f"{p.get('splits')} splits (CSCV); below 0.5 is needed"})
    for key in ("configurations", "windows"):
        if key in m:
            rows.append({"check": key, "value": m[key], "detail": ""})
    return rows


def _provenance(run: StoredRun, warehouse: str) -> dict:
    return {"period": f"{run.period[0]} .. {run.period[1]}", "strategy": run.strategy,
            "kind": run.kind, "params": run.params,
            **{k: v for k, v in run.signals.items() if k not in ("evidence", "features")},
            "settings": run.settings, "created_at": str(run.created_at),
            "warehouse": warehouse}


def notebook_figures(run: StoredRun) -> dict:
    """The run's figures by name, each with a static picture for notebooks."""
    return shown(figures(run))


def figures(run: StoredRun) -> list[tuple[str, go.Figure]]:
    returns = run.returns["strategy"]
    market = run.market
    figures = [("equity", equity_figure(returns, market)),
               ("drawdown", drawdown_figure(returns)),
               ("rolling_sharpe", rolling_sharpe_figure(returns)),
               ("monthly", monthly_figure(returns)), *ic_figures(run.evaluation)]
    figures.append(("rolling_risk", rolling_risk_figure(returns, market)))
    try:
        figures.append(("exposure", exposure_figure(run.account())))
    except BacktestError:  # a walk-forward keeps no single book
        pass
    for name, fig in (("turnover", turnover_figure(run.turnover, run.evaluation)),
                      ("sweep", sweep_figure(run.sweep)),
                      ("walk_forward", walk_forward_figure(run.windows))):
        if fig is not None:
            figures.append((name, fig))
    return figures


def write_report(directory: Path, run: StoredRun, warehouse: str) -> Path:
    """Write metrics.json, equity.png, then report.html for one run; the HTML's path."""
    directory.mkdir(parents=True, exist_ok=True)
    charts = "".join(f'<div class="chart">{figure_html(fig, name)}</div>'
                     for name, fig in figures(run))
    market = run.market
    bench = stats.performance(market).iloc[0].to_dict()
    comparison = [{"metric": k.replace("_", " "), "strategy": as_shown(k, run.metrics.get(k)),
                   "market": as_shown(k, bench.get(k))}
                  for k in ("sharpe", "sortino", "cagr", "max_drawdown", "calmar", "hit_rate",
                            "total_return", "volatility", "turnover", "exposure")]
    honest = _overfitting_checks(run)
    sheet = run.tear_sheet()
    provenance = _provenance(run, warehouse)
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>{html.escape(run.run_id)}</title><style>{STYLE}</style>
<script>window.__errors=[];window.addEventListener('error',function(e){{
window.__errors.push(String(e.message))}});</script>
<script type="text/javascript" src="../{shared_plotly(directory.parent)}"></script>
</head><body>
{headline_html(run)}
{table_html(comparison, f"Performance, {sample_label(run)} (strategy vs the market)")}
{table_html(honest, "Overfitting checks (of the in-sample selection)") if honest else ""}
<div class="grid">{charts}</div>
{_tear_sheet_html(sheet, benchmark_of(run))}
{table_html(run.signals.get("evidence") or [], "Passages behind the strongest filing signals")}
{table_html(run.signals.get("features") or [], "Learned model: feature importance and each "
        "feature's rank IC over the out-of-sample sessions")}
{table_html(run.evaluation.coverage, "Signal coverage")}
{table_html([{"note": n} for n in run.evaluation.first.notes], "What limits the evaluation")}
{table_html(run.evaluation.first.dropped, "Rows left out of the evaluation, by reason")}
{table_html(run.windows, "Walk-forward windows")}
{table_html(provenance, "Provenance")}
<div id="render-status" hidden></div>
<script>{_LAYOUT_CHECK}</script></body></html>"""
    evaluation = {k: v for k, v in run.evaluation.to_json().items() if k != "daily_ic"}
    write_file(directory / "metrics.json", json.dumps(
        {"run_id": run.run_id, "strategy": run.strategy, "kind": run.kind,
         "params": run.params, "headline": headline(run), "metrics": run.metrics,
         "tear_sheet": sheet,
         "provenance": provenance,
         "market": bench, "evaluation": evaluation}, indent=2, default=jsonable.default))
    write_file(directory / "equity.png", lambda p: _equity_png(
        p, run.returns["strategy"], market, run.strategy))
    # report.html last: where it exists, the report's other files do too.
    path = write_file(directory / "report.html", page)
    return path


def shared_plotly(reports: Path) -> str:
    """plotly.js, written once per reports folder (named by its version, so reports of two
    plotly releases never mix) and read by every report there: each report is then a few
    hundred kB instead of 4.8 MB, and still needs no network to view."""
    import plotly

    name = f"plotly-{plotly.__version__}.min.js"
    if not (reports / name).exists():
        write_file(reports / name, get_plotlyjs())
    return name


def write_index(path: Path, runs: list[dict], as_of=None, live: str = "") -> Path:
    """An index page of every run (`RunStore.listing`), newest first: kind and what it means
    for the figures, period, Sharpe, CAGR, worst drawdown, deflated Sharpe, a link; `live`
    (`quant.reports.track_page.live_section`) above them."""
    labels = {"walk_forward": "out of sample", "sweep": "in sample (best of a grid)",
              "single": "fixed parameters"}

    def cell(value, percent=False):
        if value is None:
            return "<td></td>"
        return f"<td>{value:.1%}</td>" if percent else f"<td>{value:.2f}</td>"

    rows = "".join(
        f"<tr><td><a href='{html.escape(r['run_id'])}/report.html'>{html.escape(r['run_id'])}"
        f"</a></td><td>{html.escape(str(r['strategy']))}</td>"
        f"<td>{html.escape(labels.get(r['kind'], r['kind']))}</td>"
        f"<td>{r['period_start']} to {r['period_end']}</td>{cell(r.get('sharpe'))}"
        f"{cell(r.get('cagr'), True)}{cell(r.get('max_drawdown'), True)}"
        f"{cell(r.get('deflated_sharpe'))}</tr>" for r in runs)
    when = f" (as of {html.escape(str(as_of))})" if as_of else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file(path, (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Reports</title>"
        f"<style>{STYLE}</style></head><body>{live}"
        f"<h1>Backtest reports{when}: {len(runs)} runs</h1>"
        "<table><tr><th>run</th><th>strategy</th><th>figures</th><th>period</th>"
        "<th>Sharpe</th><th>CAGR</th><th>worst drawdown</th><th>deflated Sharpe</th></tr>"
        f"{rows}</table></body></html>"))
    return path


def _equity_png(path: Path, returns: pd.Series, benchmark: pd.Series | None,
                title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4), dpi=100)
    ax.plot(returns.index, (1 + returns).cumprod(), label="strategy")
    if benchmark is not None:
        ax.plot(benchmark.index, (1 + benchmark).cumprod(), label="market", linestyle=":")
    ax.set_title(f"{title}: equity (growth of 1)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
