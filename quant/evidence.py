"""The passages behind a run's strongest filing signals: what a report shows so a reader can
see which sentences moved a section's signal, not only its number."""

from __future__ import annotations

from datetime import date

from data.warehouse import Warehouse
from quant.pipeline import SignalSet

_STRONGEST = """
WITH strongest AS (
    SELECT doc_id, section, ticker, published_at, sentiment, confidence
    FROM signals
    WHERE section != '' AND status = 'ok' AND model_fingerprint = $fp
      AND prompt_version = $pv AND mode = $mode
      AND CAST(published_at AS DATE) BETWEEN $start AND $end
    ORDER BY abs(sentiment) * confidence DESC, doc_id, section, ticker
    LIMIT $limit
)
SELECT st.ticker, CAST(st.published_at AS DATE) AS published, st.section,
       round(st.sentiment, 3) AS section_sentiment, p.start_char, p.end_char,
       round(p.sentiment, 3) AS passage_sentiment,
       substr(f.text, p.start_char + 1, least(p.end_char - p.start_char, 400)) AS passage
FROM strongest st
JOIN signal_passages p USING (doc_id, section, ticker)
JOIN filing_sections f ON f.doc_id = st.doc_id AND f.item = st.section
WHERE p.model_fingerprint = $fp AND p.prompt_version = $pv AND p.mode = $mode
  AND p.status = 'ok'
QUALIFY row_number() OVER (PARTITION BY st.doc_id, st.section, st.ticker
                           ORDER BY p.sentiment * sign(st.sentiment) DESC, p.passage) = 1
ORDER BY abs(st.sentiment) * st.confidence DESC
"""


def filing_evidence(wh: Warehouse, which: SignalSet, start: date, end: date,
                    limit: int = 5) -> list[dict]:
    """The `limit` strongest filing-section signals of `which` published in start .. end
    (by |tone| x confidence), each with the passage that pulled hardest its way."""
    rows = wh.con.execute(_STRONGEST, {
        "fp": which.model_fingerprint, "pv": which.prompt_version, "mode": which.mode,
        "start": start, "end": end, "limit": limit}).pl()
    return rows.with_columns(rows["published"].cast(str)).to_dicts()
