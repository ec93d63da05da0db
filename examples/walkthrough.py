# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A research session, start to finish
#
# The bundled sample (real daily prices of five large US stocks and a generated news corpus
# with a planted effect), scored by the bundled model, aligned point-in-time, evaluated and
# backtested: everything the CLI does, as objects in a notebook. `SAMPLE` keeps it short.

# %%
import tempfile
from pathlib import Path

import polars as pl

import quant
from data.samples import sample_prices_path, write_sample_news

SAMPLE = 128                                   # headlines to score (the whole corpus: None)
root = Path(tempfile.mkdtemp()) / "research"
quant.init_workspace(root)
ws = quant.open(root, write=True)
ws

# %% [markdown]
# ## Data in: prices, then news

# %%
ws.ingest("prices", [sample_prices_path()])
prices = ws.panel(signals=False).select("ticker", "session", "open", "close", "adj_close")
news = write_sample_news(root / "news.parquet", prices)
[r.as_dict()["inserted"] for r in ws.ingest("news", [news])]

# %%
ws.documents(ticker="AAPL", limit=5).select("published_at", "title")

# %% [markdown]
# ## Signals: the bundled model scores a spread-out sample

# %%
progress = []
summary = ws.score(limit=SAMPLE, sample=True, on_progress=lambda done, total:
                   progress.append(done))
{k: summary[k] for k in ("written", "ok", "failed", "docs_per_s", "prompt_version")}

# %% [markdown]
# ## The point-in-time panel and the signal's evaluation

# %%
panel = ws.panel(horizons=(1, 5))
panel.filter(pl.col("n_docs") > 0).select(
    "ticker", "session", "decision_at", "latest_published_at", "sentiment", "sentiment_z",
    "fwd_ret_1").head()

# %%
evaluation = ws.evaluate(panel)
evaluation

# %%
evaluation.figures()["quantiles"]

# %% [markdown]
# ## A backtest, its figures and its report

# %%
run = ws.backtest("sentiment_long_short")
run

# %%
run.figures()["equity"]

# %%
ws.report(run)
