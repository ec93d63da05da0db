"""Terminal tables and progress bars for people, shared by the CLI and the demo (machines
read `--json`)."""

from __future__ import annotations

import re
from contextlib import contextmanager

from rich.console import Console, Group
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from quant.evaluate import Evaluation

# A long value (a path) is never cut: the terminal wraps it; `:x:` in a value stays text.
err_console = Console(stderr=True, soft_wrap=True, emoji=False)

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def safe(value: object) -> str:
    """Text from the data made harmless for a terminal: control characters (ANSI escapes)
    shown as codes, rich markup shown as written."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))
    return escape(text)


def fmt(value, digits: int = 4):
    """A float rounded for reading; None as blank; anything else as it is."""
    return "" if value is None else (f"{value:.{digits}f}" if isinstance(value, float) else value)


def table_of(rows: list[dict], title: str | None = None, width: int | None = None):
    """Rows as a terminal table that never cuts a value: each column is at least as wide as its
    longest word (a number, a path, an id), text wraps between words. When the columns cannot
    all be that wide within `width` (the terminal's, by default), the rows are listed as
    `key: value` lines instead, each line whole (the terminal wraps it, nothing is cut)."""
    columns = list(rows[0].keys()) if rows else []
    cells = [["" if v is None else safe(v) for v in row.values()] for row in rows]
    widths = [max([_longest_word(safe(c))] + [_longest_word(r[i]) for r in cells])
              for i, c in enumerate(columns)]
    width = width or Console().width
    if rows and sum(widths) + 3 * len(widths) + 1 > width:
        return _listing(columns, cells, title)
    table = Table(title=safe(title) if title else None)
    for column, least in zip(columns, widths, strict=True):
        table.add_column(safe(column), min_width=least, overflow="fold")
    for row in cells:
        table.add_row(*row)
    return table


def record_of(values: dict, title: str | None = None) -> Group:
    """One record as `key: value` lines: whole values (paths too), keys aligned."""
    return _listing([str(k) for k in values], [["" if v is None else safe(fmt(v, 3))
                                               for v in values.values()]], title)


def _longest_word(text: str) -> int:
    return max((len(word) for word in text.split()), default=0)


def _listing(columns: list[str], cells: list[list[str]], title: str | None) -> Group:
    """One `key: value` line per cell, records apart, no line wrapped or cut by us."""
    lines = [Text(title, style="bold")] if title else []
    key_width = max(len(c) for c in columns)
    for n, row in enumerate(cells):
        if n:
            lines.append(Text(""))
        for column, value in zip(columns, row, strict=True):
            line = Text.from_markup(f"{safe(column).ljust(key_width)}  {value}")
            line.no_wrap, line.overflow = True, "ignore"
            lines.append(line)
    return Group(*lines)


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
                     "hit rate": fmt(e.hit_rate, 3), "sessions": e.rank_ic["n"],
                     "names": e.names, "rows": e.rows})
    s = evaluation.signals
    console.print(table_of(rows, title=f"{evaluation.signal} — {s.get('model_id', '')} "
                                       f"{s.get('fingerprint', '')} {s.get('prompt_version', '')}"))
    c = evaluation.coverage
    console.print(f"coverage: {c['tickers']}/{c['universe_tickers']} tickers, "
                  f"{c['sessions']}/{c['universe_sessions']} sessions, "
                  f"{c['row_share']:.1%} of universe rows")
    dropped = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in evaluation.first.dropped.items())
    console.print(f"rows left out: {dropped}")


@contextmanager
def progress_callback(description: str, quiet: bool = False):
    """An `on_progress(done, total)` that draws a rich progress bar on stderr (nothing when
    `quiet`, e.g. when output is JSON)."""
    with Progress(TextColumn(description), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=err_console,
                  disable=quiet, transient=False) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)
