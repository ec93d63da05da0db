"""The dictionary's reading of every unit of text the model reads, stored once and carried
into the panel and its features."""

import polars as pl
import pytest

import quant
from data.calendar import get_calendar
from data.text import document_text_sql, section_text_sql
from llm import lexicon
from quant import lexicon_store
from quant.features import check_point_in_time, with_features
from quant.pipeline import align
from quant.signal_store import choose_signal_set, load_signals
from tests.conftest import dataset
from tests.quant.helpers import sample_workspace


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return sample_workspace(tmp_path_factory.mktemp("lexicon"))


def test_every_news_document_is_read_once_in_the_text_the_model_reads(root):
    with quant.open(root).warehouse() as wh:
        stored = wh.query("SELECT * FROM lexicon_counts ORDER BY doc_id")
        texts = wh.query(f"SELECT doc_id, {document_text_sql()} AS text FROM documents "
                         "WHERE kind = 'news' ORDER BY doc_id")
        assert stored["doc_id"].to_list() == texts["doc_id"].to_list()  # ingest completed it
        assert (stored["section"] == "").all()
        expected = pl.DataFrame([lexicon.counts(t) for t in texts["text"]])
        for column in ("words", *lexicon.LISTS, "tone"):
            assert stored[column].to_list() == pytest.approx(expected[column].to_list(),
                                                             abs=1e-12)
        assert (stored["tone"] != 0).sum() > stored.height // 4   # a real reading, not zeros
    with quant.open(root, write=True).warehouse(write=True) as wh:
        assert lexicon_store.complete(wh) == 0                     # nothing read twice


def test_filing_sections_are_read_section_by_section(tmp_path):
    edgar = dataset("edgar")
    quant.init_workspace(tmp_path)
    ws = quant.open(tmp_path, write=True)
    ws.ingest("filings", [edgar / "aapl-10-k-2024-11-01.html.gz"], index=edgar / "index.csv")
    with ws.warehouse() as wh:
        stored = wh.query("SELECT * FROM lexicon_counts")
        sections = wh.query(f"SELECT doc_id, item AS section, "
                            f"{section_text_sql()} AS text FROM filing_sections")
    joined = sections.join(stored, on=["doc_id", "section"], how="left")
    assert joined["words"].null_count() == 0 and joined.height > 5
    risk = joined.filter(pl.col("section") == "1A").row(0, named=True)
    assert risk["words"] == lexicon.counts(risk["text"])["words"] > 5000
    assert risk["uncertainty"] > 0.01 and risk["negative"] > risk["positive"]  # risk factors


def test_the_panel_carries_the_sessions_mean_dictionary_tone_into_features(root):
    ws = quant.open(root)
    panel = ws.panel(horizons=(1,))
    with ws.warehouse() as wh:
        signals = load_signals(wh, choose_signal_set(wh))
    # each signal's own reading, aligned to the session it is traded at, averaged by hand
    expected = (align(signals, get_calendar("XNYS")).group_by("ticker", "session")
                .agg(pl.col("lexicon_tone").mean().alias("expected")))
    assert signals["lexicon_tone"].null_count() == 0 and expected.height > 100
    joined = panel.join(expected, on=["ticker", "session"], how="inner")
    assert joined.height == expected.filter(pl.col("session").is_in(panel["session"])).height
    assert joined["lexicon_tone"].to_list() == pytest.approx(joined["expected"].to_list(),
                                                             abs=1e-12)
    assert panel.filter(pl.col("n_docs") == 0)["lexicon_tone"].is_null().all()
    featured = with_features(panel, ["lm_tone", "lm_uncertainty"])
    assert featured["lm_tone"].to_list() == pytest.approx(
        featured["lexicon_tone"].round(12).to_list(), abs=1e-12, nan_ok=True)
    check_point_in_time(panel, ["lm_tone", "lm_uncertainty"])


def test_a_warehouse_from_before_the_dictionary_reads_as_not_read_yet(root, tmp_path):
    """Read-only, an older warehouse gives null dictionary columns (a reader cannot add the
    table); the first writer migrates it and the dictionary is read."""
    import shutil

    import duckdb

    older = tmp_path / "older"
    shutil.copytree(root, older)
    con = duckdb.connect(str(older / "warehouse.duckdb"))
    con.execute("DROP TABLE lexicon_counts")
    con.execute("DELETE FROM schema_version WHERE version = 11")
    con.close()
    panel = quant.open(older).panel(horizons=(1,))
    assert panel.height > 0 and panel["lexicon_tone"].is_null().all()
    with quant.open(older, write=True).warehouse(write=True) as wh:
        assert lexicon_store.complete(wh) > 0
    assert quant.open(older).panel(horizons=(1,))["lexicon_tone"].drop_nulls().len() > 0
