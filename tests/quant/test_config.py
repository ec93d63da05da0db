"""quant.toml's sections are the settings objects the code takes."""

import pytest

from llm.infer.engine import EngineSettings
from quant.backtests.backtest import Settings
from quant.config import load_config
from quant.errors import ConfigError
from quant.pipeline import PanelParams


def test_sections_are_the_code_settings(tmp_path):
    (tmp_path / "quant.toml").write_text(
        "[pipeline]\nhalf_life = 3\nstale_after = 6\n[backtest]\nfees_bps = 2\n"
        "[model]\nbatch_size = 16\nevents = true\n")
    config = load_config(tmp_path)
    assert config.pipeline == PanelParams(half_life=3.0, stale_after=6)
    assert isinstance(config.backtest, Settings) and config.backtest.fees_bps == 2.0
    assert isinstance(config.model, EngineSettings)
    assert (config.model.batch_size, config.model.events) == (16, True)


def test_a_wrong_type_or_key_names_itself(tmp_path):
    (tmp_path / "quant.toml").write_text("[pipeline]\nstale_after = \"soon\"\n")
    with pytest.raises(ConfigError, match="pipeline.stale_after must be int"):
        load_config(tmp_path)
    (tmp_path / "quant.toml").write_text("[backtest]\nfee_bps = 2\n")
    with pytest.raises(ConfigError, match="unknown key backtest.fee_bps"):
        load_config(tmp_path)


@pytest.mark.parametrize("toml,message", [
    ("[pipeline]\nhorizons = [0, 5]\n", "horizons must be positive whole sessions"),
    ("[pipeline]\nhorizons = [-1]\n", "horizons must be positive whole sessions"),
    ("[model]\nmode = \"fast\"\n", "mode must be one of score, reason, not 'fast'"),
    ("[model]\nprecision = \"fp4\"\n", "precision must be one of"),
    ("[data]\nassume_zone = \"Mars/Olympus\"\n", "is not a time zone name"),
    ("engine = \"spark\"\n", "engine must be one of local, ray"),
    ("[backtest]\nmetric = \"vibes\"\n", "metric must be one of"),
    ("[backtest]\nfees_bps = -1.0\n", "must not be negative"),
])
def test_values_out_of_range_name_the_file_and_table(tmp_path, toml, message):
    (tmp_path / "quant.toml").write_text(toml)
    with pytest.raises(ConfigError, match=message) as error:
        load_config(tmp_path)
    assert "quant.toml" in str(error.value)
