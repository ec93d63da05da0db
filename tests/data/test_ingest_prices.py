import polars as pl
import pytest

from data.errors import DataError
from data.ingest import ingest_prices

LONG = """ticker,date,open,high,low,close,adj_close,volume
AAPL,2024-01-02,10,11,9,10.5,10.4,1000
AAPL,2024-01-03,10.5,12,10,11.5,11.4,1200
MSFT,2024-01-02,20,21,19,20.5,20.4,3000
MSFT,not-a-date,20,21,19,20.5,20.4,3000
MSFT,2024-01-03,20,21,19,-1,20.4,3000
MSFT,2024-01-04,20,19,21,20,20,3000
AAPL,2024-01-03,10.5,12,10,11.5,11.4,1200
"""


def test_long_csv_with_rejects_and_in_file_duplicates(wh, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(LONG)
    result = ingest_prices(wh, path)
    assert (result.read, result.inserted, result.duplicate, result.rejected) == (7, 3, 1, 3)
    assert result.reasons == {"bad or missing date": 1, "non-positive price": 1,
                              "high below low": 1}
    rejects = wh.query("SELECT line, reason FROM rejects ORDER BY line")
    assert rejects["line"].to_list() == [4, 5, 6]
    assert wh.scalar("SELECT count(*) FROM instruments") == 2


def test_reingesting_the_same_file_changes_nothing(wh, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(LONG)
    ingest_prices(wh, path)
    before = (wh.scalar("SELECT count(*) FROM prices"), wh.scalar("SELECT count(*) FROM rejects"))
    again = ingest_prices(wh, path)
    assert again.skipped_file and again.inserted == 0
    after = (wh.scalar("SELECT count(*) FROM prices"), wh.scalar("SELECT count(*) FROM rejects"))
    assert before == after


def test_same_rows_in_another_file_are_duplicates(wh, tmp_path):
    (tmp_path / "a.csv").write_text(LONG)
    (tmp_path / "b.csv").write_text(LONG + "IBM,2024-01-02,1,1,1,1,1,1\n")
    ingest_prices(wh, tmp_path / "a.csv")
    result = ingest_prices(wh, tmp_path / "b.csv")
    assert result.inserted == 1 and result.duplicate == 4


def test_wide_parquet_with_mapping(wh, tmp_path):
    path = tmp_path / "wide.parquet"
    pl.DataFrame({"Day": ["2024-01-02", "2024-01-03"], "AAPL": [1.0, 2.0],
                  "BRK-B": [None, 3.0]}).write_parquet(path)
    result = ingest_prices(wh, path, mapping={"Day": "date"}, wide=True)
    assert result.inserted == 3 and result.rejected == 0
    rows = wh.query("SELECT ticker, session::VARCHAR AS s, close, adj_close FROM prices "
                    "ORDER BY ticker, session").rows()
    assert rows == [("AAPL", "2024-01-02", 1.0, 1.0), ("AAPL", "2024-01-03", 2.0, 2.0),
                    ("BRK-B", "2024-01-03", 3.0, 3.0)]


def test_missing_columns_and_empty_files_are_clear_errors(wh, tmp_path):
    (tmp_path / "nodate.csv").write_text("ticker,close\nAAPL,1\n")
    with pytest.raises(DataError, match="no date column"):
        ingest_prices(wh, tmp_path / "nodate.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty file"):
        ingest_prices(wh, tmp_path / "empty.csv")
    assert wh.scalar("SELECT count(*) FROM prices") == 0


def test_gzip_is_read_transparently(wh, tmp_path):
    import gzip

    (tmp_path / "p.csv.gz").write_bytes(gzip.compress(LONG.encode()))
    assert ingest_prices(wh, tmp_path / "p.csv.gz").inserted == 3
