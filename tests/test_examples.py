"""The examples run: the custom-signal script, the StockNet walk-through (real data, the real
model) and the notebook, rendered from its script and executed in a kernel."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from tests.conftest import dataset

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_a_custom_signal_is_evaluated_and_backtested(tmp_path):
    out = runpy.run_path(str(EXAMPLES / "custom_signal.py"))["main"](tmp_path / "ws")
    assert out["evaluation"].signal == "reversal" and out["evaluation"].first.rows > 1000
    assert out["run"].params["signal"] == "reversal" and out["report"].exists()


@pytest.mark.slow
def test_the_stocknet_walk_through(tmp_path):
    prices, tweets = dataset("stocknet", "prices.parquet"), dataset("stocknet",
                                                                    "tweets_2014.parquet")
    out = runpy.run_path(str(EXAMPLES / "stocknet.py"))["main"](prices, tweets, 96,
                                                               tmp_path / "ws")
    assert out["scored"]["written"] == 96 and out["scored"]["failed"] == 0
    assert out["evaluation"].first.rows > 0 and out["run"].kind == "single"


@pytest.mark.slow
def test_the_notebook_executes(tmp_path):
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")
    notebook = jupytext.read(EXAMPLES / "walkthrough.py")
    nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code"
               for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o for o in outputs if "text/html" in o.get("data", {})]
    assert any("Evaluation(" in o["data"]["text/html"] for o in html)   # objects render
    assert any("StoredRun(" in o["data"]["text/html"] for o in html)
    # figures show where plotly cannot run (GitHub, nbviewer): a PNG beside plotly's JSON
    figures = [o for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert len(figures) >= 2 and all("image/png" in o["data"] for o in figures)
