"""Artefacts are written whole or not at all, names stay inside the workspace, and a full disk
is a clear error that keeps the previous version."""

import errno
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from quant import artefact
from quant.artefact import ArtefactError
from quant.errors import ConfigError
from quant.learned import Fitted, ModelSpec


def _fitted(folds: int) -> Fitted:
    return Fitted(
        ModelSpec(kind="linear"),
        pl.DataFrame({"ticker": ["A"] * folds, "session": list(range(folds)),
                      "prediction": [0.1] * folds, "fold": list(range(folds))}),
        pl.DataFrame({"fold": list(range(folds))}),
        pl.DataFrame({"feature": ["f"], "importance": [1.0]}),
        pl.DataFrame({"feature": ["f"], "rank_ic": [0.02], "t_hac": [1.0], "sessions": [9]}),
        {"folds": folds})


def test_a_model_reads_back_as_saved(tmp_path):
    _fitted(50).save(tmp_path / "m")
    loaded = Fitted.load(tmp_path / "m")
    assert loaded.folds.height == 50 and loaded.meta["folds"] == 50


@pytest.mark.parametrize("dies_at", ["predictions.parquet", "importance.parquet", "model.json",
                                     "manifest.json"])
def test_a_save_that_dies_at_any_file_keeps_the_old_model_whole(tmp_path, monkeypatch,
                                                                dies_at):
    _fitted(50).save(tmp_path / "m")
    real_write_text, real_write_parquet = Path.write_text, pl.DataFrame.write_parquet

    def dying_text(self, *args, **kwargs):
        if self.name == dies_at:
            raise KeyboardInterrupt  # killed here
        return real_write_text(self, *args, **kwargs)

    def dying_parquet(self, path, *args, **kwargs):
        if Path(path).name == dies_at:
            raise KeyboardInterrupt
        return real_write_parquet(self, path, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", dying_text)
    monkeypatch.setattr(pl.DataFrame, "write_parquet", dying_parquet)
    with pytest.raises(KeyboardInterrupt):
        _fitted(150).save(tmp_path / "m")
    monkeypatch.undo()
    assert Fitted.load(tmp_path / "m").folds.height == 50
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # nothing partial left


def test_a_full_disk_is_a_clear_error_and_the_old_model_stays(tmp_path, monkeypatch):
    _fitted(50).save(tmp_path / "m")

    def full(self, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(pl.DataFrame, "write_parquet", full)
    with pytest.raises(ArtefactError, match="no space left on device under .*free space"):
        _fitted(150).save(tmp_path / "m")
    monkeypatch.undo()
    assert Fitted.load(tmp_path / "m").folds.height == 50
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_a_torn_or_old_model_is_refused_with_the_fix(tmp_path):
    folder = _fitted(50).save(tmp_path / "m")
    _fitted(150).folds.write_parquet(folder / "folds.parquet")  # torn: one file replaced
    with pytest.raises(ArtefactError, match="torn: folds.parquet .*quant model fit --name m"):
        Fitted.load(folder)
    (folder / artefact.MANIFEST).unlink()  # as an earlier version saved it
    with pytest.raises(ArtefactError, match="no manifest.json"):
        Fitted.load(folder)


def test_a_crash_between_the_two_renames_is_recovered_on_read(tmp_path):
    folder = _fitted(50).save(tmp_path / "m")
    folder.rename(tmp_path / ".m.old-12345")  # the old version aside, the new one not yet in
    assert Fitted.load(folder).folds.height == 50


@pytest.mark.parametrize("name", ["../../elsewhere/evil", "/tmp/evil", "a/b", "..", ".hidden",
                                  "", "x" * 200, "a..b"])
def test_a_name_is_never_a_path(tmp_path, name):
    with pytest.raises(ConfigError, match="is not a plain name"):
        artefact.inside(tmp_path, name, "model")


def test_plain_names_resolve_inside(tmp_path):
    assert artefact.inside(tmp_path, "sentiment-v2.1_b", "model") == tmp_path / "sentiment-v2.1_b"


def _quant(*args, cwd):
    return subprocess.run([sys.executable, "-m", "quant.cli", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def test_the_cli_refuses_a_model_name_that_leaves_the_workspace(tmp_path):
    assert _quant("init", "ws", cwd=tmp_path).returncode == 0
    done = _quant("-w", "ws", "model", "fit", "--name", "../../elsewhere/evil", cwd=tmp_path)
    assert done.returncode == 2 and "is not a plain name" in done.stderr
    assert not (tmp_path.parent / "elsewhere").exists()


@pytest.mark.parametrize("job", ["ingest", "score"])
def test_schedule_once_refuses_a_folder_that_is_no_workspace(tmp_path, job):
    done = _quant("-w", "MISSPELT", "schedule", "once", job, cwd=tmp_path)
    assert done.returncode == 2 and "no workspace at" in done.stderr
    assert not (tmp_path / "MISSPELT").exists()
