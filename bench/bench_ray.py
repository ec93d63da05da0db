"""Ray (2 workers) vs the local engine on this machine: scoring 2,000 documents with the tiny
fixture model, and a sweep of 1,000 configurations.

On one small machine Ray adds start-up, serialisation and scheduling overhead and may well be
slower; the point is that the same code runs on a cluster. Ratios are local / Ray, same process.

Run: `python bench/bench_ray.py [DOCS] [CONFIGS]`.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def score_timings(root: Path, docs: int) -> dict:
    from data.ingest import ingest_news
    from data.warehouse import Warehouse
    from llm.infer.engine import Engine
    from quant.api import init_workspace
    from quant.config import load_config
    from quant.models import load_request
    from quant.text import distributed
    from quant.text.scoring import score_pending
    from tests.llm.tiny import build_tiny_model

    tiny = build_tiny_model(root / "tiny")
    timings = {}
    for engine_name in ("local", "ray"):
        ws = root / engine_name
        init_workspace(ws)
        toml = (ws / "quant.toml").read_text().replace('spec = "default"', f'spec = "{tiny}"')
        (ws / "quant.toml").write_text(toml.replace('"auto"', '"fp32"'))
        config = load_config(ws)
        start = datetime(2024, 1, 2, tzinfo=timezone.utc)
        (ws / "news.jsonl").write_text("\n".join(json.dumps({
            "published_at": (start + timedelta(minutes=37 * i)).isoformat(),
            "body": f"Story {i}: results {'beat' if i % 2 else 'missed'} estimates.",
            "tickers": [f"T{i % 50}"]}) for i in range(docs)))
        with Warehouse(config.warehouse_path) as wh:
            ingest_news(wh, ws / "news.jsonl")
            request = load_request(config)
            engine = Engine(request.load())
            scorer = None
            if engine_name == "ray":
                distributed.init(num_cpus=2)
                scorer = distributed.ray_scorer(request, engine, "score", workers=2)
            started = time.perf_counter()
            score_pending(wh, engine, scorer=scorer)
            timings[engine_name] = time.perf_counter() - started
    return timings


def sweep_timings(configs: int) -> dict:
    from quant.backtests.backtest import Settings, local_map, sweep
    from quant.pipeline import PanelParams, build_panel
    from quant.text import distributed
    from strategies import get_strategy
    from tests.quant.helpers import calendar_prices, signals_frame

    prices = calendar_prices([f"T{i}" for i in range(50)], date(2014, 1, 2), date(2023, 12, 29))
    rng = np.random.default_rng(0)
    signals = signals_frame([{"ticker": f"T{rng.integers(50)}",
                              "sentiment": float(rng.uniform(-1, 1)),
                              "published_at": datetime(2014, 1, 2, tzinfo=timezone.utc)
                              + timedelta(hours=int(h))}
                             for h in rng.integers(0, 87000, 50_000)])
    panel = build_panel(signals, prices, PanelParams(min_history=0))
    grid = [{"quantile": float(q), "rebalance": r, "signal": "sentiment_z", "gross": 1.0}
            for q in np.linspace(0.1, 0.5, 10) for r in range(1, 101)][:configs]
    strategy = get_strategy("sentiment_long_short")
    timings = {}
    for name, chunk_map in (("local", local_map), ("ray", distributed.ray_map())):
        started = time.perf_counter()
        sweep(panel, strategy, Settings(), grid=grid, chunk_map=chunk_map)
        timings[name] = time.perf_counter() - started
    return timings


def main(docs: int = 2000, configs: int = 1000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        score = score_timings(Path(tmp), docs)
    print(f"scoring {docs} docs: local {score['local']:.1f} s, ray (2 workers) "
          f"{score['ray']:.1f} s -> local/ray = {score['local'] / score['ray']:.2f}")
    swept = sweep_timings(configs)
    print(f"sweep of {configs} configurations: local {swept['local']:.1f} s, ray "
          f"{swept['ray']:.1f} s -> local/ray = {swept['local'] / swept['ray']:.2f}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
