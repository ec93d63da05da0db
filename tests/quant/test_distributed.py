"""The Ray engine (a local Ray with 2 CPUs) gives what the local engine gives."""

import json
from datetime import date, datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

pytest.importorskip("ray", reason="ray is not installed (pip install .[distributed])")

from data.ingest import ingest_news  # noqa: E402
from data.warehouse import Warehouse  # noqa: E402
from llm.infer.engine import Engine  # noqa: E402
from quant.api import init_workspace  # noqa: E402
from quant.backtests.backtest import Settings, sweep  # noqa: E402
from quant.config import load_config  # noqa: E402
from quant.errors import JobError  # noqa: E402
from quant.models import load_request  # noqa: E402
from quant.pipeline import PanelParams, build_panel  # noqa: E402
from quant.text import distributed  # noqa: E402
from quant.text.scoring import score_pending  # noqa: E402
from strategies import get_strategy  # noqa: E402
from tests.llm.tiny import build_tiny_model  # noqa: E402
from tests.quant.helpers import calendar_prices, signals_frame  # noqa: E402

COLUMNS = ["doc_id", "ticker", "status", "sentiment", "confidence", "event_type",
           "model_id", "model_fingerprint", "prompt_version", "mode"]


@pytest.fixture(scope="module")
def ray_local():
    import ray

    distributed.init(num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), "qwen3_moe")


def _workspace(root, tiny):
    init_workspace(root)
    toml = (root / "quant.toml").read_text().replace('spec = "default"', f'spec = "{tiny}"')
    (root / "quant.toml").write_text(toml.replace('precision = "auto"', 'precision = "fp32"'))
    config = load_config(root)
    news = root / "news.jsonl"
    start = datetime(2024, 1, 2, 12, tzinfo=timezone.utc)
    news.write_text("\n".join(json.dumps({
        "published_at": (start + timedelta(hours=5 * i)).isoformat(),
        "title": f"Story {i} {'beats' if i % 2 else 'misses'}", "body": "Results are out.",
        "tickers": ["AAA", "BBB"] if i % 3 == 0 else ["CCC"]}) for i in range(90)))
    with Warehouse(config.warehouse_path) as wh:
        ingest_news(wh, news)
    return config


def _signals(config, engine_name, tiny, marker=None):
    request = load_request(config)   # the tiny model at fp32, as quant.toml says
    with Warehouse(config.warehouse_path) as wh:
        engine = Engine(request.load())
        if engine_name == "ray":
            scorer = distributed.ray_scorer(request, engine, "score", workers=2, batch_size=16,
                                            fail_once_marker=marker)
            summary = score_pending(wh, engine, scorer=scorer)
        else:
            summary = score_pending(wh, engine)
        rows = wh.query("SELECT * FROM signals").sort("doc_id", "ticker")
    return summary, rows


def test_ray_scoring_equals_local_and_runs_twice_for_nothing(ray_local, tiny, tmp_path):
    local_summary, local = _signals(_workspace(tmp_path / "a", tiny), "local", tiny)
    config = _workspace(tmp_path / "b", tiny)
    ray_summary, remote = _signals(config, "ray", tiny)
    assert ray_summary["written"] == local_summary["written"] == local.height == 120
    for column in COLUMNS:
        if local[column].dtype == pl.Float64:
            assert np.allclose(local[column].to_numpy(), remote[column].to_numpy(), atol=1e-6)
        else:
            assert local[column].to_list() == remote[column].to_list()
    again, _ = _signals(config, "ray", tiny)
    assert again["pending"] == 0 and again["written"] == 0


def test_workers_load_what_the_driver_loaded_or_refuse(tiny, tmp_path):
    from llm.errors import ModelError

    config = _workspace(tmp_path / "d", tiny)
    request = load_request(config, adapter="some-adapter")
    assert (request.spec, request.precision, request.adapter) == (str(tiny), "fp32",
                                                                  "some-adapter")
    plain = load_request(config)
    loaded = plain.load()
    assert plain.pinned(loaded).load().fingerprint == loaded.fingerprint
    from dataclasses import replace

    with pytest.raises(ModelError, match="not as the 0123456789abcdef asked for"):
        replace(plain, expect="0123456789abcdef").load()


def test_a_killed_worker_is_retried_and_nothing_is_lost_or_doubled(ray_local, tiny, tmp_path):
    config = _workspace(tmp_path / "c", tiny)
    marker = tmp_path / "died-once"
    summary, rows = _signals(config, "ray", tiny, marker=str(marker))
    assert marker.exists()                                  # an actor really died mid-batch
    assert rows.height == 120 == rows.select("doc_id", "ticker").unique().height
    assert summary["written"] == 120


def test_ray_sweep_equals_local(ray_local):
    prices = calendar_prices(["AAA", "BBB", "CCC", "DDD"], date(2023, 1, 3), date(2023, 12, 29))
    rng = np.random.default_rng(0)
    signals = signals_frame([{"ticker": t, "sentiment": float(rng.uniform(-1, 1)),
                              "published_at": datetime(2023, 1, 3, 12, tzinfo=timezone.utc)
                              + timedelta(days=d)} for d in range(350)
                             for t in ("AAA", "BBB", "CCC", "DDD")])
    panel = build_panel(signals, prices, PanelParams(min_history=0))
    strategy = get_strategy("sentiment_long_short")
    local = sweep(panel, strategy, Settings())
    remote = sweep(panel, strategy, Settings(), chunk=4, chunk_map=distributed.ray_map())
    assert [m["sharpe"] for m in local.metrics] == pytest.approx(
        [m["sharpe"] for m in remote.metrics], abs=1e-12)
    assert local.extra["pbo"] == remote.extra["pbo"]
    assert local.extra["best_params"] == remote.extra["best_params"]


def test_an_unreachable_cluster_is_a_clear_error():
    import ray

    if ray.is_initialized():
        ray.shutdown()
    with pytest.raises(JobError, match="cannot reach the Ray cluster at 127.0.0.1:1"):
        distributed.init("127.0.0.1:1")
