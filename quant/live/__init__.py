"""Live trading on paper: deployments, each session's book decided point-in-time, the track
record beside the backtest's expectation, and the replay that proves live equals backtest."""
