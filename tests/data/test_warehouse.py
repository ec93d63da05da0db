import subprocess
import sys
import textwrap

import pytest

from data.errors import DataError
from data.migrate import migrations
from data.warehouse import Warehouse


def test_fresh_database_gets_every_migration(tmp_path):
    with Warehouse(tmp_path / "w.duckdb") as wh:
        versions = wh.query("SELECT version FROM schema_version ORDER BY version")["version"]
        assert versions.to_list() == list(range(1, len(migrations()) + 1))
        tables = set(wh.query("SELECT table_name FROM information_schema.tables")["table_name"])
        assert {"instruments", "prices", "documents", "filing_sections", "rejects"} <= tables


def test_reopening_applies_nothing_twice(tmp_path):
    Warehouse(tmp_path / "w.duckdb").close()
    with Warehouse(tmp_path / "w.duckdb") as wh:
        assert wh.scalar("SELECT count(*) FROM schema_version") == len(migrations())


def test_newer_schema_is_refused(tmp_path):
    with Warehouse(tmp_path / "w.duckdb") as wh:
        wh.con.execute("INSERT INTO schema_version (version, name) VALUES (999, '0999_future')")
    with pytest.raises(DataError, match="newer than this code knows"):
        Warehouse(tmp_path / "w.duckdb")


def test_read_only_needs_an_existing_file(tmp_path):
    with pytest.raises(DataError, match="quant init"):
        Warehouse(tmp_path / "missing.duckdb", read_only=True)


def test_second_writer_process_gets_a_clear_error(tmp_path):
    path = tmp_path / "w.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from data.warehouse import Warehouse
            wh = Warehouse({str(path)!r})
            print("ready", flush=True)
            time.sleep(30)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(DataError) as info:
            Warehouse(path)
        message = str(info.value)
        assert str(path) in message and f"process {holder.pid}" in message
        with pytest.raises(DataError, match="locked"):  # a reader too, while a writer holds it
            Warehouse(path, read_only=True)
    finally:
        holder.kill()
        holder.wait()
    with Warehouse(path, read_only=True) as reader:  # once released, readers are fine
        assert reader.scalar("SELECT count(*) FROM documents") == 0


def test_transaction_rolls_back_on_error(wh):
    with pytest.raises(RuntimeError):
        with wh.transaction() as con:
            con.execute("INSERT INTO instruments (ticker) VALUES ('X')")
            raise RuntimeError("boom")
    assert wh.scalar("SELECT count(*) FROM instruments") == 0
