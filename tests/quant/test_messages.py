"""What a user reads when something is wrong: the cause in words, the fix, no library's
advice about its own options, no traceback, and `--json` errors that carry their fix."""

import json
import subprocess
import sys

import pytest

from data.ingest import ingest_files
from llm.errors import ModelError
from quant.cli import split_fix


def _quant(*args, cwd):
    return subprocess.run([sys.executable, "-m", "quant.cli", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("messages")
    assert _quant("init", "ws", cwd=root).returncode == 0
    (root / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "names.csv").write_text("name,date\n8k.html,2024-01-02\n")
    (root / "8k.html").write_text("<p>Item 2.02 Results</p><p>Revenue rose.</p>")
    return root


@pytest.mark.parametrize("index, columns", [("passwd", "['root:x:0:0:root:/root:/bin/bash']"),
                                           ("names.csv", "['name', 'date']")])
def test_an_index_that_is_not_one_says_what_it_holds(ws, index, columns):
    done = _quant("-w", "ws", "ingest", "filings", "8k.html", "--index", index, cwd=ws)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    message = " ".join(done.stderr.split())
    assert f"has the columns {columns}, not `file`" in message  # `:x:` is not an emoji


def test_json_errors_carry_the_fix_the_message_states(ws):
    done = _quant("-w", "missing", "db", "status", "--json", cwd=ws)
    error = json.loads(done.stdout)
    assert error["error"].startswith("no workspace at") and error["fix"].startswith("create it")


@pytest.mark.parametrize("message, what, fix", [
    ("no backtest has been run yet: run `quant backtest` first", "no backtest has been run yet",
     "run `quant backtest` first"),
    ("x is locked (pid 3: a: b); wait for it", "x is locked (pid 3: a: b)", "wait for it"),
    ("kind must be one of a, b", "kind must be one of a, b", ""),
])
def test_the_fix_is_what_follows_the_cause(message, what, fix):
    assert split_fix(message) == (what, fix)


@pytest.mark.parametrize("content, reason", [
    ("ticker,date,close\nAAA,2024-01-02,10,11,12\n", "line 2 has 5 fields, the header 3"),
    ('ticker,date,close\n"AAA,2024-01-02\n', "line 2: unexpected end of data"),
])
def test_a_malformed_price_csv_is_rejected_with_its_line(wh, tmp_path, content, reason):
    path = tmp_path / "p.csv"
    path.write_text(content)
    [why] = ingest_files(wh, "prices", [path])[0].reasons
    assert reason in why and "truncate_ragged_lines" not in why


def test_an_evaluation_file_with_an_empty_text_says_which_rows(tmp_path):
    from llm.infer.evaluate import read_labelled

    path = tmp_path / "labelled.csv"
    path.write_text('text,label\n"Shares rose",positive\n,negative\n"  ",neutral\n')
    with pytest.raises(ModelError, match="2 rows have no text in column 'text' \\(data rows "
                                         "2, 3\\)"):
        read_labelled(path, "text", "label")


def test_a_full_disk_anywhere_is_status_2_with_the_fix(ws, monkeypatch, capsys):
    import duckdb

    import quant.api
    from quant.cli import main

    def full(self):  # as DuckDB reports a commit that found no space
        raise duckdb.TransactionException("Failed to commit: could not write file "
                                          "\"w.duckdb.wal\": No space left on device")

    monkeypatch.setattr(quant.api.Workspace, "status", full)
    monkeypatch.setattr(sys, "argv", ["quant", "-w", str(ws / "ws"), "db", "status"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 2
    error = " ".join(capsys.readouterr().err.split())
    assert "no space left on device" in error and "free space and rerun" in error
