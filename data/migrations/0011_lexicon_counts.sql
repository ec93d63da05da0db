-- The Loughran-McDonald dictionary's reading of each unit of text the model reads: a news
-- document (section '') or a filing section (its item). Shares of the unit's words in each
-- list, and tone = (positive - negative) / (positive + negative), 0 with neither. Derived
-- data: `quant.lexicon_store` completes it for units that have none.
CREATE TABLE lexicon_counts (
    doc_id       VARCHAR NOT NULL,
    section      VARCHAR NOT NULL,
    words        INTEGER NOT NULL,
    positive     DOUBLE NOT NULL,
    negative     DOUBLE NOT NULL,
    uncertainty  DOUBLE NOT NULL,
    litigious    DOUBLE NOT NULL,
    tone         DOUBLE NOT NULL,
    PRIMARY KEY (doc_id, section)
);
