"""News and posts from JSONL, CSV, Parquet and RSS/Atom files (gzip read transparently).

Columns are found by common names (or an explicit mapping): a timestamp, a body, optional
title, tickers, source and url; anything else is kept in `meta`. Tickers come from a column
(a list, or a comma/space separated string) or, when absent, from cashtags such as `$AAPL`
matched against `instruments`. The same story under several tickers is one document.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import feedparser
import polars as pl

from data.errors import DataError
from data.ingest.source import (
    DEFAULT_ZONE,
    REJECTS_SCHEMA,
    IngestResult,
    Parsed,
    doc_id_sql,
    ingest_one,
    inserted_rows,
    logical_suffix,
    now_utc,
    rejects_frame,
    to_utc,
)
from data.warehouse import Warehouse

_ALIASES = {
    "published_at": ("published_at", "created_at", "published", "datetime", "timestamp",
                     "time", "date", "pubdate", "updated"),
    "body": ("body", "text", "content", "summary", "description", "story"),
    "title": ("title", "headline"),
    "tickers": ("tickers", "ticker", "symbols", "symbol"),
    "source": ("source", "publisher", "feed"),
    "url": ("url", "link"),
}
# `$AAPL` or, as in tokenised corpora, `$ aapl`.
CASHTAG = r"\$\s?([A-Za-z][A-Za-z0-9]{0,5}(?:[.\-][A-Za-z])?)\b"


def read_news_table(path: Path, content: bytes) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows as strings or typed columns with `line` and `raw`, rejects found while reading)."""
    suffix = logical_suffix(path)
    if suffix in (".jsonl", ".ndjson", ".json"):
        return _read_jsonl(content)
    if suffix == ".csv":
        return _read_csv(path, content)
    if suffix == ".parquet":
        try:
            table = pl.read_parquet(io.BytesIO(content))
        except Exception as exc:
            raise DataError(f"{path}: cannot read as parquet: {exc}") from None
        table = table.with_row_index("line", offset=1).with_columns(
            pl.col("line").cast(pl.Int64), raw=pl.lit(None, pl.String))
        return table, rejects_frame()
    if suffix in (".xml", ".rss", ".atom", ".feed"):
        return _read_feed(path, content)
    raise DataError(f"{path}: unsupported news file type {suffix!r} "
                    "(use .jsonl, .csv, .parquet, or .xml/.rss/.atom)")


def _decode_lines(content: bytes) -> list[tuple[int, str | None, str]]:
    """(line number, text or None when not UTF-8, printable raw) for each non-empty line."""
    out = []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append((number, line.decode("utf-8"), ""))
        except UnicodeDecodeError:
            out.append((number, None, line.decode("utf-8", errors="replace")))
    return out


def _read_jsonl(content: bytes) -> tuple[pl.DataFrame, pl.DataFrame]:
    rows, rejects = [], []
    for number, text, raw in _decode_lines(content):
        if text is None:
            rejects.append((number, "not valid UTF-8", raw))
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            rejects.append((number, f"invalid JSON ({exc.msg} at column {exc.colno})", text))
            continue
        if not isinstance(record, dict):
            rejects.append((number, "JSON line is not an object", text))
            continue
        rows.append({**{k: _as_text(v) for k, v in record.items()}, "line": number, "raw": text})
    return _frame(rows), rejects_frame(rejects)


def _as_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return json.dumps(value) if isinstance(value, dict) else str(value)


def _read_csv(path: Path, content: bytes) -> tuple[pl.DataFrame, pl.DataFrame]:
    text = content.decode("utf-8", errors="surrogateescape")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows, rejects = [], []
    try:
        if any(_has_surrogates(name) for name in reader.fieldnames or []):
            raise DataError(f"{path}: the header line is not valid UTF-8; give the file's "
                            "encoding (--encoding)")
        for record in reader:
            line = reader.line_num
            raw = ",".join(v or "" for v in record.values() if isinstance(v, str))
            if any(isinstance(v, str) and _has_surrogates(v) for v in record.values()):
                rejects.append((line, "not valid UTF-8",
                                raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")))
                continue
            if None in record:
                rejects.append((line, "more fields than the header", raw))
                continue
            rows.append({**record, "line": line, "raw": raw})
    except csv.Error as exc:
        rejects.append((reader.line_num, f"malformed CSV: {exc}", ""))
    return _frame(rows), rejects_frame(rejects)


def _has_surrogates(value: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in value)


def _read_feed(path: Path, content: bytes) -> tuple[pl.DataFrame, pl.DataFrame]:
    feed = feedparser.parse(content)
    if feed.bozo and not feed.entries:
        raise DataError(f"{path}: not a readable RSS/Atom feed ({feed.bozo_exception})")
    default_source = feed.feed.get("title") or path.name
    rows, rejects = [], []
    for number, entry in enumerate(feed.entries, start=1):
        stamp = entry.get("published_parsed") or entry.get("updated_parsed")
        raw = json.dumps({k: str(entry.get(k)) for k in ("title", "link", "published")})
        if stamp is None:
            rejects.append((number, "feed entry has no published/updated time", raw))
            continue
        rows.append({
            "published_at": "%04d-%02d-%02dT%02d:%02d:%02d+00:00" % tuple(stamp[:6]),
            "title": entry.get("title"),
            "body": entry.get("summary") or entry.get("title"),
            "url": entry.get("link"),
            "source": default_source,
            "tickers": ",".join(t.get("term", "") for t in entry.get("tags", [])) or None,
            "line": number, "raw": raw,
        })
    return _frame(rows), rejects_frame(rejects)


def _frame(rows: list[dict]) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(schema={"line": pl.Int64, "raw": pl.String})
    columns = sorted({k for row in rows for k in row} - {"line"})
    return pl.DataFrame(
        {"line": [r["line"] for r in rows],
         **{c: [r.get(c) for r in rows] for c in columns}},
        schema_overrides={c: pl.String for c in columns} | {"line": pl.Int64},
    )


def find_columns(columns: list[str], mapping: dict[str, str] | None) -> dict[str, list[str]]:
    """Our field -> the file's columns that may hold it, in order of preference: the explicit
    mapping first, then common names (rows of one file may use different names)."""
    found: dict[str, list[str]] = {}
    for theirs, ours in (mapping or {}).items():
        found.setdefault(ours, []).append(theirs)
    lower = {c.lower(): c for c in columns}
    taken = {c for cols in found.values() for c in cols}
    for ours, names in _ALIASES.items():
        for name in names:
            if name in lower and lower[name] not in taken:
                found.setdefault(ours, []).append(lower[name])
                taken.add(lower[name])
    return found


def _tickers_expr(columns: list[str], schema: pl.Schema) -> pl.Expr:
    if not columns:
        return pl.lit([], dtype=pl.List(pl.String))
    lists = []
    for column in columns:
        if isinstance(schema[column], pl.List):
            listed = pl.col(column).cast(pl.List(pl.String))
        else:
            listed = pl.col(column).cast(pl.String).str.replace_all(r"[,;\s]+", ",").str.split(",")
        cleaned = listed.list.eval(
            pl.element().str.strip_chars().str.strip_chars("$").str.to_uppercase())
        lists.append(cleaned.list.eval(pl.element().filter(pl.element().str.len_chars() > 0)))
    return pl.coalesce(lists).fill_null([])


def normalise_news(table: pl.DataFrame, mapping: dict[str, str] | None, source: str,
                   assume_zone: str, known_tickers: set[str], path: Path) -> pl.DataFrame:
    """Typed rows with `reason` (null when good)."""
    cols = find_columns([c for c in table.columns if c not in ("line", "raw")], mapping)
    if "published_at" not in cols:
        raise DataError(f"{path}: no timestamp column among {table.columns}; map one with "
                        "--map YOURCOL=published_at")
    if "body" not in cols and "title" not in cols:
        raise DataError(f"{path}: no text column among {table.columns}; map one with "
                        "--map YOURCOL=body")
    stamps = table.select(pl.coalesce(cols["published_at"]))
    times = to_utc(stamps.to_series(), assume_zone)
    used = {c for columns in cols.values() for c in columns} | {"line", "raw"}
    extra = [c for c in table.columns if c not in used]

    def text(field: str) -> pl.Expr:
        if field not in cols:
            return pl.lit(None, pl.String)
        return pl.coalesce([pl.col(c).cast(pl.String) for c in cols[field]])

    frame = table.select(
        "line", "raw",
        title=text("title").str.strip_chars(),
        body=pl.coalesce(text("body"), text("title")).str.strip_chars(),
        source=pl.coalesce(text("source"), pl.lit(source)),
        url=text("url"),
        tickers=_tickers_expr(cols.get("tickers", []), table.schema),
        meta=pl.struct(extra).struct.json_encode() if extra else pl.lit(None, pl.String),
    ).with_columns(times)
    if known_tickers:  # no ticker given: take cashtags that name a known instrument
        tags = pl.concat_str([pl.col("title").fill_null(""), pl.col("body").fill_null("")],
                             separator=" ").str.extract_all(CASHTAG).list.eval(
            pl.element().str.replace(r"^\$\s?", "").str.to_uppercase()).list.eval(
            pl.element().filter(pl.element().is_in(sorted(known_tickers)))
            .unique(maintain_order=True))
        frame = frame.with_columns(
            tickers=pl.when(pl.col("tickers").list.len() == 0).then(tags)
            .otherwise("tickers"))
    return frame.with_columns(reason=pl.when(pl.col("ts_error").is_not_null())
                              .then("ts_error")
                              .when(pl.col("body").is_null() | (pl.col("body") == ""))
                              .then(pl.lit("empty text")).otherwise(None))


_GOOD_SCHEMA = {"title": pl.String, "body": pl.String, "source": pl.String, "url": pl.String,
                "tickers": pl.List(pl.String), "meta": pl.String,
                "ts": pl.Datetime("us", "UTC"), "tz_assumed": pl.String}

_UPSERT_DOCUMENTS = f"""
INSERT INTO documents (doc_id, kind, source, published_at, ingested_at, tz_assumed, tickers,
                       title, body, url, meta)
SELECT doc_id, 'news', any_value(source), min(ts), ?, any_value(tz_assumed),
       list_sort(list_distinct(flatten(list(tickers)))), any_value(title), any_value(body),
       any_value(url), any_value(meta)
FROM (SELECT {doc_id_sql("coalesce(title, '')", "body", "source")} AS doc_id, *
      FROM _news_in)
GROUP BY doc_id
ON CONFLICT (doc_id) DO UPDATE
SET tickers = list_sort(list_distinct(list_concat(documents.tickers, excluded.tickers)))
WHERE NOT list_has_all(documents.tickers, excluded.tickers)
"""


def ingest_news(wh: Warehouse, path: str | Path, mapping: dict[str, str] | None = None,
                source: str | None = None, assume_zone: str = DEFAULT_ZONE,
                max_bytes: int | None = None, encoding: str | None = None) -> IngestResult:
    """Ingest one news file in one transaction; bad rows go to `rejects`. (The search index
    is rebuilt by `ingest_files`, once per batch.)"""
    known = set(wh.query("SELECT ticker FROM instruments")["ticker"].to_list())

    def parse(path: Path, content: bytes) -> Parsed:
        if not content.strip():
            raise DataError(f"{path}: empty file")
        table, read_rejects = read_news_table(path, content)
        if table.height:
            checked = normalise_news(table, mapping, source or path.name.split(".")[0],
                                     assume_zone, known, path)
        else:  # every line was rejected while reading
            checked = pl.DataFrame(schema=REJECTS_SCHEMA | _GOOD_SCHEMA)
        good = checked.filter(pl.col("reason").is_null()).select(list(_GOOD_SCHEMA))
        bad = pl.concat([read_rejects, checked.filter(pl.col("reason").is_not_null())
                         .select(pl.col("line").cast(pl.Int64), "reason", "raw")])
        return Parsed(good, good.height, bad, checked.height + read_rejects.height)

    def insert(con, good: pl.DataFrame) -> int:
        def statements() -> None:
            con.register("_news_in", good.to_arrow())
            con.execute(_UPSERT_DOCUMENTS, [now_utc()])
            con.unregister("_news_in")
        return inserted_rows(con, "documents", statements)

    options = {"mapping": mapping, "source": source, "assume_zone": assume_zone}
    return ingest_one(wh, path, "news", parse, insert, options, max_bytes, encoding)
