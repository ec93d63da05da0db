"""quant.toml's sections are the settings objects the code takes."""

import pytest

from llm.engine import EngineSettings
from quant.backtest import Settings
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
