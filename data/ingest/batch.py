"""Ingest many files: one transaction each, and a file that fails never stops the others."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from data.errors import DataError, is_disk_full
from data.filing_changes import pending_changes, refresh_changes
from data.ingest.filings import ingest_filings, read_index
from data.ingest.news import ingest_news
from data.ingest.prices import ingest_prices
from data.ingest.source import (
    IngestResult,
    check_encoding,
    rejects_frame,
    replace_rejects,
)
from data.search import has_index, pending_passages, refresh_index
from data.warehouse import Warehouse

KINDS = ("prices", "news", "filings")


def expand_paths(paths: Iterable[str | Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Files as given; folders expanded to the regular files inside them (sorted, hidden
    skipped). A link inside a folder that leads out of it is not followed: it comes back in
    the second list with the reason."""
    files: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            files.append(path)
            continue
        root = path.resolve()
        for p in sorted(path.rglob("*")):
            if p.name.startswith(".") or p.name == "index.csv" or not p.is_file():
                continue
            if p.is_symlink() and not p.resolve().is_relative_to(root):
                skipped.append((p, f"{p}: a link to {p.resolve()}, outside {path}: not "
                                   "followed (copy the file in instead)"))
            else:
                files.append(p)
    return files, skipped


def ingest_files(wh: Warehouse, kind: str, paths: Iterable[str | Path],
                 **options: object) -> list[IngestResult]:
    """Ingest each file; a file that cannot be read becomes one reject row with its reason.
    `max_bytes` bounds the size of any one file; `encoding` declares the files' text encoding
    (detected otherwise)."""
    if kind not in KINDS:
        raise DataError(f"unknown ingest kind {kind!r}: use one of {', '.join(KINDS)}")
    files, skipped = expand_paths(paths)
    limit = options.pop("max_bytes", None)
    encoding = options.pop("encoding", None)
    check_encoding(encoding)  # type: ignore[arg-type]
    index = _filing_index(files, options.pop("index", None)) if kind == "filings" else {}
    results = [reject_file(wh, kind, path, reason) for path, reason in skipped]
    for path in files:
        try:
            if kind == "prices":
                result = ingest_prices(wh, path, max_bytes=limit, encoding=encoding, **options)  # type: ignore[arg-type]
            elif kind == "news":
                result = ingest_news(wh, path, max_bytes=limit, encoding=encoding, **options)  # type: ignore[arg-type]
            else:
                meta = {**index.get(path.name, {}),
                        **{k: v for k, v in options.items() if v}}  # explicit options win
                result = ingest_filings(wh, path, meta=meta, max_bytes=limit, encoding=encoding)  # type: ignore[arg-type]
        except DataError as exc:
            result = reject_file(wh, kind, path, str(exc))
        except Exception as exc:  # a file we did not foresee never blocks the files after it
            if is_disk_full(exc):
                raise
            result = reject_file(wh, kind, path, f"could not be read ({type(exc).__name__}: "
                                 f"{exc}); fix or remove the file and ingest again")
        results.append(result)
    complete_derived(wh)
    return results


def complete_derived(wh: Warehouse) -> None:
    """Build what ingest derives from committed documents and is missing: the passages of
    news and filing sections and the search index over them, and filings' change features.
    What is missing is read from the tables, not from this run, so whatever stopped an
    earlier ingest after its commit (a kill, a crash), any later ingest completes it."""
    if pending_passages(wh) or not has_index(wh):
        refresh_index(wh)
    pending = pending_changes(wh)
    if pending:
        refresh_changes(wh, pending)


def _filing_index(files: list[Path], index_path: str | Path | None) -> dict:
    if index_path and not Path(index_path).is_file():
        raise DataError(f"no index file {index_path}: give the CSV with file,form_type,"
                        "filed_date,ticker,cik columns, or leave --index out")
    index: dict[str, dict[str, str]] = {}
    for candidate in [index_path] + [f / "index.csv" for f in {p.parent for p in files}]:
        if candidate and Path(candidate).is_file():
            index.update(read_index(Path(candidate)))
    return index


def reject_file(wh: Warehouse, kind: str, path: Path, reason: str) -> IngestResult:
    """A file that could not be read at all: one reject row (replacing an earlier try's)."""
    with wh.transaction():  # the old rejects go only with the new one in
        replace_rejects(wh, str(path), rejects_frame([(None, reason, None)]))
    return IngestResult(file=str(path), kind=kind, rejected=1, reasons={reason: 1})
