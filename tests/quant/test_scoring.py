import json
from datetime import date

import pytest

import llm
from data.ingest import ingest_files, ingest_news
from llm.infer.engine import Engine
from llm.infer.prompts import SCORE_VERSION
from quant.signal_store import SignalSet, filing_evidence
from quant.text.scoring import ITEM_EVENTS, score_pending
from tests.conftest import dataset


@pytest.fixture
def engine(tiny_qwen):
    return Engine(llm.load(str(tiny_qwen), "fp32"), batch_size=8, max_input_tokens=512,
                  min_label_mass=0.0)


def _news(wh, tmp_path):
    rows = [{"published_at": f"2024-01-0{d}T15:00:00Z", "title": f"Story {d}",
             "body": "Apple beats earnings" if d % 2 else "", "tickers": ["AAPL", "MSFT"]}
            for d in range(1, 6)]
    rows[1]["body"] = "Microsoft misses guidance"
    path = tmp_path / "n.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    ingest_news(wh, path)


def test_every_document_ticker_pair_gets_one_row_and_rerun_writes_nothing(wh, tmp_path, engine):
    _news(wh, tmp_path)
    pairs = wh.scalar("SELECT sum(len(tickers)) FROM documents")
    first = score_pending(wh, engine, chunk=3)
    assert first["pending"] == pairs and first["written"] == pairs
    rows = wh.query("SELECT * FROM signals")
    assert rows.height == pairs
    assert set(rows["prompt_version"]) == {SCORE_VERSION}
    assert set(rows["model_fingerprint"]) == {engine.loaded.fingerprint}
    assert rows.filter(rows["status"] == "ok")["sentiment"].is_between(-1, 1).all()
    # Signals inherit the document's publication time.
    joined = wh.scalar("SELECT count(*) FROM signals s JOIN documents d USING (doc_id) "
                       "WHERE s.published_at = d.published_at")
    assert joined == pairs
    again = score_pending(wh, engine)
    assert again["pending"] == 0 and again["written"] == 0
    assert wh.scalar("SELECT count(*) FROM signals") == pairs


def test_another_mode_or_model_is_scored_separately(wh, tmp_path, engine, tiny_deepseek):
    _news(wh, tmp_path)
    score_pending(wh, engine, limit=2)
    assert wh.scalar("SELECT count(*) FROM signals") == 2
    other = Engine(llm.load(str(tiny_deepseek), "fp32"), min_label_mass=0.0)
    assert score_pending(wh, other, limit=2)["written"] == 2
    reason = Engine(engine.loaded, max_new_tokens=4)
    summary = score_pending(wh, reason, mode="reason", limit=2)
    assert summary["failed"] == 2 and summary["written"] == 2  # failures are rows
    failed = wh.query("SELECT reason, sentiment FROM signals WHERE status = 'failed'")
    assert failed["sentiment"].is_null().all() and failed["reason"].str.contains("cap").all()


def test_filing_sections_that_matter_are_scored(wh, engine):
    ingest_files(wh, "filings", [dataset("edgar")])
    summary = score_pending(wh, engine, limit=40)
    sections = wh.query("SELECT DISTINCT section FROM signals")["section"].to_list()
    assert summary["written"] > 0 and "9.01" not in sections
    assert set(sections) <= {"1A", "7", "7A", "I-2", "II-1A", "2.02", "4.02", "5.02", "5.07",
                             "7.01", "8.01", "1.01", "2.01"}


def test_filing_sections_are_read_whole_in_passages(wh, engine):
    edgar = dataset("edgar")
    eight_ks = [p for p in sorted(edgar.iterdir()) if "8-K" in p.name or p.name.startswith("000")]
    ingest_files(wh, "filings", [*eight_ks, edgar / "aapl-10-k-2024-11-01.html.gz"],
                 index=edgar / "index.csv")
    score_pending(wh, engine)
    signals = wh.query("SELECT doc_id, section, ticker, status, event_type, decoding "
                       "FROM signals WHERE section != ''")
    assert signals.height > 0
    for row in signals.iter_rows(named=True):
        decoding = json.loads(row["decoding"])
        if row["section"] in ITEM_EVENTS:  # the item number says what happened
            assert decoding["event_source"] == "item"
            if row["status"] == "ok":
                assert row["event_type"] == ITEM_EVENTS[row["section"]]
        text = wh.scalar("SELECT text FROM filing_sections WHERE doc_id = ? AND item = ?",
                         [row["doc_id"], row["section"]])
        read = wh.query("SELECT start_char, end_char, tokens FROM signal_passages WHERE "
                        "doc_id = ? AND section = ? AND ticker = ? ORDER BY passage",
                        [row["doc_id"], row["section"], row["ticker"]])
        assert read.height == decoding["passages"]
        rest = list(text)  # every character of the section is in a passage, or white space
        for start, end in read.select("start_char", "end_char").iter_rows():
            rest[start:end] = [" "] * (end - start)
        assert "".join(rest).strip() == ""
        assert (read["tokens"] <= engine.max_input_tokens).all()
    risk = wh.scalar("SELECT max(passages) FROM (SELECT count(*) AS passages FROM "
                     "signal_passages WHERE section = '1A' GROUP BY doc_id, ticker)")
    assert risk > 20  # Apple's risk factors are read to the end, not their first page
    # What a report shows: the strongest section signals, each with the passage behind it.
    which = SignalSet(engine.loaded.fingerprint, engine.prompt_version("score"), "score",
                      engine.loaded.model_id)
    evidence = filing_evidence(wh, which, date(1990, 1, 1), date(2030, 1, 1))
    assert 0 < len(evidence) <= 5
    for row in evidence:
        text = wh.scalar("SELECT s.text FROM filing_sections s JOIN signals g ON "
                         "g.doc_id = s.doc_id AND g.section = s.item WHERE g.ticker = ? AND "
                         "g.section = ? AND round(g.sentiment, 3) = ?",
                         [row["ticker"], row["section"], row["section_sentiment"]])
        assert row["passage"] and row["passage"] in text


@pytest.mark.parametrize("title,body,text", [
    ("Apple beats", "Apple beats", "Apple beats"),                  # title-only, stored twice
    ("Apple beats", "Apple beats. Sales soar.", "Apple beats. Sales soar."),  # body repeats it
    ("Apple beats", "Sales soar.", "Apple beats. Sales soar."),
    (None, "Sales soar.", "Sales soar."),
    ("", "Sales soar.", "Sales soar."),
    ("Apple beats", "", "Apple beats"),
])
def test_a_document_offers_its_title_and_body_once(wh, title, body, text):
    from data.text import document_text_sql

    got = wh.con.execute(f"SELECT {document_text_sql('$t', '$b')}", {"t": title, "b": body})
    assert got.fetchone()[0] == text
