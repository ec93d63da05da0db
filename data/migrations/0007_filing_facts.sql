-- Numbers filings state in inline XBRL: one row per (filing, concept, context, unit).
CREATE TABLE filing_facts (
    doc_id        VARCHAR NOT NULL,
    concept       VARCHAR NOT NULL,       -- e.g. us-gaap:RevenueFromContractWithCustomer...
    value         DOUBLE NOT NULL,        -- scaled and signed: dollars, not millions
    unit          VARCHAR,                -- USD, shares, USD/shares, pure, ...
    period_start  DATE,                   -- NULL for an instant (a balance)
    period_end    DATE,
    dimensional   BOOLEAN NOT NULL,       -- a breakdown (segment, product), not the total
    context       VARCHAR NOT NULL,
    decimals      VARCHAR,
    PRIMARY KEY (doc_id, concept, context, unit)
);
