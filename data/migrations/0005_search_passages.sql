-- What full-text search indexes: news bodies and filing sections cut into passages of bounded
-- size (the fts extension's index build grows much faster than linearly with one text's length,
-- so a 50 MB filing indexed whole would take minutes). Derived data: `data.search` fills it
-- for documents that have no passages yet, then rebuilds the index, in one transaction.
CREATE TABLE search_passages (
    passage_id  VARCHAR PRIMARY KEY,          -- doc_id || '|' || item || '|' || passage
    doc_id      VARCHAR NOT NULL,
    item        VARCHAR,                      -- the filing item; NULL for news
    title       VARCHAR,                      -- on a text's first passage only
    text        VARCHAR NOT NULL
);
CREATE INDEX search_passages_doc ON search_passages (doc_id);
