-- Strategies frozen for daily use: what trades, with which params, reading which signals,
-- at what costs, over which names, from which session. A deployment is never edited: a change
-- is a new deployment under a new name, and the old one is retired.
CREATE TABLE deployments (
    name              VARCHAR PRIMARY KEY,
    strategy          VARCHAR NOT NULL,
    params            JSON NOT NULL,
    model_fingerprint VARCHAR,                -- the signal set it reads
    prompt_version    VARCHAR,
    mode              VARCHAR,
    settings          JSON NOT NULL,          -- costs and sizing, as the backtest takes them
    universe          JSON NOT NULL,          -- tickers
    go_live           DATE NOT NULL,          -- the first session it trades
    created_at        TIMESTAMPTZ NOT NULL,
    retired_at        TIMESTAMPTZ
);

-- A deployment's book for one session: the weight to hold from that session's open, decided
-- from what was known before it, with the signal behind it. One row per (deployment, session,
-- ticker); a session's rows are written together or not at all.
CREATE TABLE targets (
    deployment  VARCHAR NOT NULL,
    session     DATE NOT NULL,
    ticker      VARCHAR NOT NULL,
    weight      DOUBLE,                       -- NULL: no order, keep what is held
    signal      DOUBLE,                       -- the traded signal's value at the decision
    n_docs      INTEGER,                      -- documents aligned to that session
    documents   VARCHAR[],                    -- their doc_ids: what moved the book today
    decided_at  TIMESTAMPTZ NOT NULL,         -- the session's open: nothing later was read
    PRIMARY KEY (deployment, session, ticker)
);
