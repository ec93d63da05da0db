"""The model itself: loading and caching, its identity, upcycling into MoE blocks, adapters,
and the precision its weights are held in."""
