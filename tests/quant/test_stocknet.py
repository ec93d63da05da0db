"""Real data end to end: StockNet prices and posts, a sample scored by the default model,
aligned point-in-time and evaluated (slow: the real model)."""

import pytest

from data.ingest import ingest_news, ingest_prices
from data.warehouse import Warehouse
from quant.api import Workspace, init_workspace
from quant.config import load_config
from quant.evaluate import evaluate_signal
from quant.pipeline import PanelParams, panel_from_warehouse
from tests.conftest import dataset

pytestmark = pytest.mark.slow


def test_stocknet_sample_scores_aligns_and_evaluates(tmp_path):
    prices, tweets = dataset("stocknet", "prices.parquet"), dataset("stocknet",
                                                                    "tweets_2014.parquet")
    init_workspace(tmp_path)
    config = load_config(tmp_path)
    with Warehouse(config.warehouse_path) as wh:
        ingest_prices(wh, prices, source="stocknet")
        ingest_news(wh, tweets, source="twitter")
        summary = Workspace.on(config, wh).score(limit=160, sample=True)
        assert summary["written"] == 160 and summary["failed"] == 0
        spread = wh.query("SELECT count(DISTINCT date_trunc('month', published_at)) AS m "
                          "FROM signals")["m"][0]
        assert spread >= 6  # the sample covers the year, not its first days
        panel, which = panel_from_warehouse(wh, PanelParams(horizons=(1, 5)))
    assert which.model_id.startswith("SmolLM2")
    report = evaluate_signal(panel, "sentiment_z", (1, 5))
    entry = report.horizons[1]
    assert entry.rows > 0 and entry.rank_ic["n"] > 0
    assert sum(entry.dropped.values()) + entry.rows == panel.height
