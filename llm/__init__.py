"""Local models: loading, the MoE block and its kernels, the inference engine, fine-tuning."""

from llm.errors import ModelError
from llm.load import LoadedModel, describe, load

__all__ = ["LoadedModel", "ModelError", "describe", "load"]
