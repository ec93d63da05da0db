"""The `signals` table's one owner: every query that reads or writes it is here.

Which signal sets the warehouse holds and the latest of them; one set's signals for the panel;
the work a model has not scored yet; results written with their passages in one transaction;
the documents behind a session's book; whether anything before an open is still unscored; the
strongest filing signals with the passage that moved each; the last days' statuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import polars as pl

from data.errors import DataError
from data.text import document_text_sql, section_text_sql
from data.warehouse import Warehouse

KEYS = ("doc_id", "section", "ticker", "model_fingerprint", "prompt_version", "mode")


@dataclass(frozen=True)
class SignalSet:
    """Which signals: one model fingerprint, prompt version and mode."""

    model_fingerprint: str
    prompt_version: str
    mode: str
    model_id: str = ""

    def provenance(self) -> dict:
        return {"model_id": self.model_id, "fingerprint": self.model_fingerprint,
                "prompt_version": self.prompt_version, "mode": self.mode}


def available_signal_sets(wh: Warehouse) -> pl.DataFrame:
    return wh.query(
        "SELECT model_id, model_fingerprint, prompt_version, mode, count(*) AS rows, "
        "count(*) FILTER (WHERE status = 'ok') AS ok, max(created_at) AS latest "
        "FROM signals GROUP BY ALL ORDER BY latest DESC")


def choose_signal_set(wh: Warehouse, fingerprint: str | None = None,
                      prompt_version: str | None = None, mode: str | None = None) -> SignalSet:
    """The most recently written set matching the filters."""
    sets = available_signal_sets(wh)
    for column, value in (("model_fingerprint", fingerprint), ("prompt_version", prompt_version),
                          ("mode", mode)):
        if value is not None:
            sets = sets.filter(pl.col(column) == value)
    if sets.is_empty():
        raise DataError("no signals in the warehouse for that model/prompt/mode: run "
                        "`quant score` first")
    row = sets.row(0, named=True)
    return SignalSet(row["model_fingerprint"], row["prompt_version"], row["mode"],
                     row["model_id"])


SIGNALS_SCHEMA = {"doc_id": pl.String, "section": pl.String, "ticker": pl.String,
                  "published_at": pl.Datetime("us", "UTC"), "sentiment": pl.Float64,
                  "confidence": pl.Float64, "event_type": pl.String, "story": pl.String,
                  "lexicon_tone": pl.Float64, "lexicon_uncertainty": pl.Float64}


_NO_LEXICON = ("(SELECT NULL::VARCHAR AS doc_id, NULL::VARCHAR AS section, NULL::DOUBLE AS "
               "tone, NULL::DOUBLE AS uncertainty WHERE false)")


def load_signals(wh: Warehouse, which: SignalSet, since: date | None = None,
                 until: date | None = None) -> pl.DataFrame:
    """ok signals of one set, with the story key used for novelty, the head's label
    probabilities where the signal has them (score mode writes them into its rationale), and
    the Loughran-McDonald dictionary's tone and uncertainty of the same text
    (`quant.lexicon_store`; null where it has not been read yet, and in a warehouse opened
    read-only before a writer has added that table)."""
    lexicon = "lexicon_counts" if wh.scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'lexicon_counts'"
    ) else _NO_LEXICON
    return wh.con.execute(f"""
        SELECT s.doc_id, s.section, s.ticker, s.published_at, s.sentiment, s.confidence,
               s.event_type,
               TRY_CAST(regexp_extract(s.rationale, 'p_bullish=([0-9.]+)', 1) AS DOUBLE)
                   AS p_bullish,
               TRY_CAST(regexp_extract(s.rationale, 'p_bearish=([0-9.]+)', 1) AS DOUBLE)
                   AS p_bearish,
               left(regexp_replace(lower(coalesce(d.title, d.body)), '[^a-z0-9]+', ' ', 'g'),
                    120) AS story,
               lc.tone AS lexicon_tone, lc.uncertainty AS lexicon_uncertainty
        FROM signals s JOIN documents d USING (doc_id)
        LEFT JOIN {lexicon} lc ON lc.doc_id = s.doc_id AND lc.section = s.section
        WHERE s.status = 'ok' AND s.model_fingerprint = $fp AND s.prompt_version = $pv
          AND s.mode = $mode
          AND ($since IS NULL OR s.published_at >= $since::DATE)
          AND ($until IS NULL OR s.published_at < $until::DATE + INTERVAL 1 DAY)
    """, {"fp": which.model_fingerprint, "pv": which.prompt_version, "mode": which.mode,
          "since": since, "until": until}).pl()


_UNSCORED = """
WITH work AS (
    SELECT d.doc_id, '' AS section, t.ticker, d.published_at,
           {DOCUMENT_TEXT} AS text, 0 AS prefix
    FROM documents d, unnest(d.tickers) AS t(ticker)
    WHERE d.kind = 'news'
    UNION ALL
    SELECT d.doc_id, s.item AS section, t.ticker, d.published_at,
           {SECTION_TEXT} AS text,
           length(coalesce(s.title || '. ', '')) AS prefix  -- passage offsets are the text's
    FROM documents d JOIN filing_sections s USING (doc_id), unnest(d.tickers) AS t(ticker)
    WHERE d.kind = 'filing' AND list_contains($items, s.item)
)
SELECT w.* FROM work w
ANTI JOIN (SELECT doc_id, section, ticker FROM signals
           WHERE model_fingerprint = $fp AND prompt_version = $pv AND mode = $mode) s
    USING (doc_id, section, ticker)
WHERE ($since IS NULL OR w.published_at >= $since)
ORDER BY CASE WHEN $sample THEN hash(w.doc_id, w.ticker) END, w.published_at, w.doc_id,
         w.section, w.ticker
LIMIT $limit
""".replace("{DOCUMENT_TEXT}", document_text_sql("d.title", "d.body")).replace(
    "{SECTION_TEXT}", section_text_sql("s.title", "s.text"))


def unscored_work(wh: Warehouse, which: SignalSet, items: tuple[str, ...],
                  since: datetime | None = None, limit: int | None = None,
                  sample: bool = False) -> pl.DataFrame:
    """News items, and filing sections among `items`, per ticker, that `which` has no signal
    for: oldest first, or with `sample` a deterministic spread-out sample (ordered by a hash)
    so `limit` covers the whole period."""
    return wh.con.execute(_UNSCORED, {
        "items": list(items), "fp": which.model_fingerprint, "pv": which.prompt_version,
        "mode": which.mode, "since": since, "sample": sample,
        "limit": limit if limit is not None else 2**62}).pl()


def write_signals(wh: Warehouse, rows: pl.DataFrame) -> int:
    """Insert signal rows, and the passages of those read in passages, in one transaction;
    returns how many signals were new."""
    read = rows.select(*KEYS, "passages").explode("passages").drop_nulls("passages").unnest(
        "passages") if "passages" in rows.columns else None
    with wh.transaction() as con:
        before = con.execute("SELECT count(*) FROM signals").fetchone()[0]
        con.register("_signals_in", rows.drop("passages", strict=False).to_arrow())
        con.execute("INSERT INTO signals BY NAME SELECT * FROM _signals_in "
                    "ON CONFLICT DO NOTHING")
        con.unregister("_signals_in")
        if read is not None and read.height:
            con.register("_passages_in", read.to_arrow())
            con.execute("INSERT INTO signal_passages BY NAME SELECT * FROM _passages_in "
                        "ON CONFLICT DO NOTHING")
            con.unregister("_passages_in")
        return con.execute("SELECT count(*) FROM signals").fetchone()[0] - before


def documents_between(wh: Warehouse, which: SignalSet, since: datetime, until: datetime
                      ) -> pl.DataFrame:
    """ticker, documents: the doc_ids of `which`'s ok signals published in [since, until),
    oldest first."""
    empty = pl.DataFrame(schema={"ticker": pl.String, "documents": pl.List(pl.String)})
    return wh.con.execute("""
        SELECT ticker, list(doc_id ORDER BY published_at, doc_id) AS documents FROM signals
        WHERE status = 'ok' AND model_fingerprint = $fp AND prompt_version = $pv
          AND mode = $mode AND published_at >= $since AND published_at < $until
        GROUP BY ticker""", {"fp": which.model_fingerprint, "pv": which.prompt_version,
                             "mode": which.mode, "since": since, "until": until}
    ).pl().cast(empty.schema)


def unscored_before(wh: Warehouse, which: SignalSet, before: datetime,
                    tickers: list[str]) -> int:
    """How many documents about `tickers` published before `before` `which` has not read."""
    return wh.scalar("""
        SELECT count(*) FROM documents d WHERE d.published_at < $before
          AND list_has_any(d.tickers, $tickers)
          AND NOT EXISTS (SELECT 1 FROM signals s WHERE s.doc_id = d.doc_id
                          AND s.model_fingerprint = $fp AND s.prompt_version = $pv
                          AND s.mode = $mode)""", {
        "before": before, "tickers": tickers, "fp": which.model_fingerprint,
        "pv": which.prompt_version, "mode": which.mode})


def recent_statuses(wh: Warehouse, since: date, until: date) -> pl.DataFrame:
    """ticker, status, day of every signal published from `since` to `until`, any model."""
    return wh.con.execute("""
        SELECT ticker, status, published_at::DATE AS day FROM signals
        WHERE published_at::DATE BETWEEN $since AND $until""",
                          {"since": since, "until": until}).pl()


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
