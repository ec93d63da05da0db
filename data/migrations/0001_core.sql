-- Core tables: instruments, prices, documents, filing sections and rejected rows.
-- Every timestamp is UTC (TIMESTAMPTZ); prices are keyed by exchange session date.

CREATE TABLE instruments (
    ticker      VARCHAR PRIMARY KEY,
    name        VARCHAR,
    cik         VARCHAR,
    exchange    VARCHAR,
    added_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE prices (
    ticker      VARCHAR NOT NULL,
    session     DATE NOT NULL,
    open        DOUBLE,
    high        DOUBLE,
    low         DOUBLE,
    close       DOUBLE NOT NULL,
    adj_close   DOUBLE NOT NULL,
    volume      DOUBLE,
    source      VARCHAR,
    PRIMARY KEY (ticker, session)
);

CREATE TABLE documents (
    doc_id        VARCHAR PRIMARY KEY,        -- hash of normalised content + source
    kind          VARCHAR NOT NULL CHECK (kind IN ('news', 'filing')),
    source        VARCHAR NOT NULL,
    published_at  TIMESTAMPTZ NOT NULL,       -- when it became public: the point-in-time key
    ingested_at   TIMESTAMPTZ NOT NULL,
    tz_assumed    VARCHAR,                    -- zone assumed for a naive timestamp, else NULL
    tickers       VARCHAR[] NOT NULL,
    title         VARCHAR,
    body          VARCHAR NOT NULL,
    url           VARCHAR,
    form_type     VARCHAR,
    cik           VARCHAR,
    accession     VARCHAR,
    meta          JSON
);
CREATE INDEX documents_published_at ON documents (published_at);

CREATE TABLE filing_sections (
    section_id  VARCHAR PRIMARY KEY,          -- doc_id || ':' || item
    doc_id      VARCHAR NOT NULL,
    item        VARCHAR NOT NULL,
    title       VARCHAR,
    text        VARCHAR NOT NULL
);

CREATE SEQUENCE rejects_id;
CREATE TABLE rejects (
    reject_id   BIGINT PRIMARY KEY DEFAULT nextval('rejects_id'),
    file        VARCHAR NOT NULL,
    line        BIGINT,
    reason      VARCHAR NOT NULL,
    raw         VARCHAR,
    rejected_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Which files were ingested, so a batch job can skip files it has already seen.
CREATE TABLE ingested_files (
    file_hash   VARCHAR NOT NULL,
    kind        VARCHAR NOT NULL,
    path        VARCHAR NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL,
    n_read      BIGINT, n_inserted BIGINT, n_duplicate BIGINT, n_rejected BIGINT,
    PRIMARY KEY (file_hash, kind)
);
