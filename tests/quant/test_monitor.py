"""The monitor: each check fires on a constructed breach and is quiet on healthy data; alerts
reach the file, a command and a mail server on loopback; a notifier that fails never fails
the job."""

from __future__ import annotations

import json
import socketserver
import threading
from datetime import date

import pytest

import quant
from quant.batch import jobs, monitor
from quant.config import load_config
from tests.quant.helpers import sample_workspace

HEALTHY = date(2012, 12, 31)   # the sample's last day of news and a session with prices


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = sample_workspace(tmp_path_factory.mktemp("monitor") / "ws")
    ws = quant.open(root, write=True)
    ws.deploy("watched", "sentiment_long_short", {}, go_live=date(2012, 10, 1))
    ws.replay("watched", date(2012, 10, 1), HEALTHY)
    return root


def _with_alerts(root, **settings) -> object:
    toml = (root / "quant.toml").read_text().split("[alerts]")[0] + "[alerts]\n" + "".join(
        f"{k} = {json.dumps(v)}\n" for k, v in settings.items())
    (root / "quant.toml").write_text(toml)
    return load_config(root)


def test_every_check_is_quiet_on_healthy_data(root):
    config = _with_alerts(root)
    with quant.open(root).warehouse() as wh:
        found = monitor.checks(config, wh, HEALTHY)
    assert {c["check"] for c in found} == {"price_age", "news_age", "failure_rate", "coverage",
                                           "failed_jobs", "live_ic:watched"}
    assert [c for c in found if not c["ok"]] == []


def test_each_check_fires_on_a_breach(root):
    config = _with_alerts(root, min_live_ic=0.99, min_coverage=1.0)
    later = date(2013, 3, 1)   # prices run on, the news feed stopped at the year's end
    with quant.open(root, write=True).warehouse(write=True) as wh:
        wh.con.execute("INSERT INTO job_runs (run_id, job, as_of, started_at, finished_at, "
                       "status, error, counters, pid, host) VALUES ('x', 'score', ?, now(), "
                       "now(), 'failed', 'model missing', NULL, 1, 'h')", [later])
        wh.con.execute("UPDATE signals SET status = 'failed', sentiment = NULL, "
                       "confidence = NULL WHERE published_at::DATE > DATE '2012-12-20'")
        breached = {c["check"]: c for c in monitor.checks(config, wh, later) if not c["ok"]}
        stale = {c["check"] for c in monitor.checks(config, wh, date(2013, 6, 28))
                 if not c["ok"]}
        failing = {c["check"] for c in monitor.checks(config, wh, HEALTHY) if not c["ok"]}
        wh.con.execute("UPDATE signals SET status = 'ok', sentiment = 0.1, confidence = 0.8 "
                       "WHERE status = 'failed'")
        wh.con.execute("DELETE FROM job_runs WHERE run_id = 'x'")
    assert breached["news_age"]["value"] == 61 and "failed_jobs" in breached  # Dec 30 .. Mar 1
    assert "model missing" in breached["failed_jobs"]["message"]
    assert {"price_age", "news_age"} <= stale
    assert {"failure_rate", "coverage", "live_ic:watched"} <= failing


class _Mail(socketserver.StreamRequestHandler):
    """Just enough SMTP for one message, kept in `received`."""

    received: list[str] = []

    def handle(self):
        self.wfile.write(b"220 loopback\r\n")
        while line := self.rfile.readline():
            verb = line.decode().strip().split(" ")[0].upper()
            if verb == "DATA":
                self.wfile.write(b"354 go on\r\n")
                body = []
                while (part := self.rfile.readline()) not in (b".\r\n", b""):
                    body.append(part.decode())
                self.received.append("".join(body))
                self.wfile.write(b"250 ok\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            elif verb == "EHLO":
                self.wfile.write(b"250 loopback\r\n")
            else:
                self.wfile.write(b"250 ok\r\n")


def test_alerts_reach_the_file_a_command_and_the_mail(root, tmp_path):
    server = socketserver.TCPServer(("127.0.0.1", 0), _Mail)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        out = tmp_path / "from-command.json"
        config = _with_alerts(root, min_live_ic=0.99, notify_command=f"cat > {out}",
                              smtp_host="127.0.0.1", smtp_port=server.server_address[1],
                              smtp_to=["desk@example.com"])
        row = jobs.run_job("monitor", config, HEALTHY)
    finally:
        server.shutdown()
        server.server_close()
    assert row["status"] == "ok" and row["counters"]["notifier_failures"] == []
    [breach] = row["counters"]["breaches"]
    assert breach["check"] == "live_ic:watched"
    logged = [json.loads(line) for line in (root / "logs" / "alerts.jsonl").read_text()
              .splitlines()]
    assert logged[-1]["breaches"][0]["check"] == "live_ic:watched"
    assert json.loads(out.read_text())["as_of"] == str(HEALTHY)
    assert "live_ic:watched" in _Mail.received[-1] and "desk@example.com" in _Mail.received[-1]


def test_a_failing_notifier_never_fails_the_job(root):
    config = _with_alerts(root, min_live_ic=0.99, notify_command="exit 3",
                          smtp_host="127.0.0.1", smtp_port=1, smtp_to=["desk@example.com"])
    row = jobs.run_job("monitor", config, date(2012, 12, 28))
    assert row["status"] == "ok"
    failures = row["counters"]["notifier_failures"]
    assert [f.split(":")[0] for f in failures] == ["command", "smtp"]


def test_a_scheduled_job_that_stopped_running_is_late(root):
    from datetime import datetime, timedelta, timezone

    config = _with_alerts(root)
    now = datetime.now(timezone.utc)
    with quant.open(root, write=True).warehouse(write=True) as wh:
        assert not [c for c in monitor._late_jobs(config, wh, now)]   # never run: not late
        wh.con.execute("INSERT INTO job_runs (run_id, job, as_of, started_at, finished_at, "
                       "status, error, counters, pid, host) VALUES ('old', 'daily', ?, ?, ?, "
                       "'ok', NULL, NULL, 1, 'h')",
                       [HEALTHY, now - timedelta(days=9), now - timedelta(days=9)])
        [late] = monitor._late_jobs(config, wh, now)
        wh.con.execute("UPDATE job_runs SET started_at = ? WHERE run_id = 'old'", [now])
        [fresh] = monitor._late_jobs(config, wh, now)
        wh.con.execute("DELETE FROM job_runs WHERE run_id = 'old'")
    assert late["check"] == "late:daily" and not late["ok"] and fresh["ok"]
