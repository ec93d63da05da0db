"""Local models: loading, the MoE block and its kernels, the inference engine, fine-tuning."""

from llm.errors import ModelError
from llm.model.load import describe, load
from llm.model.loaded import LoadedModel

__all__ = ["LoadedModel", "ModelError", "describe", "load"]
