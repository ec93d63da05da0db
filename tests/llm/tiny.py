"""Tiny random checkpoints (Qwen3-MoE, DeepSeek-V3, and a dense Gemma 3 with a sliding window
of a few tokens) with a BPE tokenizer trained in code, saved like any Hugging Face directory so
tests load them through `llm.load`."""

from __future__ import annotations

from pathlib import Path

import torch

CORPUS = [
    "Apple beats earnings estimates; shares rise. bullish bearish neutral",
    "Microsoft misses guidance, stock falls. bearish neutral bullish",
    "merger legal product management analyst macro dividend other earnings guidance",
    "Event type: earnings Sentiment: bullish Reasoning: JSON: {\"sentiment\": 10}",
    "The company reported results in line with expectations. neutral",
    "### System ### User ### Assistant Company ticker: Text: Classify the event type",
] * 20


def train_tokenizer(vocab_size: int = 400):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<eos>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>")


def tiny_config(arch: str, vocab_size: int):
    common = dict(vocab_size=vocab_size, hidden_size=64, intermediate_size=96,
                  moe_intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
                  max_position_embeddings=1024, tie_word_embeddings=False, eos_token_id=0,
                  pad_token_id=1, bos_token_id=0)
    if arch == "qwen3_moe":
        from transformers import Qwen3MoeConfig

        return Qwen3MoeConfig(num_key_value_heads=2, head_dim=16, num_experts=8,
                              num_experts_per_tok=2, decoder_sparse_step=1,
                              norm_topk_prob=True, **common)
    if arch == "deepseek_v3":
        from transformers import DeepseekV3Config

        return DeepseekV3Config(num_key_value_heads=4, n_routed_experts=8, n_shared_experts=1,
                                num_experts_per_tok=2, n_group=2, topk_group=1,
                                first_k_dense_replace=0, kv_lora_rank=16, q_lora_rank=None,
                                qk_rope_head_dim=8, qk_nope_head_dim=8, v_head_dim=16,
                                rope_interleave=False, **common)
    if arch == "gemma3_text":
        from transformers import Gemma3TextConfig

        return Gemma3TextConfig(num_key_value_heads=1, head_dim=16, query_pre_attn_scalar=16,
                                sliding_window=6, layer_types=["sliding_attention",
                                                               "full_attention"],
                                hidden_activation="gelu_pytorch_tanh", **common)
    raise ValueError(arch)


def build_tiny_model(directory: Path, arch: str = "qwen3_moe", seed: int = 0) -> Path:
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    tokenizer = train_tokenizer()
    model = AutoModelForCausalLM.from_config(tiny_config(arch, len(tokenizer)))
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
