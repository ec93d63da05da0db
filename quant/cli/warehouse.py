"""Commands on the warehouse: init, ingest, score, db status, search."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from llm.settings import MODES
from quant.cli.app import api, cli, console, day, emit, json_option, workspace_of
from quant.tables import err_console, progress_callback, safe, table_of


@cli.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@json_option
@click.pass_context
def init(ctx: click.Context, directory: str | None, as_json: bool) -> None:
    """Create a workspace: quant.toml, an empty migrated warehouse and inbox folders."""
    root = Path(directory) if directory else ctx.obj["workspace"]
    summary = api().init_workspace(root)
    emit(summary, as_json, lambda d: console.print(
        f"workspace ready at [bold]{safe(d['workspace'])}[/] "
        f"(schema version {d['schema_version']})"))


# ------------------------------------------------------------------ ingest

@cli.group()
def ingest() -> None:
    """Load prices, news or SEC filings into the warehouse (idempotent, per-file transactions)."""


def _mapping(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        theirs, sep, ours = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"--map takes THEIRCOL=ourcol, got {pair!r}")
        out[theirs] = ours
    return out


def batch_options(fn):
    """--allow-partial and --encoding, which every ingest command takes."""
    fn = click.option("--encoding", default=None,
                      help="The files' text encoding (e.g. cp1252, latin-1, utf-16); by "
                           "default UTF-8, with UTF-16 known by its byte-order mark.")(fn)
    return click.option("--allow-partial", is_flag=True,
                        help="Exit 0 even when a file went in not at all.")(fn)


def _run_ingest(ctx: click.Context, kind: str, paths: tuple[str, ...], as_json: bool,
                allow_partial: bool = False, **options: object) -> None:
    results = [r.as_dict() for r in workspace_of(ctx, write=True).ingest(kind, paths,
                                                                         **options)]
    emit(results, as_json, lambda rows: console.print(table_of([
        {"file": Path(r["file"]).name, "read": r["read"], "inserted": r["inserted"],
         "duplicate": r["duplicate"], "rejected": r["rejected"],
         "note": "already ingested" if r["skipped_file"] else "; ".join(
             f"{k} ({v})" for k, v in list(r["reasons"].items())[:3])}
        for r in rows], title=f"ingest {kind}")))
    failed = [r["file"] for r in results if r["rejected"] and not (
        r["inserted"] or r["duplicate"] or r["skipped_file"])]
    if failed and not allow_partial:  # cron and CI must see it
        err_console.print(f"{len(failed)} of {len(results)} files went in not at all: "
                          f"{safe(', '.join(failed[:5]))} (see the reasons above; "
                          "--allow-partial exits 0 anyway)")
        sys.exit(1)


@ingest.command("prices")
@click.argument("paths", nargs=-1, required=True)
@click.option("--map", "pairs", multiple=True, help="Rename a column: THEIRCOL=ourcol.")
@click.option("--wide", is_flag=True, help="One column per ticker (plus a date column).")
@click.option("--field", "wide_field", default="close", help="What a wide file's values are.")
@click.option("--source", default=None)
@json_option
@batch_options
@click.pass_context
def ingest_prices_cmd(ctx, paths, pairs, wide, wide_field, source, as_json, allow_partial,
                      encoding):
    """Daily prices from CSV or Parquet (long or wide)."""
    _run_ingest(ctx, "prices", paths, as_json, allow_partial, mapping=_mapping(pairs), wide=wide,
                wide_field=wide_field, source=source, encoding=encoding)


@ingest.command("news")
@click.argument("paths", nargs=-1, required=True)
@click.option("--map", "pairs", multiple=True, help="Rename a column: THEIRCOL=ourcol.")
@click.option("--source", default=None, help="Source name when the file has no source column.")
@json_option
@batch_options
@click.pass_context
def ingest_news_cmd(ctx, paths, pairs, source, as_json, allow_partial, encoding):
    """News and posts from JSONL, CSV, Parquet or RSS/Atom (.gz read transparently)."""
    _run_ingest(ctx, "news", paths, as_json, allow_partial, mapping=_mapping(pairs), source=source,
                encoding=encoding)


@ingest.command("filings")
@click.argument("paths", nargs=-1, required=True)
@click.option("--index", type=click.Path(dir_okay=False),
              help="CSV with file,form_type,filed_date,ticker,cik columns.")
@click.option("--form-type", default=None)
@click.option("--filed-date", default=None, help="YYYY-MM-DD, when the file carries none.")
@click.option("--ticker", default=None)
@click.option("--cik", default=None)
@json_option
@batch_options
@click.pass_context
def ingest_filings_cmd(ctx, paths, index, form_type, filed_date, ticker, cik, as_json,
                       allow_partial, encoding):
    """SEC filings: EDGAR submission .txt or .htm(l) primary documents."""
    _run_ingest(ctx, "filings", paths, as_json, allow_partial, index=index, form_type=form_type,
                filed_date=filed_date, ticker=ticker, cik=cik, encoding=encoding)


# ------------------------------------------------------------------ score

@cli.command()
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--model", "spec", default=None, help="Model spec (default: [model].spec).")
@click.option("--mode", type=click.Choice(MODES), default=None)
@click.option("--limit", type=int, default=None)
@click.option("--sample", is_flag=True, help="With --limit: a spread-out sample, not the oldest.")
@click.option("--engine", "engine_name", type=click.Choice(["local", "ray"]), default=None)
@json_option
@click.pass_context
def score(ctx, since, spec, mode, limit, sample, engine_name, as_json):
    """Score every document not yet scored by this model and prompt."""
    with progress_callback("scoring", quiet=as_json) as on_progress:
        summary = workspace_of(ctx, write=True).score(
            limit, mode, spec, day(since), sample, engine=engine_name, on_progress=on_progress)
    emit(summary, as_json, lambda s: console.print(table_of([s], title="signals")))


# ------------------------------------------------------------------ db, search

@cli.group()
def db() -> None:
    """Inspect the warehouse."""


@db.command("status")
@json_option
@click.pass_context
def db_status(ctx: click.Context, as_json: bool) -> None:
    """Tables, row counts, date ranges and rejects (opens the warehouse read-only)."""
    status = workspace_of(ctx).status()

    def render(s: dict) -> None:
        console.print(f"warehouse [bold]{safe(s['path'])}[/], schema version {s['schema_version']}")
        console.print(table_of(s["tables"], title="tables"))
        if s["rejects_by_reason"]:
            console.print(table_of(s["rejects_by_reason"], title="rejects"))
        if s["filings_with_thin_sections"]:
            console.print(table_of(s["filings_with_thin_sections"],
                                   title="filings whose sections leave text out"))

    emit(status, as_json, render)


@cli.command()
@click.argument("query")
@click.option("--ticker", default=None)
@click.option("--kind", type=click.Choice(["news", "filing"]), default=None)
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--limit", default=10, show_default=True)
@json_option
@click.pass_context
def search(ctx, query, ticker, kind, since, limit, as_json):
    """Rank news and filing sections by BM25."""
    hits = workspace_of(ctx).search(query, ticker=ticker, kind=kind, since=day(since),
                                    limit=limit).to_dicts()
    emit(hits, as_json, lambda rows: console.print(table_of([
        {"score": f"{r['score']:.2f}", "published": str(r["published_at"])[:16],
         "tickers": ",".join(r["tickers"]), "title": (r["title"] or "")[:60],
         "snippet": (r["snippet"] or "").replace("\n", " ")[:100]} for r in rows],
        title=f"search: {query}")))


@cli.command()
@click.argument("what", type=click.Choice(["changes", "facts"]), default="changes")
@click.option("--ticker", default=None)
@click.option("--concept", default=None, help="facts: one XBRL concept (e.g. "
              "us-gaap:NetIncomeLoss).")
@click.option("--limit", default=20, show_default=True)
@json_option
@click.pass_context
def filings(ctx, what, ticker, concept, limit, as_json):
    """What filings say beyond their text: each section's change since the company's previous
    filing of the same form, or the numbers they state in inline XBRL."""
    rows = workspace_of(ctx).filings(ticker, what)
    if what == "facts":
        rows = rows.filter(~rows["dimensional"])
        rows = rows.filter(rows["concept"] == concept) if concept else rows
    rows = rows.head(limit).to_dicts()

    def render(rows: list[dict]) -> None:
        shown = [{"published": str(r["published_at"])[:10], "tickers": ",".join(r["tickers"]),
                  "form": r["form_type"], **({
                      "item": r["item"], "cosine": r["cosine"], "jaccard": r["jaccard"],
                      "added": r["added"], "removed": r["removed"]} if what == "changes" else {
                      "concept": r["concept"], "value": r["value"], "unit": r["unit"],
                      "period": f"{r['period_start'] or ''} .. {r['period_end']}"})}
                 for r in rows]
        console.print(table_of(shown, title=f"filings: {what}"))

    emit(rows, as_json, render)
