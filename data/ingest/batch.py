"""Ingest many files: one transaction each, and a file that fails never stops the others."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from data.errors import DataError
from data.ingest.filings import ingest_filings, read_index
from data.ingest.news import ingest_news
from data.ingest.prices import ingest_prices
from data.ingest.source import IngestResult, rejects_frame, write_rejects
from data.warehouse import Warehouse

KINDS = ("prices", "news", "filings")


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders expanded to the files inside them (sorted, hidden skipped)."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(p for p in sorted(path.rglob("*"))
                         if p.is_file() and not p.name.startswith(".") and p.name != "index.csv")
        else:
            files.append(path)
    return files


def ingest_files(wh: Warehouse, kind: str, paths: Iterable[str | Path],
                 **options: object) -> list[IngestResult]:
    """Ingest each file; a file that cannot be read becomes one reject row with its reason."""
    if kind not in KINDS:
        raise DataError(f"unknown ingest kind {kind!r}: use one of {', '.join(KINDS)}")
    files = expand_paths(paths)
    index: dict[str, dict[str, str]] = {}
    if kind == "filings":
        index_path = options.pop("index", None)
        folders = {p.parent for p in files}
        for candidate in [index_path] + [f / "index.csv" for f in folders]:
            if candidate and Path(candidate).exists():
                index.update(read_index(Path(candidate)))
    refresh = False  # the search index is rebuilt once, after the batch, if documents came
    results = []
    for path in files:
        try:
            if kind == "prices":
                result = ingest_prices(wh, path, **options)  # type: ignore[arg-type]
            elif kind == "news":
                result = ingest_news(wh, path, **options)  # type: ignore[arg-type]
            else:
                meta = {**index.get(path.name, {}),
                        **{k: v for k, v in options.items() if v}}  # explicit options win
                result = ingest_filings(wh, path, meta=meta)
        except DataError as exc:
            result = IngestResult(file=str(path), kind=kind, rejected=1, reasons={str(exc): 1})
            write_rejects(wh, str(path), rejects_frame([(None, str(exc), None)]))
        refresh |= result.inserted > 0 and kind != "prices"
        results.append(result)
    if refresh:
        from data.search import refresh_index
        refresh_index(wh)
    return results
