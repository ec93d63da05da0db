"""Every writer stopped at each of its boundaries (a kill before or after each commit and file
write, a full disk before each), then run again, leaves what an uninterrupted run leaves:
the same rows, the same files, every artefact whole (`tests.faults`)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest

import quant
from data.ingest import ingest_files
from data.warehouse import Warehouse
from quant.batch import jobs
from quant.config import load_config
from quant.live import deployments
from tests import faults
from tests.quant.helpers import calendar_prices, sample_workspace

MODES = [("before", "kill"), ("after", "kill"), ("before", "disk_full")]
FILING = ("<html><body><div style='display:none'><xbrli:context id='fy'><xbrli:period>"
          "<xbrli:instant>2024-09-28</xbrli:instant></xbrli:period></xbrli:context>"
          "<xbrli:unit id='usd'><xbrli:measure>iso4217:USD</xbrli:measure></xbrli:unit></div>"
          "<p>Item 2.02 Results of Operations</p><p>{text} <ix:nonFraction "
          'name="us-gaap:Revenues" contextRef="fy" unitRef="usd">{revenue}</ix:nonFraction>'
          "</p><p>Item 9.01 Exhibits</p><p>99.1</p></body></html>")


def _inputs(root):
    """Files of every kind, a bad one among them."""
    inbox = root / "in"
    inbox.mkdir(parents=True)
    calendar_prices(["AAA", "BBB", "CCC"], date(2024, 1, 2), date(2024, 3, 28)).write_csv(
        inbox / "prices.csv")
    start = datetime(2024, 1, 3, 14, tzinfo=timezone.utc)
    with (inbox / "news.jsonl").open("w") as f:
        for i in range(12):
            f.write(json.dumps({"published_at": (start + timedelta(days=i)).isoformat(),
                                "title": f"Story {i}", "body": f"Widget sales {i} rose.",
                                "tickers": ["AAA", "BBB", "CCC"][i % 3]}) + "\n")
        f.write('{"published_at": "not a time", "body": "bad"}\n')
    for n in range(2):
        (inbox / f"8k-{n}.html").write_text(FILING.format(text=f"Revenue rose {n}.",
                                                          revenue=f"{100 + n}"))
    (inbox / "index.csv").write_text("file,filed_date,form_type,ticker\n8k-0.html,2024-02-01,"
                                     "8-K,AAA\n8k-1.html,2024-05-01,8-K,AAA\n")
    return inbox


def _check(tmp_path, monkeypatch, template, op, warehouse_of, each_kind_once=False,
           modes=MODES):
    """Run `op(root)` uninterrupted, then stopped at each boundary (in each mode; with
    `each_kind_once`, at the first boundary of each kind) and run again; every end state must
    equal the uninterrupted one."""
    reference_root = faults.fresh(template, tmp_path / "reference")
    with faults.injected(monkeypatch, faults.Faults()) as counted:
        op(reference_root)
    reference = faults.state(reference_root, warehouse_of(reference_root))
    assert counted.seen, "the writer crossed no boundary"
    checked = []
    for at in range(1, counted.seen + 1):
        if each_kind_once and counted.names[at - 1] in counted.names[:at - 1]:
            continue
        for when, how in modes:
            root = faults.fresh(template, tmp_path / "try")
            with faults.injected(monkeypatch, faults.Faults(at, when, how)) as injected:
                try:
                    op(root)
                except (faults.Killed, OSError, Exception):
                    pass  # stopped here; whatever the writer said, the re-run must mend it
            if injected.seen < at:
                continue  # this run crossed fewer boundaries (a cache it found): no fault
            op(root)  # the re-run, no fault
            differences = faults.same(faults.state(root, warehouse_of(root)), reference)
            assert not differences, (f"{how} {when} boundary {at} "
                                     f"({counted.names[at - 1]}): {differences}")
            checked.append((at, when, how))
    return counted.names, checked, reference


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    _inputs(root)
    Warehouse(root / "w.duckdb").close()
    return root


@pytest.mark.parametrize("kind, names", [("prices", ["prices.csv"]),
                                         ("news", ["news.jsonl"]),
                                         ("filings", ["8k-0.html", "8k-1.html"])])
def test_an_ingest_stopped_anywhere_then_rerun_equals_an_uninterrupted_one(
        tmp_path, monkeypatch, inputs, kind, names):
    def ingest(root):
        with Warehouse(root / "w.duckdb") as wh:
            ingest_files(wh, kind, [root / "in" / name for name in names])

    boundaries, checked, _ = _check(tmp_path, monkeypatch, inputs, ingest,
                                 lambda root: root / "w.duckdb")
    assert "COMMIT" in boundaries and len(checked) == 3 * len(boundaries)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = sample_workspace(tmp_path_factory.mktemp("workspace") / "ws")
    quant.open(root, write=True).backtest("buy_and_hold")  # the reports folder exists
    return root


SPEC = {"kind": "linear", "test": 126, "min_train": 500,
        "features": ["tone", "return_1", "return_5"]}


@pytest.mark.parametrize("writer", ["model fit", "backtest", "report"])
def test_a_research_writer_stopped_anywhere_then_rerun_equals_an_uninterrupted_one(
        tmp_path, monkeypatch, workspace, writer):
    def op(root):
        ws = quant.open(root, write=True)
        if writer == "model fit":
            ws.fit_model("m", **SPEC)
        elif writer == "backtest":
            ws.backtest("sentiment_long_short", {"quantile": 0.25})
        else:
            ws.report(ws.run("latest"))

    boundaries, _, _ = _check(tmp_path, monkeypatch, workspace, op,
                           lambda root: root / "warehouse.duckdb")
    assert any(name.startswith(("artefact", "file")) for name in boundaries)


def test_the_daily_job_stopped_at_each_kind_of_boundary_then_rerun_equals_an_uninterrupted_one(
        tmp_path, monkeypatch, tiny_workspace):
    as_of = date(2024, 3, 28)

    def daily(root):
        config = load_config(root)
        row = jobs.run_job("daily", config, as_of)
        if row["status"] != "ok":
            raise RuntimeError(row.get("error"))

    boundaries, checked, reference = _check(
        tmp_path, monkeypatch, tiny_workspace, daily, lambda root: root / "warehouse.duckdb",
        each_kind_once=True, modes=[("after", "kill")])
    assert {"COMMIT"} < set(boundaries) and checked
    assert len(reference["tables"]["targets"]) == 3   # tomorrow's book, once, whatever stopped it


def test_scoring_stopped_anywhere_then_rerun_equals_an_uninterrupted_one(
        tmp_path, monkeypatch, tiny_workspace):
    as_of = date(2024, 3, 28)
    template = faults.fresh(tiny_workspace, tmp_path / "ingested")
    assert jobs.run_job("ingest", load_config(template), as_of)["status"] == "ok"

    def score(root):
        row = jobs.run_job("score", load_config(root), as_of)
        if row["status"] != "ok":
            raise RuntimeError(row.get("error"))

    boundaries, checked, _ = _check(tmp_path, monkeypatch, template, score,
                                 lambda root: root / "warehouse.duckdb")
    assert "COMMIT" in boundaries and checked


@pytest.fixture(scope="module")
def tiny_workspace(tmp_path_factory):
    from quant.api import init_workspace
    from tests.llm.tiny import build_tiny_model

    tiny = build_tiny_model(tmp_path_factory.mktemp("tiny"), "qwen3_moe")
    root = tmp_path_factory.mktemp("daily") / "ws"
    init_workspace(root)
    toml = (root / "quant.toml").read_text()
    toml = toml.replace('spec = "default"', f'spec = "{tiny}"').replace(
        'precision = "auto"', 'precision = "fp32"').split("[schedule.daily]")[0]
    (root / "quant.toml").write_text(toml.replace("[pipeline]\n", "[pipeline]\nmin_history = 5\n"))
    inputs = _inputs(root / "staging")
    for kind, pattern in (("prices", "prices.csv"), ("news", "news.jsonl"),
                          ("filings", "8k-*.html")):
        for path in inputs.glob(pattern):
            path.rename(root / "inbox" / kind / path.name)
    (inputs / "index.csv").rename(root / "inbox" / "filings" / "index.csv")
    with Warehouse(root / "warehouse.duckdb") as wh:  # a live book for the daily job to decide
        deployments.create(wh, deployments.Deployment(
            "hold", "buy_and_hold", {}, None, None, None, {}, ("AAA", "BBB", "CCC"),
            date(2024, 1, 2)))
    return root
