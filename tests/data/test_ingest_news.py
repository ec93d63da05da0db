import gzip
import json

import polars as pl
import pytest

from data.errors import DataError
from data.ingest import ingest_files, ingest_news


def _jsonl(rows):
    return "\n".join(json.dumps(r) for r in rows) + "\n"


def test_jsonl_truncated_lines_bad_bytes_and_bad_times_are_rejected(wh, tmp_path):
    good = [
        {"published_at": "2024-01-02T15:04:05Z", "title": "Apple beats", "body": "Strong quarter",
         "tickers": ["AAPL"]},
        {"published_at": "2024-01-02 09:00:00", "text": "Naive time, assumed New York",
         "ticker": "MSFT"},
    ]
    raw = _jsonl(good).encode()
    raw += b'{"published_at": "2024-01-03T10:00:00Z", "body": "cut off\n'
    raw += b'{"published_at": "2024-01-03T10:00:00Z", "body": "caf\xe9 latin-1"}\n'
    raw += _jsonl([{"published_at": "2024-01-04", "body": "date only"},
                   {"published_at": "yesterday", "body": "no"},
                   {"published_at": "2024-01-05T10:00:00Z", "body": ""}]).encode()
    path = tmp_path / "news.jsonl"
    path.write_bytes(raw)
    result = ingest_news(wh, path)
    assert (result.read, result.inserted, result.rejected) == (7, 2, 5)
    reasons = wh.query("SELECT line, reason FROM rejects ORDER BY line").rows()
    assert [line for line, _ in reasons] == [3, 4, 5, 6, 7]
    assert "invalid JSON" in reasons[0][1] and reasons[1][1] == "not valid UTF-8"
    assert reasons[2][1] == "date without a time of day"
    assert reasons[3][1].startswith("unparseable timestamp")
    assert reasons[4][1] == "empty text"
    docs = wh.query("SELECT tickers, published_at, tz_assumed FROM documents "
                    "ORDER BY published_at").rows()
    assert docs[0][0] == ["MSFT"] and docs[0][2] == "America/New_York"
    assert docs[0][1].hour == 14  # 09:00 New York in January is 14:00 UTC
    assert docs[1][0] == ["AAPL"] and docs[1][2] is None


def test_same_story_under_two_tickers_is_one_document(wh, tmp_path):
    rows = [{"created_at": "2014-01-02T15:00:00Z", "text": "big news", "ticker": t}
            for t in ("AAPL", "GOOG")]
    path = tmp_path / "posts.jsonl"
    path.write_text(_jsonl(rows))
    result = ingest_news(wh, path, source="twitter")
    assert result.inserted == 1 and result.duplicate == 1
    assert wh.scalar("SELECT tickers FROM documents") == ["AAPL", "GOOG"]
    # The same story arriving later under a third ticker adds the ticker, nothing else.
    (tmp_path / "more.jsonl").write_text(_jsonl([{**rows[0], "ticker": "MSFT"}]))
    ingest_news(wh, tmp_path / "more.jsonl", source="twitter")
    assert wh.scalar("SELECT tickers FROM documents") == ["AAPL", "GOOG", "MSFT"]
    assert wh.scalar("SELECT count(*) FROM documents") == 1


def test_cashtags_match_known_instruments(wh, tmp_path):
    wh.con.execute("INSERT INTO instruments (ticker) VALUES ('AAPL'), ('T')")
    path = tmp_path / "n.csv"
    path.write_text("time,headline\n"
                    "2024-01-02T10:00:00Z,$AAPL jumps while $ZZZZ is unknown\n"
                    "2024-01-02T11:00:00Z,tokenised $ aapl and $ t\n")
    ingest_news(wh, path)
    tickers = wh.query("SELECT tickers FROM documents ORDER BY published_at")["tickers"]
    assert tickers.to_list() == [["AAPL"], ["AAPL", "T"]]


def test_csv_with_bad_bytes_keeps_the_good_rows(wh, tmp_path):
    content = (b"published_at,body,tickers\n2024-01-02T10:00:00Z,fine,AAPL\n"
               b"2024-01-02T11:00:00Z,bad \xff\xfe bytes,AAPL\n"
               b"2024-01-02T12:00:00Z,also fine,\"AAPL,MSFT\"\n")
    (tmp_path / "n.csv").write_bytes(content)
    result = ingest_news(wh, tmp_path / "n.csv")
    assert (result.inserted, result.rejected) == (2, 1)
    assert wh.scalar("SELECT reason FROM rejects") == "not valid UTF-8"


def test_parquet_with_datetime_column_and_meta(wh, tmp_path):
    frame = pl.DataFrame({
        "published_at": pl.Series(["2024-01-02T10:00:00"]).str.to_datetime().dt.replace_time_zone(
            "UTC"),
        "title": ["T"], "body": ["B"], "tickers": [["aapl"]], "sentiment_label": ["bullish"]})
    frame.write_parquet(tmp_path / "n.parquet")
    assert ingest_news(wh, tmp_path / "n.parquet").inserted == 1
    tickers, meta = wh.con.execute("SELECT tickers, meta FROM documents").fetchone()
    assert tickers == ["AAPL"] and json.loads(meta) == {"sentiment_label": "bullish"}


def test_rss_feed(wh, tmp_path):
    feed = """<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>
    <item><title>Apple up</title><link>http://x/1</link>
      <pubDate>Tue, 02 Jan 2024 15:04:05 GMT</pubDate><category>AAPL</category></item>
    <item><title>No date here</title><link>http://x/2</link></item>
    </channel></rss>"""
    (tmp_path / "feed.xml.gz").write_bytes(gzip.compress(feed.encode()))
    result = ingest_news(wh, tmp_path / "feed.xml.gz")
    assert (result.inserted, result.rejected) == (1, 1)
    source, url, tickers = wh.con.execute("SELECT source, url, tickers FROM documents").fetchone()
    assert (source, url, tickers) == ("Wire", "http://x/1", ["AAPL"])


def test_empty_and_unknown_files(wh, tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(DataError, match="empty file"):
        ingest_news(wh, tmp_path / "empty.jsonl")
    (tmp_path / "x.docx").write_text("hi")
    with pytest.raises(DataError, match="unsupported news file type"):
        ingest_news(wh, tmp_path / "x.docx")


def test_a_bad_file_in_a_batch_does_not_stop_the_others(wh, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.jsonl").write_text("")
    (inbox / "b.jsonl").write_text(_jsonl([{"published_at": "2024-01-02T10:00:00Z",
                                           "body": "ok"}]))
    results = ingest_files(wh, "news", [inbox])
    assert [(r.inserted, r.rejected) for r in results] == [(0, 1), (1, 0)]
    assert "empty file" in wh.scalar("SELECT reason FROM rejects")
