import json
import subprocess
import sys

from click.testing import CliRunner

from quant.cli import cli


def run(*args: str, workspace=None):
    prefix = ["--workspace", str(workspace)] if workspace else []
    result = CliRunner().invoke(cli, [*prefix, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_init_ingest_status_search_as_json(tmp_path):
    ws = tmp_path / "ws"
    info = json.loads(run("init", str(ws), "--json"))
    assert info["schema_version"] >= 1 and (ws / "quant.toml").exists()
    (tmp_path / "p.csv").write_text("ticker,date,close\nAAPL,2024-01-02,10\nAAPL,2024-01-03,11\n")
    (tmp_path / "n.jsonl").write_text(
        '{"published_at": "2024-01-02T20:00:00Z", "title": "Apple unveils a headset", '
        '"body": "The $AAPL headset ships soon."}\n{"broken\n')
    rows = json.loads(run("ingest", "prices", str(tmp_path / "p.csv"), "--json", workspace=ws))
    assert rows[0]["inserted"] == 2
    rows = json.loads(run("ingest", "news", str(tmp_path / "n.jsonl"), "--json", workspace=ws))
    assert (rows[0]["inserted"], rows[0]["rejected"]) == (1, 1)
    status = json.loads(run("db", "status", "--json", workspace=ws))
    counts = {t["table"]: t["rows"] for t in status["tables"]}
    assert counts["prices"] == 2 and counts["documents"] == 1 and counts["rejects"] == 1
    hits = json.loads(run("search", "headset", "--ticker", "AAPL", "--json", workspace=ws))
    assert hits[0]["tickers"] == ["AAPL"]
    assert "Apple" in run("search", "headset", workspace=ws)


def test_errors_are_one_line_and_exit_2(tmp_path):
    (tmp_path / "quant.toml").write_text("[pipeline]\nhalf_lfe = 3\n")
    done = subprocess.run([sys.executable, "-m", "quant.cli", "-w", str(tmp_path), "db", "status"],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert "unknown key pipeline.half_lfe" in done.stderr and "quant.toml" in done.stderr
    assert "Traceback" not in done.stderr


def _quant(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "quant.cli", "-w", str(tmp_path), *args],
                          capture_output=True, text=True, timeout=300)


def test_errors_under_json_are_one_json_object(tmp_path):
    (tmp_path / "quant.toml").write_text("[pipeline]\nhalf_lfe = 3\n")
    done = _quant(tmp_path, "db", "status", "--json")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    error = json.loads(done.stdout)
    assert "unknown key pipeline.half_lfe" in error["error"] and error["type"] == "ConfigError"
    assert error["where"].startswith("quant ") and "fix" in error


def test_a_batch_whose_file_went_in_not_at_all_exits_non_zero(tmp_path):
    run("init", str(tmp_path))
    (tmp_path / "bad.csv").write_text("ticker,date,close\nAAA,not-a-date,1\n")
    done = _quant(tmp_path, "ingest", "prices", str(tmp_path / "bad.csv"))
    assert done.returncode == 1 and "went in not at all" in done.stderr
    assert _quant(tmp_path, "ingest", "prices", str(tmp_path / "bad.csv"),
                  "--allow-partial").returncode == 0


def test_text_from_the_data_cannot_drive_the_terminal(tmp_path):
    run("init", str(tmp_path / "ws"))
    (tmp_path / "n.jsonl").write_text(json.dumps({
        "published_at": "2024-01-02T20:00:00Z", "tickers": ["AAA"],
        "title": "Evil [/] markup [bold red]and \x1b[31mred\x1b[0m escapes",
        "body": "evil body text"}))
    run("ingest", "news", str(tmp_path / "n.jsonl"), workspace=tmp_path / "ws")
    out = run("search", "evil", workspace=tmp_path / "ws")   # did not crash on the markup
    assert "\x1b[31m" not in out and "\\x1b" in out
