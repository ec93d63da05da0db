import pytest

from tests.llm.tiny import build_tiny_model


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny_qwen3_moe"), "qwen3_moe")


@pytest.fixture(scope="session")
def tiny_deepseek(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny_deepseek_v3"), "deepseek_v3")
