-- How each filing section changed since the same company's previous filing of the same form
-- ("Lazy Prices", Cohen, Malloy and Nguyen 2020): similarities and the sentences added or
-- removed. Derived data: `data.filing_changes` recomputes a company's rows when it files.
CREATE TABLE filing_changes (
    doc_id           VARCHAR NOT NULL,
    item             VARCHAR NOT NULL,
    previous_doc_id  VARCHAR,              -- NULL: no earlier filing of this form (or item)
    cosine           DOUBLE,               -- of word-count vectors, 1 = the same words
    jaccard          DOUBLE,               -- of the sets of words
    sentences        INTEGER NOT NULL,
    added            INTEGER,              -- sentences not in the previous section
    removed          INTEGER,              -- the previous section's sentences now gone
    added_text       JSON,                 -- the first added and removed sentences
    removed_text     JSON,
    PRIMARY KEY (doc_id, item)
);
