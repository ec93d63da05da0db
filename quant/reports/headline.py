"""What a report's first screen says, in words and numbers: what was traded, over which period,
whether the figures are in or out of sample, the return and the risk, and how likely the
result is luck (the deflated Sharpe ratio and the probability of backtest overfitting, each
explained in one sentence with the value that would count as evidence).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from quant.reports.run_store import StoredRun

DSR_EVIDENCE = 0.95   # the usual bar: 95% probability that the true Sharpe is above zero
PBO_EVIDENCE = 0.5    # below it, choosing the in-sample best beats choosing at random
PERCENT = ("cagr", "max_drawdown", "total_return", "volatility", "hit_rate", "exposure",
           "alpha", "tracking_error", "var_95", "cvar_95", "best_day", "worst_day",
           "best_month", "worst_month", "winning_months", "excess_cagr",
           "fees_share_of_capital", "yearly_drag", "long", "short", "gross", "net")


def benchmark_of(run: StoredRun) -> str:
    """What the run is measured against, in words."""
    if run.benchmark == "cash":
        return "cash (a market-neutral book is measured against zero; beta is to the market)"
    return f"the market ({run.benchmark}: equal weights in every universe name, held)"


def sample_of(run: StoredRun) -> str:
    """In or out of sample, in words."""
    if run.kind == "walk_forward":
        return (f"out of sample: each of {run.metrics.get('windows', '?')} test windows traded "
                "the parameters chosen on the sessions before it")
    if run.kind == "sweep":
        return (f"in sample: the best of {run.metrics.get('configurations', '?')} "
                "configurations, chosen on the same sessions it is measured on")
    return "one configuration with parameters fixed in advance, over the whole period"


def sample_label(run: StoredRun) -> str:
    """In or out of sample, in three words."""
    return {"walk_forward": "out of sample", "sweep": "in sample, the best of "
            f"{run.metrics.get('configurations', '?')}"}.get(run.kind, "fixed parameters")


def verdict(run: StoredRun) -> str:
    """One sentence: the return and risk, and what kind of evidence they are."""
    m = run.metrics
    sharpe, cagr, drawdown = m.get("sharpe"), m.get("cagr"), m.get("max_drawdown")
    if sharpe is None or cagr is None:
        return "No return could be measured."
    figures = (f"{cagr:+.1%} a year at a Sharpe ratio of {sharpe:.2f}, worst drawdown "
               f"{drawdown:.1%}")
    if run.kind == "walk_forward":
        return f"Out of sample it made {figures}."
    if run.kind == "sweep":
        return (f"Its best configuration made {figures} in sample: a selection, not a "
                "forecast (the walk-forward run is the out-of-sample test).")
    return f"It made {figures}."


def luck(run: StoredRun) -> list[str]:
    """The deflated Sharpe ratio and the PBO, each in one sentence, when the run has them."""
    out = []
    dsr = run.metrics.get("deflated_sharpe")
    if isinstance(dsr, dict) and dsr.get("dsr") is not None:
        side = "meets" if dsr["dsr"] >= DSR_EVIDENCE else "falls short of"
        out.append(
            f"Deflated Sharpe {dsr['dsr']:.2f}: the probability that the in-sample best's true "
            f"Sharpe ratio is above zero, given that {dsr.get('trials', '?')} configurations "
            f"were tried; {DSR_EVIDENCE} is the usual bar for evidence, and this {side} it.")
    pbo = run.metrics.get("pbo")
    if isinstance(pbo, dict) and pbo.get("pbo") is not None:
        side = "below" if pbo["pbo"] < PBO_EVIDENCE else "not below"
        out.append(
            f"Probability of backtest overfitting {pbo['pbo']:.2f}: how often the "
            f"configuration best in one half of the sessions ranks in the bottom half of the "
            f"other ({pbo.get('splits', '?')} splits); it must be below {PBO_EVIDENCE} for "
            f"choosing the best to beat choosing at random, and it is {side}.")
    return out


def headline(run: StoredRun) -> dict:
    """The first screen as data (metrics.json carries it too)."""
    signal = run.signals.get("signal")
    return {"strategy": run.strategy, "kind": run.kind,
            "period": f"{run.period[0]} to {run.period[1]}", "signal": signal,
            "params": run.params, "sample": sample_of(run), "verdict": verdict(run),
            "benchmark": benchmark_of(run), "luck": luck(run)}


def headline_html(run: StoredRun) -> str:
    h = headline(run)
    traded = f", trading {html.escape(str(h['signal']))}" if h["signal"] else ""
    params = ", ".join(f"{k} = {v}" for k, v in h["params"].items())
    which = "Last window's parameters" if run.kind == "walk_forward" else "Parameters"
    return (f"<section class='headline'><h1>{html.escape(run.strategy)}{traded}, "
            f"{html.escape(h['period'])}</h1>"
            f"<p class='verdict'>{html.escape(h['verdict'])}</p>"
            f"<p><b>Figures:</b> {html.escape(h['sample'])}. <b>Benchmark:</b> "
            f"{html.escape(h['benchmark'])}.</p>"
            + "".join(f"<p>{html.escape(line)}</p>" for line in h["luck"])
            + f"<p class='small'>{which}: {html.escape(params or 'none')}. Run "
              f"{html.escape(run.run_id)}.</p></section>")


def as_shown(metric: str, value: object) -> object:
    """A metric as a reader reads it: shares as percentages, ratios to two places."""
    if not isinstance(value, float):
        return value
    return f"{value:.1%}" if metric in PERCENT else f"{value:.2f}"
