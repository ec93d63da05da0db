-- The passages a filing section was read in, with each one's reading: a section's signal in
-- `signals` aggregates them, and a report can show which sentences drove it.
CREATE TABLE signal_passages (
    doc_id            VARCHAR NOT NULL,
    section           VARCHAR NOT NULL,
    ticker            VARCHAR NOT NULL,
    model_fingerprint VARCHAR NOT NULL,
    prompt_version    VARCHAR NOT NULL,
    mode              VARCHAR NOT NULL,
    passage           INTEGER NOT NULL,              -- 0, 1, ... in reading order
    start_char        INTEGER NOT NULL,              -- offsets into the section's text
    end_char          INTEGER NOT NULL,
    status            VARCHAR NOT NULL,
    sentiment         DOUBLE,
    confidence        DOUBLE,
    tokens            INTEGER,
    PRIMARY KEY (doc_id, section, ticker, model_fingerprint, prompt_version, mode, passage)
);
