"""Daily prices from CSV or Parquet, long (one row per ticker and day) or wide (one column per
ticker), with a column-name mapping. Rows are keyed by (ticker, session date)."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from data.errors import DataError
from data.ingest.source import (
    IngestResult,
    Parsed,
    as_utf8,
    ingest_one,
    inserted_rows,
    logical_suffix,
)
from data.warehouse import Warehouse

PRICE_COLUMNS = ("open", "high", "low", "close", "adj_close", "volume")

# Common spellings mapped to ours, so most vendor files need no mapping at all.
_ALIASES = {
    "symbol": "ticker", "date": "date", "session": "date", "timestamp": "date",
    "adj close": "adj_close", "adjclose": "adj_close", "adjusted_close": "adj_close",
}


def read_price_table(path: Path, content: bytes) -> pl.DataFrame:
    suffix = logical_suffix(path)
    try:
        if suffix == ".parquet":
            return pl.read_parquet(io.BytesIO(content))
        if suffix in (".csv", ".txt"):
            text = as_utf8(content)
            try:
                return pl.read_csv(io.BytesIO(text), infer_schema_length=0)
            except Exception:  # polars' message is advice about its own options: say why
                raise DataError(f"{path}: not a readable CSV: {_csv_problem(text)}; fix that "
                                "line, or export the file again") from None
    except DataError:
        raise
    except Exception as exc:  # polars raises many types for malformed files
        raise DataError(f"{path}: cannot read as {suffix[1:]}: "
                        f"{str(exc).splitlines()[0]}") from None
    raise DataError(f"{path}: unsupported price file type {suffix!r} (use .csv or .parquet)")


def _csv_problem(content: bytes) -> str:
    """Where and why a CSV is malformed, in words."""
    reader = csv.reader(io.StringIO(content.decode("utf-8", errors="replace"), newline=""),
                        strict=True)
    try:
        header = next(reader, [])
        for row in reader:
            if len(row) > len(header):
                return (f"line {reader.line_num} has {len(row)} fields, the header "
                        f"{len(header)}")
    except csv.Error as exc:
        return f"line {reader.line_num}: {exc}"
    return "its layout is not comma-separated values"


def normalise_prices(table: pl.DataFrame, mapping: dict[str, str] | None, wide: bool,
                     wide_field: str, path: Path) -> pl.DataFrame:
    """To the long layout with a `line` column (1-based data row in the file)."""
    rename = {c: _ALIASES.get(c.lower(), c.lower()) for c in table.columns}
    rename.update(mapping or {})
    table = table.rename(rename).with_row_index("line", offset=1).with_columns(
        pl.col("line").cast(pl.Int64))
    if "date" not in table.columns:
        raise DataError(f"{path}: no date column among {table.columns}; map one with "
                        "--map YOURCOL=date")
    if wide:
        value_columns = [c for c in table.columns if c not in ("line", "date")]
        table = table.unpivot(index=["line", "date"], on=value_columns,
                              variable_name="ticker", value_name=wide_field)
        # A wide file's tickers keep their original case: undo the lower-casing above.
        originals = {rename.get(c, c): c for c in rename}
        table = table.with_columns(pl.col("ticker").replace(originals))
    if "ticker" not in table.columns:
        raise DataError(f"{path}: no ticker column among {table.columns}; map one with "
                        "--map YOURCOL=ticker, or pass --wide for one column per ticker")
    if "close" not in table.columns and "adj_close" not in table.columns:
        raise DataError(f"{path}: no close or adj_close column among {table.columns}")
    for column in PRICE_COLUMNS:
        if column not in table.columns:
            table = table.with_columns(pl.lit(None, dtype=pl.Float64).alias(column))
    return table


TICKER = r"^[A-Z0-9][A-Z0-9.\-^=/]{0,15}$"       # AAPL, BRK.B, BF-B, ^GSPC, EURUSD=X
FIRST_SESSION = date(1970, 1, 1)
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$"


def _session(column: pl.Series) -> pl.Expr:
    """Dates parsed strictly: ISO strings (a time of day allowed), YYYYMMDD strings or
    integers, or date types; anything else is null."""
    if column.dtype.is_integer():
        return pl.col("date").cast(pl.String).str.to_date("%Y%m%d", strict=False)
    if column.dtype != pl.String:
        return pl.col("date").cast(pl.Date, strict=False)
    text = pl.col("date").str.strip_chars()
    return (pl.when(text.str.contains(_ISO_DATE))
            .then(text.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False))
            .when(text.str.contains(r"^\d{8}$")).then(text.str.to_date("%Y%m%d", strict=False))
            .otherwise(None))


def validate_prices(table: pl.DataFrame, last_session: date | None = None) -> pl.DataFrame:
    """Typed rows with a `reason` column: null for good rows. Prices must be finite and
    positive, dates plausible (1970 to `last_session`, default tomorrow), tickers symbols."""
    last_session = last_session or date.today() + timedelta(days=1)
    raw = pl.concat_str([pl.col(c).cast(pl.String).fill_null("")
                         for c in ("ticker", "date", *PRICE_COLUMNS)], separator=",")
    text = {c: pl.col(c).cast(pl.String).str.strip_chars() for c in PRICE_COLUMNS}
    typed = table.with_columns(
        raw=raw, ticker=pl.col("ticker").cast(pl.String).str.strip_chars().str.to_uppercase(),
        session=_session(table["date"]),
        **{f"{c}_text": text[c] for c in PRICE_COLUMNS},
        **{c: pl.col(c).cast(pl.Float64, strict=False) for c in PRICE_COLUMNS},
    ).with_columns(close=pl.coalesce("close", "adj_close"),
                   adj_close=pl.coalesce("adj_close", "close"))
    not_a_number = [pl.when(pl.col(f"{c}_text").ne("") & pl.col(c).is_null()).then(
        pl.lit(f"{c} is not a number: ") + pl.col(f"{c}_text").str.slice(0, 40))
        for c in PRICE_COLUMNS]
    prices = ("open", "high", "low", "close", "adj_close")
    reason = (
        pl.when(pl.col("ticker").is_null() | (pl.col("ticker") == "")).then(pl.lit("no ticker"))
        .when(~pl.col("ticker").str.contains(TICKER)).then(pl.lit("not a ticker symbol"))
        .when(pl.col("session").is_null()).then(pl.lit("bad or missing date"))
        .when(~pl.col("session").is_between(FIRST_SESSION, last_session))
        .then(pl.lit(f"date outside {FIRST_SESSION}..{last_session}"))
        .when(pl.coalesce(not_a_number).is_not_null()).then(pl.coalesce(not_a_number))
        .when(pl.col("close").is_null()).then(pl.lit("no close price"))
        .when(pl.any_horizontal([pl.col(c).is_infinite() | pl.col(c).is_nan() for c in prices]))
        .then(pl.lit("price is not a finite number"))
        .when((pl.col("close") <= 0) | (pl.col("adj_close") <= 0))
        .then(pl.lit("non-positive price"))
        .when(pl.col("high") < pl.col("low")).then(pl.lit("high below low"))
        .when(pl.col("volume") < 0).then(pl.lit("negative volume"))
        .otherwise(None)
    )
    return typed.with_columns(reason=reason).drop([f"{c}_text" for c in PRICE_COLUMNS])


def conflicts(valid: pl.DataFrame, stored: pl.DataFrame) -> pl.DataFrame:
    """`valid` with `reason` set on rows that contradict an earlier row of the file or a stored
    price for the same (ticker, session); identical repeats stay good (counted duplicates)."""
    first = valid.unique(["ticker", "session"], keep="first", maintain_order=True).select(
        "ticker", "session", first_line="line", first_close="close",
        first_adj="adj_close")
    checked = valid.join(first, on=["ticker", "session"], how="left").join(
        stored.rename({"close": "stored_close"}), on=["ticker", "session"], how="left")
    differs = ((pl.col("close") - pl.col("first_close")).abs() > 1e-9 * pl.col("close")) | (
        (pl.col("adj_close") - pl.col("first_adj")).abs() > 1e-9 * pl.col("adj_close"))
    stored_differs = ((pl.col("close") - pl.col("stored_close")).abs()
                      > 1e-9 * pl.col("close")).fill_null(False)
    return checked.with_columns(reason=pl.when(differs).then(pl.format(
        "conflicting prices for {} {}: close {} here, {} on line {}", "ticker", "session",
        "close", "first_close", "first_line"))
        .when(stored_differs).then(pl.format(
            "conflicting prices for {} {}: close {} here, {} already stored", "ticker",
            "session", "close", "stored_close"))
        .otherwise(None)).drop("first_line", "first_close", "first_adj", "stored_close")


def stored(wh: Warehouse, rows: pl.DataFrame) -> pl.DataFrame:
    """The stored close of the file's (ticker, session) pairs (a vendor's adjusted close
    moves with later splits and dividends, so only the close is compared)."""
    keys = rows.select("ticker", "session").drop_nulls().unique()
    wh.con.register("_price_keys", keys.to_arrow())
    try:
        return wh.con.execute("SELECT p.ticker, p.session, p.close FROM prices p "
                              "JOIN _price_keys k USING (ticker, session)").pl()
    finally:
        wh.con.unregister("_price_keys")


def ingest_prices(wh: Warehouse, path: str | Path, mapping: dict[str, str] | None = None,
                  wide: bool = False, wide_field: str = "close",
                  source: str | None = None, max_bytes: int | None = None,
                  encoding: str | None = None) -> IngestResult:
    """Ingest one price file in one transaction; bad rows go to `rejects`."""
    def parse(path: Path, content: bytes) -> Parsed:
        if not content.strip():
            raise DataError(f"{path}: empty file")
        table = normalise_prices(read_price_table(path, content), mapping, wide, wide_field,
                                 path)
        checked = validate_prices(table)
        if wide:  # an empty cell in a wide file is a ticker not yet listed, not an error
            checked = checked.filter(pl.col("reason").ne_missing("no close price"))
        valid = conflicts(checked.filter(pl.col("reason").is_null()), stored(wh, checked))
        checked = pl.concat([checked.filter(pl.col("reason").is_not_null()), valid],
                            how="diagonal_relaxed")
        valid = valid.filter(pl.col("reason").is_null())
        good = valid.unique(["ticker", "session"], keep="first", maintain_order=True).select(
            "ticker", "session", *PRICE_COLUMNS, source=pl.lit(source or path.name))
        bad = checked.filter(pl.col("reason").is_not_null()).sort("line").select(
            "line", "reason", "raw")
        return Parsed(good, len(valid), bad, len(checked))

    def insert(con, good: pl.DataFrame) -> int:
        def statements() -> None:
            con.register("_prices_in", good.to_arrow())
            con.execute("INSERT INTO prices SELECT * FROM _prices_in ON CONFLICT DO NOTHING")
            con.execute("INSERT INTO instruments (ticker) SELECT DISTINCT ticker "
                        "FROM _prices_in ON CONFLICT DO NOTHING")
            con.unregister("_prices_in")
        return inserted_rows(con, "prices", statements)

    options = {"mapping": mapping, "wide": wide, "wide_field": wide_field, "source": source}
    return ingest_one(wh, path, "prices", parse, insert, options, max_bytes, encoding)
