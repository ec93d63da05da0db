"""From documents to signals: which documents are scored, the signal rows with provenance,
filing passages, the `signals` table's one owner, Ray scoring, the reward stage on returns and
the StockNet benchmark."""
