"""Backtests: execution and costs through vectorbt (single, sweep, walk-forward), the compiled
order simulation, the book behind the returns, performance statistics and the tear sheet."""
