"""What every loader shares: the skeleton `ingest_one` (read, hash, skip, parse, one
transaction), reading gzip transparently, timestamps, rejects and the summary."""

from __future__ import annotations

import codecs
import gzip
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl

from data.errors import DataError
from data.warehouse import Warehouse

DEFAULT_ZONE = "America/New_York"

_AWARE_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z")
_NAIVE_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M")


def doc_id_sql(title: str, body: str, source: str) -> str:
    """SQL for a document's id from SQL expressions: the MD5 of its whitespace-normalised,
    lower-cased title and body, with its source (the same story from two sources is two
    documents; the same story under several tickers is one)."""
    return (f"md5(lower(regexp_replace(trim({title} || ' ' || {body}), '\\s+', ' ', 'g'))"
            f" || chr(0) || {source})")


@dataclass
class IngestResult:
    """Counts for one file: every row read is inserted, a duplicate, or rejected."""

    file: str
    kind: str
    read: int = 0
    inserted: int = 0
    duplicate: int = 0
    rejected: int = 0
    skipped_file: bool = False
    reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


MAX_BYTES = 2 * 1024**3   # the largest file (after decompression) a loader reads


def read_bytes(path: Path, max_bytes: int | None = None) -> bytes:
    """The bytes of a regular file, `.gz` decompressed; above `max_bytes` is an error (a FIFO,
    a device or a decompression bomb never hangs or exhausts memory)."""
    limit = max_bytes or MAX_BYTES
    if not path.exists():
        raise DataError(f"no such file: {path}")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file (a folder, FIFO or device): not read")
    if path.stat().st_size > limit:
        raise DataError(f"{path}: {path.stat().st_size:,} bytes is over the limit of "
                        f"{limit:,}; split the file or raise the limit (max_bytes)")
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as handle:
            content = handle.read(limit + 1)
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: not a valid gzip file ({exc})") from None
    if len(content) > limit:
        raise DataError(f"{path}: decompresses to over {limit:,} bytes; split the file or "
                        "raise the limit (max_bytes)")
    return content


_BOMS = {b"\xff\xfe": "utf-16", b"\xfe\xff": "utf-16"}


def check_encoding(encoding: str | None) -> None:
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise DataError(f"unknown encoding {encoding!r}: give a codec name such as utf-8, "
                            "cp1252, latin-1 or utf-16") from None


def recode(content: bytes, encoding: str | None, path: Path) -> bytes:
    """A text file's content as UTF-8. With a declared `encoding`, decoded strictly from it (a
    byte it cannot decode is an error that says where); undeclared, a UTF-16 file is known by
    its byte-order mark, and anything else is passed on as it is: each reader says what it
    does with bytes that are not UTF-8. Parquet is binary and passed on untouched."""
    if logical_suffix(path) == ".parquet":
        return content
    if encoding is None:
        encoding = next((name for bom, name in _BOMS.items() if content.startswith(bom)), None)
        if encoding is None:
            return content
    check_encoding(encoding)
    try:
        return content.decode(encoding).encode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid {encoding} at byte {exc.start:,} "
                        f"({content[exc.start:exc.start + 8]!r}); give the file's encoding "
                        "(--encoding)") from None


def as_utf8(content: bytes) -> bytes:
    """Text as UTF-8: UTF-8 (with or without a byte-order mark) as it is; anything else read
    as Windows-1252, the usual encoding of files that are not UTF-8 (NESTLÉ stays NESTLÉ)."""
    try:
        content.decode("utf-8")
        return content.removeprefix(b"\xef\xbb\xbf")
    except UnicodeDecodeError:
        return content.decode("cp1252", errors="replace").encode("utf-8")


def logical_suffix(path: Path) -> str:
    """`.csv` for both `x.csv` and `x.csv.gz`."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def file_hash(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()[:32]


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)


def to_utc(values: pl.Series, assume_zone: str = DEFAULT_ZONE) -> pl.DataFrame:
    """`_to_utc`, with a timestamp outside 1970 .. a day from now unusable (a year-1 or a
    2099 post is a broken feed, not news)."""
    latest = now_utc() + timedelta(days=1)
    frame = _to_utc(values, assume_zone)
    outside = pl.col("ts").is_not_null() & ~pl.col("ts").is_between(EARLIEST, latest)
    return frame.with_columns(
        ts_error=pl.when(outside).then(pl.lit(
            f"timestamp outside {EARLIEST:%Y-%m-%d} .. {latest:%Y-%m-%d %H:%M} UTC"))
        .otherwise("ts_error"),
        ts=pl.when(outside).then(None).otherwise("ts"))


def _to_utc(values: pl.Series, assume_zone: str = DEFAULT_ZONE) -> pl.DataFrame:
    """Normalise timestamps to UTC.

    Returns columns `ts` (Datetime UTC, null where unusable), `tz_assumed` (the zone used for a
    naive value, else null) and `ts_error` (why a value is unusable, else null). A date with no
    time of day is unusable: we never guess when in the day something became public.
    """
    n = len(values)
    dtype = values.dtype
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            ts = values.cast(pl.Datetime("us")).dt.replace_time_zone(
                assume_zone, ambiguous="earliest", non_existent="null")
            assumed = pl.Series([assume_zone] * n, dtype=pl.String)
        else:
            ts = values.cast(pl.Datetime("us", dtype.time_zone))
            assumed = pl.Series([None] * n, dtype=pl.String)
        ts = ts.dt.convert_time_zone("UTC")
        error = pl.Series(["missing timestamp" if v is None else None for v in ts],
                          dtype=pl.String)
        return pl.DataFrame({"ts": ts, "tz_assumed": assumed, "ts_error": error})
    if dtype == pl.Date:
        return pl.DataFrame({
            "ts": pl.Series([None] * n, dtype=pl.Datetime("us", "UTC")),
            "tz_assumed": pl.Series([None] * n, dtype=pl.String),
            "ts_error": pl.Series(["date without a time of day"] * n, dtype=pl.String),
        })
    text = values.cast(pl.String).str.strip_chars()
    text = text.str.replace(r"(?i)z$", "+00:00").str.replace(r"^(\d{4}-\d\d-\d\d) ", "${1}T")
    frame = pl.DataFrame({"raw": text})
    aware = pl.coalesce([pl.col("raw").str.to_datetime(f, strict=False, time_unit="us",
                                                       time_zone="UTC")
                         for f in _AWARE_FORMATS])
    naive = pl.coalesce([pl.col("raw").str.to_datetime(f, strict=False, time_unit="us")
                         for f in _NAIVE_FORMATS])
    frame = frame.with_columns(aware=aware, naive=naive)
    frame = frame.with_columns(
        localised=pl.col("naive").dt.replace_time_zone(
            assume_zone, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC"))
    is_date_only = pl.col("raw").str.contains(r"^\d{4}-\d\d-\d\d$")
    return frame.select(
        ts=pl.coalesce("aware", "localised"),
        tz_assumed=pl.when(pl.col("aware").is_null() & pl.col("localised").is_not_null())
        .then(pl.lit(assume_zone)).otherwise(None),
        ts_error=pl.when(pl.col("raw").is_null() | (pl.col("raw") == ""))
        .then(pl.lit("missing timestamp"))
        .when(is_date_only).then(pl.lit("date without a time of day"))
        .when(pl.col("aware").is_null() & pl.col("naive").is_not_null()
              & pl.col("localised").is_null())
        .then(pl.lit(f"time does not exist in {assume_zone} (clock change)"))
        .when(pl.col("aware").is_null() & pl.col("naive").is_null())
        .then(pl.concat_str(pl.lit("unparseable timestamp: "), pl.col("raw")))
        .otherwise(None),
    )


REJECTS_SCHEMA = {"line": pl.Int64, "reason": pl.String, "raw": pl.String}


def rejects_frame(rows: list[tuple[int | None, str, str | None]] = ()) -> pl.DataFrame:
    """Rows of (line, reason, raw) as a frame `write_rejects` takes; empty when none."""
    return pl.DataFrame(list(rows), schema=REJECTS_SCHEMA, orient="row")


def write_rejects(wh: Warehouse, file: str, rejects: pl.DataFrame) -> None:
    """Insert rows of (line, reason, raw) into `rejects` for one file."""
    if rejects.is_empty():
        return
    frame = rejects.select(
        pl.lit(file).alias("file"),
        pl.col("line").cast(pl.Int64),
        pl.col("reason").cast(pl.String),
        pl.col("raw").cast(pl.String).str.slice(0, 2000),
    )
    wh.con.register("_rejects_in", frame.to_arrow())
    wh.con.execute("INSERT INTO rejects (file, line, reason, raw) SELECT * FROM _rejects_in")
    wh.con.unregister("_rejects_in")


def replace_rejects(wh: Warehouse, file: str, rejects: pl.DataFrame) -> None:
    """A try's rejects, in place of those of earlier tries that went in not at all (a path
    never recorded as ingested has only such rejects; a recorded one keeps its own)."""
    wh.con.execute("DELETE FROM rejects WHERE file = ? AND NOT EXISTS "
                   "(SELECT 1 FROM ingested_files WHERE path = ?)", [file, file])
    write_rejects(wh, file, rejects)


def count_reasons(rejects: pl.DataFrame) -> dict[str, int]:
    if rejects.is_empty():
        return {}
    counts = rejects.group_by("reason").len().sort("len", descending=True)
    return dict(zip(counts["reason"].to_list(), counts["len"].to_list(), strict=True))


def already_ingested(wh: Warehouse, digest: str, kind: str) -> bool:
    return bool(wh.scalar(
        "SELECT count(*) FROM ingested_files WHERE file_hash = ? AND kind = ?", [digest, kind]))


def record_file(wh: Warehouse, digest: str, result: IngestResult) -> None:
    wh.con.execute(
        "INSERT INTO ingested_files VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [digest, result.kind, result.file, now_utc(), result.read, result.inserted,
         result.duplicate, result.rejected])


@dataclass
class Parsed:
    """What a loader makes of one file before anything is written."""

    rows: object              # what the loader's `insert` takes
    valid: int                # rows that passed (each is then inserted or a duplicate)
    rejects: pl.DataFrame     # line, reason, raw
    read: int


def ingest_one(wh: Warehouse, path: str | Path, kind: str,
               parse: Callable[[Path, bytes], Parsed],
               insert: Callable[[object, object], int], options: dict | None = None,
               max_bytes: int | None = None, encoding: str | None = None) -> IngestResult:
    """Ingest one file: a file already ingested is skipped; otherwise it is parsed, then its
    rows (`insert` returns how many were new), its rejects and its record are written in one
    transaction, so a crash leaves nothing half-written.

    A file's identity is its content and the `options` that change how it is read (a mapping,
    a filed date, a zone, a declared `encoding`), so the same file read differently is read
    again. Only a file that went in is recorded as done: a wholly rejected one can be retried
    (with the options that fix it), and its reject rows are replaced, not repeated."""
    path = Path(path)
    content = read_bytes(path, max_bytes)
    options = {**(options or {}), **({"encoding": encoding} if encoding else {})}
    digest = file_hash(content + json.dumps(options, sort_keys=True, default=str).encode())
    result = IngestResult(file=str(path), kind=kind)
    if already_ingested(wh, digest, kind):
        result.skipped_file = True
        return result
    parsed = parse(path, recode(content, encoding, path))
    result.read, result.rejected = parsed.read, parsed.rejects.height
    result.reasons = count_reasons(parsed.rejects)
    with wh.transaction() as con:
        replace_rejects(wh, str(path), parsed.rejects)
        if parsed.valid:
            result.inserted = insert(con, parsed.rows)
            result.duplicate = parsed.valid - result.inserted
            record_file(wh, digest, result)
    return result


def inserted_rows(con, table: str, statements: Callable[[], None]) -> int:
    """Run `statements` and return how many rows `table` gained."""
    before = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    statements()
    return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] - before

