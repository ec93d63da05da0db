"""Terminal tables for people, shared by the CLI and the demo (machines read `--json`)."""

from __future__ import annotations

import re

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from quant.evaluate import Evaluation

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def safe(value: object) -> str:
    """Text from the data made harmless for a terminal: control characters (ANSI escapes)
    shown as codes, rich markup shown as written."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))
    return escape(text)


def fmt(value, digits: int = 4):
    """A float rounded for reading; None as blank; anything else as it is."""
    return "" if value is None else (f"{value:.{digits}f}" if isinstance(value, float) else value)


def table_of(rows: list[dict], title: str | None = None) -> Table:
    table = Table(title=safe(title) if title else None)
    for column in (rows[0].keys() if rows else []):
        table.add_column(safe(column))
    for row in rows:
        table.add_row(*("" if v is None else safe(v) for v in row.values()))
    return table


def print_evaluation(evaluation: Evaluation, console: Console) -> None:
    """An evaluation: one row per horizon, then coverage and the rows dropped, so nothing is
    dropped silently."""
    rows = []
    for h, e in evaluation.horizons.items():
        rows.append({"horizon": h, "IC": fmt(e.ic["mean"]), "IC t": fmt(e.ic["t_stat"], 2),
                     "IC t (HAC)": fmt(e.ic.get("t_stat_hac"), 2),
                     "rank IC": fmt(e.rank_ic["mean"]), "ICIR": fmt(e.rank_ic["icir"], 3),
                     "pooled IC [95%]": f"{fmt(e.pooled_ic['ic'], 3)} "
                     f"[{fmt(e.pooled_ic['low'], 3)}, {fmt(e.pooled_ic['high'], 3)}]",
                     "top-bottom": fmt(e.top_minus_bottom.get("mean"), 5),
                     "hit rate": fmt(e.hit_rate, 3), "rows": e.rows})
    s = evaluation.signals
    console.print(table_of(rows, title=f"{evaluation.signal} — {s.get('model_id', '')} "
                                       f"{s.get('fingerprint', '')} {s.get('prompt_version', '')}"))
    c = evaluation.coverage
    console.print(f"coverage: {c['tickers']}/{c['universe_tickers']} tickers, "
                  f"{c['sessions']}/{c['universe_sessions']} sessions, "
                  f"{c['row_share']:.1%} of universe rows")
    console.print(f"dropped rows: {evaluation.first.dropped}")
