"""Shared fixtures: fresh warehouses and the real datasets in ../shared/datasets (if present)."""

from __future__ import annotations

import os
from pathlib import Path

# Triton kernels run under the interpreter on machines without a GPU (set before any import
# of triton: the decorator reads it).
try:
    import torch

    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")
except ImportError:  # pragma: no cover
    pass

import pytest

from data.warehouse import Warehouse
from tests.llm.tiny import build_tiny_model

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"


def dataset(*parts: str) -> Path:
    """A file of the shared datasets, or skip the test with the reason."""
    path = DATASETS.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"dataset {path} not present (it lives in ../shared/datasets beside the repo)")
    return path


@pytest.fixture
def wh(tmp_path: Path):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    yield warehouse
    warehouse.close()


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny_qwen3_moe"), "qwen3_moe")


@pytest.fixture(scope="session")
def tiny_deepseek(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny_deepseek_v3"), "deepseek_v3")


@pytest.fixture(scope="session")
def tiny_gemma(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny_gemma3"), "gemma3_text")
