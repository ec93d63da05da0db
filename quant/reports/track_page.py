"""A deployment's track record as a page beside its books: the paper equity since go-live,
and the live figures beside what its backtest before go-live expected."""

from __future__ import annotations

import html
import json
from pathlib import Path

import plotly.graph_objects as go

from quant import jsonable
from quant.artefact import write_file
from quant.reports.headline import as_shown
from quant.reports.report import STYLE, figure_html, shared_plotly, table_html


def live_section(reports: Path) -> str:
    """The reports index's table of live deployments, from the track records the daily job
    wrote beside their books: live Sharpe beside the backtest's, a link to each page."""
    rows = []
    for path in sorted((reports / "deployments").glob("*/track.json")):
        record = json.loads(path.read_text())
        live, expected = record["live"], record.get("backtest") or {}
        interval = record.get("interval")
        rows.append({"deployment": f"<a href='deployments/{html.escape(path.parent.name)}/"
                                   f"track.html'>{html.escape(record['deployment'])}</a>",
                     "since": html.escape(record["since"]), "sessions": record["sessions"],
                     "live Sharpe": as_shown("sharpe", live.get("sharpe")),
                     "backtest Sharpe": as_shown("sharpe", expected.get("sharpe")),
                     "inside its interval": "" if not interval else
                     ("yes" if interval["inside"] else "no")})
    if not rows:
        return ""
    head = "".join(f"<th>{k}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{v}</td>" for v in r.values()) + "</tr>"
                   for r in rows)
    return f"<h1>Live deployments</h1><table><tr>{head}</tr>{body}</table>"


def write_track(folder: Path, reports: Path, record: dict) -> Path:
    """`track.json` and `track.html` in `folder` (a deployment's folder under `reports`)."""
    returns = record["returns"]
    rows = [{"figure": k.replace("_", " "), "live": as_shown(k, v),
             "backtest": as_shown(k, (record.get("backtest") or {}).get(k))}
            for k, v in record["live"].items()]
    interval = record.get("interval")
    verdict = ("" if not interval else
               f"<p>Live Sharpe {record['live']['sharpe']:.2f}; were the backtest right, it "
               f"would fall between {interval['low']:.2f} and {interval['high']:.2f} 95% of "
               f"the time: it is {'inside' if interval['inside'] else 'outside'}.</p>")
    figure = go.Figure(go.Scatter(x=returns.index, y=(1 + returns).cumprod(), name="paper"))
    figure.update_layout(title="Paper equity since go-live (growth of 1)")
    name = html.escape(record["deployment"])
    depth = len(folder.relative_to(reports).parts)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{name}</title>"
            f"<style>{STYLE}</style><script src='{'../' * depth}{shared_plotly(reports)}'>"
            f"</script></head><body><section class='headline'><h1>{name}: live since "
            f"{html.escape(record['since'])}</h1><p>{record['sessions']} sessions traded on "
            f"paper.</p>{verdict}</section>"
            f"{table_html(rows, 'Live (paper) and the backtest before go-live')}"
            f"<div class='chart'>{figure_html(figure, 'paper')}</div></body></html>")
    data = {k: v for k, v in record.items() if k != "returns"} | {
        "returns": {str(k.date()): float(v) for k, v in returns.items()}}
    write_file(folder / "track.json", json.dumps(data, indent=1, default=jsonable.default))
    return write_file(folder / "track.html", page)
