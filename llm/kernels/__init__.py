"""Kernels for the MoE hot path: each Triton kernel beside its pure-torch reference and a host
wrapper that checks shapes, dtypes and contiguity; a CPU path for machines without a GPU."""
