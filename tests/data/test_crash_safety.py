import subprocess
import sys
import textwrap
import time

from bench.news_corpus import write_news_parquet
from data.warehouse import Warehouse


def test_sigkill_mid_ingest_leaves_nothing_of_that_file(tmp_path):
    db = tmp_path / "w.duckdb"
    Warehouse(db).close()
    news = write_news_parquet(tmp_path / "big.parquet", rows=600_000)
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        from data.ingest import ingest_news
        from data.warehouse import Warehouse
        wh = Warehouse({str(db)!r})
        print("started", flush=True)
        ingest_news(wh, {str(news)!r})
        print("finished", flush=True)
    """)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "started"
    time.sleep(1.0)
    assert child.poll() is None, "the ingest finished before it could be killed"
    child.kill()
    child.wait()
    with Warehouse(db) as wh:  # opens cleanly, and the partial transaction is gone
        assert wh.scalar("SELECT count(*) FROM documents") == 0
        assert wh.scalar("SELECT count(*) FROM ingested_files") == 0
