"""Bad inputs: every case a clear reject or error, nothing read from outside what was named,
and a rejected file can be fixed and ingested again."""

import gzip
import json
import os

import pytest

from data.errors import DataError
from data.ingest import ingest_files, ingest_news, ingest_prices
from data.ingest.batch import expand_paths

HTML_8K = ("<html><body><p>Item 2.02 Results of Operations</p><p>Revenue rose.</p>"
           "<p>Item 9.01 Exhibits</p><p>99.1</p></body></html>")


def test_a_rejected_filing_is_ingested_once_its_date_is_given(wh, tmp_path):
    path = tmp_path / "8k.html"
    path.write_text(HTML_8K)
    for _ in range(3):  # retried as it is: still rejected, one reject row, not three
        first = ingest_files(wh, "filings", [path], form_type="8-K")[0]
        assert first.rejected == 1 and not first.skipped_file
    assert wh.scalar("SELECT count(*) FROM rejects") == 1
    fixed = ingest_files(wh, "filings", [path], form_type="8-K", filed_date="2024-01-02")[0]
    assert fixed.inserted == 1 and not fixed.skipped_file
    again = ingest_files(wh, "filings", [path], form_type="8-K", filed_date="2024-01-02")[0]
    assert again.skipped_file


def test_the_same_file_read_another_way_is_read_again(wh, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("Symbol,Day,Close\nAAA,2024-01-02,10\n")
    assert ingest_prices(wh, path, mapping={"Day": "date"}).inserted == 1
    assert ingest_prices(wh, path, mapping={"Day": "date"}).skipped_file
    other = ingest_prices(wh, path, mapping={"Day": "date"}, source="vendor")
    assert not other.skipped_file and other.duplicate == 1


def test_links_out_of_a_folder_are_not_followed(wh, tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("ticker,text,published_at\nAAA,password=hunter2,2024-01-02T10:00:00Z\n")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "inside.jsonl").write_text(
        '{"published_at": "2024-01-02T10:00:00Z", "body": "fine", "tickers": ["AAA"]}')
    (inbox / "link.csv").symlink_to(secret)
    files, skipped = expand_paths([inbox])
    assert files == [inbox / "inside.jsonl"] and skipped[0][0] == inbox / "link.csv"
    results = ingest_files(wh, "news", [inbox])
    assert [r.inserted for r in results] == [0, 1]
    assert "not followed" in next(iter(results[0].reasons))
    assert not wh.scalar("SELECT count(*) FROM rejects WHERE raw LIKE '%hunter2%'")
    assert not wh.scalar("SELECT count(*) FROM documents WHERE body LIKE '%hunter2%'")


def test_only_regular_files_are_read(wh, tmp_path):
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    result = ingest_files(wh, "news", [fifo])[0]   # would block forever if opened
    assert "not a regular file" in next(iter(result.reasons))
    with pytest.raises(DataError, match="not a regular file"):
        ingest_news(wh, "/dev/zero")


def test_files_and_decompressed_files_over_the_limit_are_rejected(wh, tmp_path):
    big = tmp_path / "big.csv"
    big.write_text("ticker,date,close\n" + "AAA,2024-01-02,1\n" * 1000)
    with pytest.raises(DataError, match="over the limit"):
        ingest_prices(wh, big, max_bytes=1000)
    bomb = tmp_path / "bomb.csv.gz"
    bomb.write_bytes(gzip.compress(b"ticker,date,close\n" + b" " * 10**6))
    result = ingest_files(wh, "prices", [bomb], max_bytes=10**5)[0]
    assert "decompresses to over" in next(iter(result.reasons))


def test_a_missing_index_file_is_an_error(wh, tmp_path):
    path = tmp_path / "8k.html"
    path.write_text(HTML_8K)
    with pytest.raises(DataError, match="no index file"):
        ingest_files(wh, "filings", [path], index=str(tmp_path / "nope.csv"))


@pytest.mark.parametrize("row,reason", [
    ("AAA,2014-01-10,NaN", "price is not a finite number"),
    ("AAA,2014-01-10,inf", "price is not a finite number"),
    ("AAA,2014-01-10,1e400", "price is not a finite number"),
    ("AAA,2014-01-10,12abc", "close is not a number: 12abc"),
    ("AAA,2014-01-10garbage,10", "bad or missing date"),
    ("AAA,0001-01-01,10", "date outside 1970-01-01.."),
    ("AAA,9999-12-31,10", "date outside 1970-01-01.."),
    ("A A;DROP,2014-01-10,10", "not a ticker symbol"),
    ("AAA,2014-01-10,-3", "non-positive price"),
])
def test_bad_price_rows_are_rejected_with_their_reason(wh, tmp_path, row, reason):
    path = tmp_path / "p.csv"
    path.write_text(f"ticker,date,close\nBBB,2014-01-09,5\n{row}\n")
    result = ingest_prices(wh, path)
    assert (result.inserted, result.rejected) == (1, 1)
    assert next(iter(result.reasons)).startswith(reason)
    assert wh.scalar("SELECT count(*) FROM prices") == 1


def test_dates_are_read_strictly(wh, tmp_path):
    import polars as pl

    path = tmp_path / "p.parquet"
    pl.DataFrame({"ticker": ["AAA", "AAA"], "date": [20140102, 20141399],
                  "close": [1.0, 2.0]}).write_parquet(path)
    result = ingest_prices(wh, path)
    assert (result.inserted, result.rejected) == (1, 1)
    assert str(wh.scalar("SELECT session FROM prices")) == "2014-01-02"   # YYYYMMDD, not days
    csv = tmp_path / "p.csv"
    csv.write_text("ticker,date,close\nBBB,2014-01-02 00:00:00,1\nBBB,20140103,2\n")
    assert ingest_prices(wh, csv).inserted == 2


def test_conflicting_prices_are_rejected_identical_ones_counted(wh, tmp_path):
    a = tmp_path / "a.csv"
    a.write_text("ticker,date,close\nAAA,2014-01-02,10\nAAA,2014-01-02,10\nAAA,2014-01-02,11\n")
    result = ingest_prices(wh, a)
    assert (result.inserted, result.duplicate, result.rejected) == (1, 1, 1)
    assert "close 11.0 here, 10.0 on line 1" in next(iter(result.reasons))
    b = tmp_path / "b.csv"
    b.write_text("ticker,date,close\nAAA,2014-01-02,12\nAAA,2014-01-03,12\n")
    result = ingest_prices(wh, b)
    assert (result.inserted, result.rejected) == (1, 1)
    assert "12.0 here, 10.0 already stored" in next(iter(result.reasons))
    assert wh.scalar("SELECT close FROM prices WHERE session = '2014-01-02'") == 10.0


def test_wide_files_reject_non_numbers_and_skip_empty_cells(wh, tmp_path):
    path = tmp_path / "w.csv"
    path.write_text("date,AAA,BBB\n2014-01-02,10,\n2014-01-03,oops,5\n")
    result = ingest_prices(wh, path, wide=True)
    assert (result.inserted, result.rejected) == (2, 1)
    assert next(iter(result.reasons)) == "close is not a number: oops"


def test_a_latin1_file_keeps_its_accents(wh, tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes("ticker,date,close,name\nNESN,2014-01-02,70,NESTLÉ\n".encode("latin-1"))
    assert ingest_prices(wh, path, mapping={"name": "company"}).inserted == 1
    from data.ingest.source import as_utf8

    assert as_utf8("NESTLÉ".encode("latin-1")).decode() == "NESTLÉ"


@pytest.mark.parametrize("stamp", ["2099-01-02T10:00:00Z", "0001-01-02T10:00:00Z",
                                   "1969-12-31T23:00:00Z"])
def test_implausible_news_timestamps_are_rejected(wh, tmp_path, stamp):
    path = tmp_path / "n.jsonl"
    path.write_text(f'{{"published_at": "2024-01-02T10:00:00Z", "body": "ok", "tickers": ["A"]}}\n'
                    f'{{"published_at": "{stamp}", "body": "odd", "tickers": ["A"]}}\n')
    result = ingest_news(wh, path)
    assert (result.inserted, result.rejected) == (1, 1)
    assert next(iter(result.reasons)).startswith("timestamp outside 1970-01-01")


def test_a_truncated_submission_is_rejected_and_the_whole_one_then_accepted(wh, tmp_path):
    import gzip as gz

    from tests.conftest import dataset

    whole = gz.decompress(dataset("edgar", "0001011438-98-000429.txt.gz").read_bytes())
    cut = tmp_path / "cut.txt"
    cut.write_bytes(whole[: len(whole) // 2])
    result = ingest_files(wh, "filings", [cut])[0]
    assert "truncated submission" in next(iter(result.reasons))
    full = tmp_path / "cut.txt"
    full.write_bytes(whole)
    assert ingest_files(wh, "filings", [full])[0].inserted == 1
    assert wh.scalar("SELECT count(*) FROM rejects") == 0   # the retry replaced the reject


@pytest.mark.parametrize("options,reason", [
    ({"form_type": "8-K", "filed_date": "2024-13-45"}, "bad filed date '2024-13-45'"),
    ({"form_type": "8-K", "filed_date": "yesterday"}, "bad filed date 'yesterday'"),
])
def test_bad_filed_dates_are_rejects_not_tracebacks(wh, tmp_path, options, reason):
    path = tmp_path / "8k.html"
    path.write_text(HTML_8K)
    result = ingest_files(wh, "filings", [path], **options)[0]
    assert next(iter(result.reasons)).startswith(reason)


def test_a_failed_index_rebuild_leaves_search_working(wh, tmp_path, monkeypatch):
    from data import search

    path = tmp_path / "n.jsonl"
    path.write_text('{"published_at": "2024-01-02T10:00:00Z", "body": "apple pie recipe", '
                    '"tickers": ["AAA"]}')
    ingest_files(wh, "news", [path])
    before = search.search(wh, "apple")
    passages = wh.scalar("SELECT count(*) FROM search_passages")
    wh.con.execute("INSERT INTO documents (doc_id, kind, source, published_at, ingested_at, "
                   "tickers, body) VALUES ('late', 'news', 'test', now(), now(), ['AAA'], "
                   "'banana bread')")
    real = wh.con

    class Killed(Exception):
        pass

    class DiesOnIndex:  # the index build fails after the passages went in
        def __getattr__(self, name):
            return getattr(real, name)

        def execute(self, sql, *args):
            if "create_fts_index" in sql:
                raise Killed
            return real.execute(sql, *args)

    monkeypatch.setattr(wh, "con", DiesOnIndex())
    with pytest.raises(Killed):
        search.refresh_index(wh)
    monkeypatch.undo()
    assert search.search(wh, "apple").height == before.height == 1
    assert wh.scalar("SELECT count(*) FROM search_passages") == passages  # rolled back
    assert search.search(wh, "banana").is_empty()
    search.refresh_index(wh)  # the next rebuild picks the document up
    assert search.search(wh, "banana")["doc_id"].to_list() == ["late"]


@pytest.mark.slow
def test_a_50_mb_filing_is_indexed_in_passages_of_bounded_size(wh, tmp_path):
    """The index build grows faster than linearly with one text's length: a big filing is
    cut into passages, every word of it stays searchable (timed in bench_big_filing)."""
    from bench.bench_big_filing import synthetic_10k
    from data import search

    path = synthetic_10k(tmp_path / "big.htm", 50)
    result = ingest_files(wh, "filings", [path], form_type="10-K", filed_date="2024-01-02")[0]
    assert result.inserted == 1
    longest, total = wh.con.execute(
        "SELECT max(length(text)), sum(length(text)) FROM search_passages").fetchone()
    assert longest <= search.PASSAGE_CHARS + search.LINE_CHARS
    assert total == pytest.approx(wh.scalar("SELECT sum(length(text)) FROM filing_sections"),
                                  rel=0.01)  # all of it, give or take the line breaks
    assert wh.scalar("SELECT count(*) FROM search_passages") > 500
    hits = search.search(wh, "business")
    assert hits["kind"].to_list() == ["filing"]


def test_a_declared_encoding_is_used_and_a_wrong_one_is_a_clear_reject(wh, tmp_path):
    path = tmp_path / "n.csv"
    path.write_bytes("published_at,title,body,tickers\n2024-01-02T10:00:00Z,Café,Nestlé "
                     "rises,AAA\n".encode("cp1252"))
    wrong = ingest_files(wh, "news", [path], encoding="utf-8")[0]
    assert wrong.inserted == 0 and "not valid utf-8 at byte" in next(iter(wrong.reasons))
    right = ingest_files(wh, "news", [path], encoding="cp1252")[0]
    assert right.inserted == 1 and not right.skipped_file  # read another way: read again
    assert wh.scalar("SELECT title || ' ' || body FROM documents") == "Café Nestlé rises"
    with pytest.raises(DataError, match="unknown encoding 'klingon'"):
        ingest_files(wh, "news", [path], encoding="klingon")


def test_utf16_is_known_by_its_byte_order_mark(wh, tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes("ticker,date,close\nAAA,2024-01-02,10.5\n".encode("utf-16"))
    result = ingest_files(wh, "prices", [path])[0]
    assert result.inserted == 1, result
    assert wh.scalar("SELECT close FROM prices WHERE ticker = 'AAA'") == 10.5


UNTOUCHED = ("prices", "instruments", "filing_sections", "signals", "backtests", "job_runs")


def _counts(wh) -> dict:
    return {t: wh.scalar(f"SELECT count(*) FROM {t}") for t in UNTOUCHED}


NEWS_LINES = [  # (JSONL line, the reject reason it gets, or None: stored as given)
    ('{"published_at": "2024-01-02T10:00:00Z", "body": "fine", "tickers": ["AAA"]}', None),
    ('{"published_at": "2024-01-02T10:00:00", "body": "naive: New York assumed"}', None),
    ('{"published_at": "2024-01-02T10:00:00Z", "body": "x\'); DROP TABLE prices; --"}', None),
    ('{"published_at": "2024-01-02T10:00:00Z", "body": "\\u001b[31mred\\u001b[0m [/]"}', None),
    ('{"published_at": "2099-01-02T10:00:00Z", "body": "from the future"}', "timestamp outside"),
    ('{"published_at": "0001-01-02T10:00:00Z", "body": "year one"}', "timestamp outside"),
    ('{"published_at": "2024-01-02", "body": "no time of day"}', "date without a time of day"),
    ('{"published_at": "", "body": "no time"}', "missing timestamp"),
    ('{"published_at": "2024-01-02T10:00:00Z", "body": ""}', "empty text"),
    ('{"published_at": "2024-01-02T10:00:00Z", "body": "cut', "invalid JSON"),
    ('[1, 2, 3]', "JSON line is not an object"),
]


@pytest.mark.parametrize(("line", "reason"), NEWS_LINES)
def test_each_bad_news_line_is_one_reject_and_nothing_else_changes(wh, tmp_path, line, reason):
    path = tmp_path / "n.jsonl"
    path.write_text(line + "\n")
    before = _counts(wh)
    result = ingest_files(wh, "news", [path])[0]
    assert _counts(wh) == before
    if reason is None:
        assert (result.inserted, result.rejected) == (1, 0), result
        body = json.loads(line)["body"]
        assert wh.scalar("SELECT body FROM documents") == body  # stored exactly as given
    else:
        assert (result.inserted, result.rejected) == (0, 1), result
        assert next(iter(result.reasons)).startswith(reason), result.reasons
        assert wh.scalar("SELECT count(*) FROM documents") == 0


def test_a_warehouse_without_a_search_index_gets_one_on_the_next_ingest(wh, tmp_path):
    from data import search

    path = tmp_path / "n.jsonl"
    path.write_text('{"published_at": "2024-01-02T10:00:00Z", "body": "apple pie recipe"}\n')
    ingest_files(wh, "news", [path])
    search.load_fts(wh.con)  # as an older version left it: documents, no passages, no index
    wh.con.execute("PRAGMA drop_fts_index('search_passages')")
    wh.con.execute("DELETE FROM search_passages")
    assert not search.has_index(wh)
    assert ingest_files(wh, "news", [path])[0].skipped_file  # nothing new, index built anyway
    assert search.search(wh, "apple").height == 1
