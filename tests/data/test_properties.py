"""Properties of every reader: random bytes, random CSV and JSONL fragments and random
timestamps never raise a traceback, every row read is accounted for (inserted, duplicate or
rejected), and nothing outside the validation rules reaches the warehouse."""

import json
import math
import re
import tempfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from data.ingest import ingest_files
from data.ingest.prices import TICKER
from data.warehouse import Warehouse

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=30)
tickers = st.one_of(st.sampled_from(["AAA", "BRK.B", "^GSPC", "aaa", "", "A" * 20, "X;Y"]),
                    texts)
dates = st.one_of(
    st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)).map(str),
    st.integers(-10**9, 10**9).map(str),
    st.sampled_from(["2024-01-02", "20240102", "2024-13-45", "2014-01-10garbage", ""]),
    texts)
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr),
                    st.sampled_from(["1e400", "-1", "0", "10.5", "abc", ""]), texts)
timestamps = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31),
                 timezones=st.one_of(st.none(), st.just(timezone.utc))).map(
                     lambda d: d.isoformat()),
    st.integers(-10**12, 10**13), st.sampled_from(["2024-01-02", "", "now", None]), texts)


def _csv_cell(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


price_files = st.lists(st.tuples(tickers, dates, numbers), max_size=12).map(
    lambda rows: "ticker,date,close\n" + "".join(
        ",".join(_csv_cell(v) for v in row) + "\n" for row in rows))
news_lines = st.one_of(
    st.fixed_dictionaries({"published_at": timestamps, "body": texts,
                           "tickers": st.lists(tickers, max_size=3)}).map(json.dumps),
    texts)
news_files = st.lists(news_lines, max_size=12).map(lambda lines: "\n".join(lines) + "\n")


def _ingest(kind: str, suffix: str, content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"input{suffix}"
        path.write_bytes(content)
        with Warehouse(Path(folder) / "w.duckdb") as wh:
            options = {"filed_date": "2024-01-02", "form_type": "8-K"} if kind == "filings" else {}
            for result in ingest_files(wh, kind, [path], **options):
                assert result.skipped_file or (
                    result.read == result.inserted + result.duplicate + result.rejected
                    or result.read == 0), result
            _check_warehouse(wh)


def _check_warehouse(wh: Warehouse) -> None:
    earliest = datetime(1970, 1, 1, tzinfo=timezone.utc)
    latest = datetime.now(timezone.utc) + timedelta(days=1)
    for ticker, session, close in wh.con.execute(
            "SELECT ticker, session, close FROM prices").fetchall():
        assert re.match(TICKER, ticker), ticker
        assert earliest.date() <= session <= latest.date(), session
        assert math.isfinite(close) and close > 0, close
    for published, body, kind in wh.con.execute(
            "SELECT published_at, body, kind FROM documents").fetchall():
        assert earliest <= published <= latest, published
        assert body is not None and kind in ("news", "filing")
    assert wh.scalar("SELECT count(*) FROM rejects WHERE reason IS NULL OR reason = ''") == 0


@SETTINGS
@given(st.binary(max_size=300), st.sampled_from([
    ("prices", ".csv"), ("prices", ".parquet"), ("news", ".jsonl"), ("news", ".csv"),
    ("news", ".rss"), ("filings", ".txt"), ("filings", ".htm"), ("news", ".jsonl.gz")]))
@example(b"\x80\n\x00", ("news", ".csv"))  # a header that is not UTF-8
def test_random_bytes_never_raise(content, kind_and_suffix):
    _ingest(*kind_and_suffix, content)


@SETTINGS
@given(price_files)
def test_random_price_rows_store_only_valid_prices(text):
    _ingest("prices", ".csv", text.encode("utf-8"))


@SETTINGS
@given(news_files, st.sampled_from([".jsonl", ".csv"]))
def test_random_news_lines_and_timestamps_store_only_valid_documents(text, suffix):
    if suffix == ".csv":  # the same rows as a CSV file
        rows = [json.loads(line) for line in text.splitlines() if _is_object(line)]
        text = "published_at,body,tickers\n" + "".join(
            f"{_csv_cell(str(r['published_at']))},{_csv_cell(r['body'])},"
            f"{_csv_cell(';'.join(r['tickers']))}\n" for r in rows)
    _ingest("news", suffix, text.encode("utf-8"))


def _is_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False
