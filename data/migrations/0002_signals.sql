-- Signals: one row per (document, section, ticker, model fingerprint, prompt version, mode).
-- A failure is a row with status 'failed' and its reason, never a silent neutral.
CREATE TABLE signals (
    doc_id            VARCHAR NOT NULL,
    section           VARCHAR NOT NULL DEFAULT '',   -- filing item ('' for news)
    ticker            VARCHAR NOT NULL,
    model_id          VARCHAR NOT NULL,
    model_fingerprint VARCHAR NOT NULL,
    prompt_version    VARCHAR NOT NULL,
    mode              VARCHAR NOT NULL CHECK (mode IN ('score', 'reason')),
    status            VARCHAR NOT NULL CHECK (status IN ('ok', 'abstain', 'failed')),
    reason            VARCHAR,                       -- why abstained or failed
    sentiment         DOUBLE CHECK (sentiment BETWEEN -1 AND 1),
    confidence        DOUBLE CHECK (confidence BETWEEN 0 AND 1),
    event_type        VARCHAR,
    horizon_days      INTEGER CHECK (horizon_days BETWEEN 1 AND 60),
    rationale         VARCHAR,
    published_at      TIMESTAMPTZ NOT NULL,          -- inherited from the document
    created_at        TIMESTAMPTZ NOT NULL,
    latency_ms        DOUBLE,
    tokens            INTEGER,
    decoding          JSON,                          -- precision, batch, truncation, settings
    PRIMARY KEY (doc_id, section, ticker, model_fingerprint, prompt_version, mode)
);
CREATE INDEX signals_published_at ON signals (published_at);
