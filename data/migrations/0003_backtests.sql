-- Backtest runs: one row per run (a single backtest, a sweep, or a walk-forward test).
CREATE TABLE backtests (
    run_id        VARCHAR PRIMARY KEY,
    strategy      VARCHAR NOT NULL,
    kind          VARCHAR NOT NULL CHECK (kind IN ('single', 'sweep', 'walk_forward')),
    params        JSON NOT NULL,        -- the parameters (best ones for a sweep)
    period_start  DATE NOT NULL,
    period_end    DATE NOT NULL,
    metrics       JSON NOT NULL,
    signals       JSON,                 -- model id, fingerprint, prompt version, mode
    settings      JSON,                 -- fees, slippage, cash, leverage
    created_at    TIMESTAMPTZ NOT NULL
);
