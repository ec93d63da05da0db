"""`quant demo`: the main job on the bundled default, from an empty folder to a report.

Steps: a workspace, real prices (bokeh_sampledata), the generated news corpus with its planted
effect; then the warehouse summary. Running it again reuses what is there.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from data.ingest import ingest_files
from data.samples import sample_prices_path, write_sample_news
from data.status import warehouse_status
from data.warehouse import Warehouse
from quant.config import load_config

console = Console(stderr=True)


def run_demo(root: Path, quiet: bool = False) -> dict:
    from quant.cli import init_workspace, score_documents, table_of

    started = time.perf_counter()
    say = (lambda *a: None) if quiet else console.print
    init_workspace(root)
    config = load_config(root)
    summary: dict = {"workspace": str(config.root)}
    with Warehouse(config.warehouse_path) as wh:
        say("[bold]1/2[/] ingesting bundled real prices (bokeh_sampledata)")
        results = ingest_files(wh, "prices", [sample_prices_path()], source="bokeh_sampledata")
        prices = wh.query("SELECT ticker, session, open, close, adj_close FROM prices")
        news_path = config.cache_dir / "sample_news.parquet"
        if not news_path.exists():
            write_sample_news(news_path, prices)
        say("[bold]2/2[/] ingesting the generated news corpus (planted effect, strength 0.3)")
        results += ingest_files(wh, "news", [news_path])
        summary["ingest"] = [r.as_dict() for r in results]
        say("[bold]3[/] scoring the news with the default local model")
        summary["score"] = score_documents(config, wh, quiet=quiet)
        summary["warehouse"] = warehouse_status(wh)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    if not quiet:
        console.print(table_of(summary["warehouse"]["tables"], title="warehouse"))
        console.print(f"demo finished in {summary['seconds']} s; workspace: {config.root}")
    return summary
