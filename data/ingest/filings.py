"""SEC filings: EDGAR full-submission `.txt` (SGML header + documents) and `.htm(l)` primary
documents, inline XBRL included; text extracted from the HTML and split into items.

`published_at` is the EDGAR acceptance time when the file carries it (`<ACCEPTANCE-DATETIME>`,
Eastern time). Otherwise it is the filed date at the 16:00 New York close: a filing's exact
time is unknown, and placing it at the close means the first session that can act on it is the
next one, never the day it may have been filed after the bell.

Item codes: 10-K items as printed (`1`, `1A`, `7`, `7A`, `8`, ...); 10-Q items carry their
part (`I-2` is MD&A, `II-1A` risk factors) because the numbers repeat across parts; 8-K items
as printed (`2.02`, `9.01`; pre-2004 filings use single numbers such as `5`).
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, time, timezone
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from data.errors import DataError
from data.ingest.sections import MIN_COVERAGE, item_spans
from data.ingest.source import (
    IngestResult,
    Parsed,
    doc_id_sql,
    ingest_one,
    inserted_rows,
    now_utc,
    read_bytes,
    rejects_frame,
)
from data.ingest.xbrl import numeric_facts
from data.warehouse import Warehouse

NEW_YORK = ZoneInfo("America/New_York")
FORMS = ("10-K", "10-Q", "8-K")


@dataclass
class Filing:
    """One parsed filing: metadata, the primary document's text and its item sections."""

    form_type: str | None = None
    company: str | None = None
    cik: str | None = None
    ticker: str | None = None
    accession: str | None = None
    filed_date: str | None = None          # YYYY-MM-DD
    accepted_at: datetime | None = None    # UTC
    text: str = ""
    sections: list[tuple[str, str, str]] = field(default_factory=list)  # (item, title, text)
    facts: list[dict] = field(default_factory=list)  # inline XBRL numbers (data.ingest.xbrl)
    bad_facts: list[str] = field(default_factory=list)  # why each invalid fact was left out
    coverage: float = 0.0  # share of the body (from the first item heading) in the sections
    problem: str | None = None             # why the file cannot be trusted as a whole

    @property
    def published_at(self) -> datetime | None:
        if self.accepted_at is not None:
            return self.accepted_at
        if self.filed_date:
            day = datetime.strptime(self.filed_date, "%Y-%m-%d").date()
            return datetime.combine(day, time(16, 0), NEW_YORK).astimezone(timezone.utc)
        return None


# ---------------------------------------------------------------- HTML to text

_BLOCK = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "hr",
          "title", "section", "article", "pre", "blockquote", "ul", "ol", "center"}
_SKIP = {"script", "style", "head", "ix:header", "xbrl-hidden"}
_VOID = {"br", "hr", "img", "meta", "link", "input", "col", "area", "base", "wbr"}


class _TextExtractor(HTMLParser):
    """Visible text with line breaks at block boundaries; hidden XBRL facts collected aside."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.facts: dict[str, str] = {}
        self._skip_tag: str | None = None
        self._skip_depth = 0
        self._fact: str | None = None
        self._fact_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "ix:nonnumeric" and (attributes.get("name") or "").startswith("dei:"):
            self._fact, self._fact_text = attributes["name"][4:], []
        if self._skip_tag is not None:
            self._skip_depth += tag == self._skip_tag and tag not in _VOID
            return
        style = (attributes.get("style") or "").replace(" ", "").lower()
        if tag in _SKIP or ("display:none" in style and tag not in _VOID):
            self._skip_tag, self._skip_depth = tag, 1
            return
        if tag in _BLOCK:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "ix:nonnumeric" and self._fact:
            self.facts.setdefault(self._fact, " ".join("".join(self._fact_text).split()))
            self._fact = None
        if self._skip_tag is not None:
            if tag == self._skip_tag:
                self._skip_depth -= 1
                if self._skip_depth == 0:
                    self._skip_tag = None
            return
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._fact is not None:
            self._fact_text.append(data)
        if self._skip_tag is None:
            self.parts.append(data)


def html_to_text(html: str) -> tuple[str, dict[str, str]]:
    """(visible text with one block per line, dei facts such as DocumentType and CIK)."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts).replace("\xa0", " ").replace("\u200b", "")
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line), parser.facts


def looks_like_html(text: str) -> bool:
    return bool(re.search(r"<(html|body|div|p|table|font)\b", text[:20000], re.I))


# ---------------------------------------------------------------- SGML submissions

_HEADER_FIELDS = {
    "ACCESSION NUMBER": "accession", "CONFORMED SUBMISSION TYPE": "form_type",
    "FILED AS OF DATE": "filed_date", "COMPANY CONFORMED NAME": "company",
    "CENTRAL INDEX KEY": "cik",
}


def parse_sgml_header(text: str) -> dict[str, str]:
    header = text.split("</SEC-HEADER>", 1)[0]
    found: dict[str, str] = {}
    for line in header.splitlines():
        key, _, value = line.strip().partition(":")
        name = _HEADER_FIELDS.get(key.strip())
        if name and value.strip() and name not in found:
            found[name] = value.strip()
    accepted = re.search(r"<ACCEPTANCE-DATETIME>\s*(\d{14})", header)
    if accepted:
        found["accepted"] = accepted.group(1)
    return found


def primary_document(text: str, form_type: str | None) -> str:
    """The body of the `<DOCUMENT>` whose `<TYPE>` is the form itself (else the first)."""
    documents = re.findall(r"<DOCUMENT>(.*?)</DOCUMENT>", text, re.S)
    if not documents:
        return text
    for doc in documents:
        kind = re.search(r"<TYPE>([^\n<]+)", doc)
        if kind and form_type and kind.group(1).strip().upper() == form_type.upper():
            chosen = doc
            break
    else:
        chosen = documents[0]
    body = re.search(r"<TEXT>(.*?)</TEXT>", chosen, re.S)
    return body.group(1) if body else chosen


def parse_filing(content: bytes, meta: dict[str, str] | None = None) -> Filing:
    """Parse a submission `.txt` or an HTML primary document; `meta` fills what the file lacks
    (form_type, filed_date, cik, ticker, company, accession)."""
    text = content.decode("utf-8", errors="replace")
    filing = Filing()
    if "<SEC-HEADER>" in text or "<SEC-DOCUMENT>" in text:
        header = parse_sgml_header(text)
        filing.form_type = header.get("form_type")
        filing.company, filing.cik = header.get("company"), header.get("cik")
        filing.accession = header.get("accession")
        if header.get("filed_date"):
            d = header["filed_date"]
            filing.filed_date = f"{d[:4]}-{d[4:6]}-{d[6:8]}"
        if header.get("accepted"):
            try:
                stamp = datetime.strptime(header["accepted"], "%Y%m%d%H%M%S")
                filing.accepted_at = stamp.replace(tzinfo=NEW_YORK).astimezone(timezone.utc)
            except ValueError:
                filing.problem = f"bad ACCEPTANCE-DATETIME {header['accepted']!r}"
        filing.problem = filing.problem or _incomplete(text)
        text = primary_document(text, filing.form_type)
    facts: dict[str, str] = {}
    if looks_like_html(text):
        if re.search("ix:nonFraction", text, re.I):
            filing.facts, filing.bad_facts = numeric_facts(text)
        text, facts = html_to_text(text)
    else:
        text = "\n".join(" ".join(line.split()) for line in text.splitlines() if line.strip())
    filing.form_type = filing.form_type or facts.get("DocumentType")
    filing.cik = filing.cik or facts.get("EntityCentralIndexKey")
    filing.company = filing.company or facts.get("EntityRegistrantName")
    filing.ticker = facts.get("TradingSymbol")
    for key, value in (meta or {}).items():
        if value and getattr(filing, key, None) in (None, ""):
            setattr(filing, key, value)
    filing.text = text
    lines = text.split("\n")
    spans, filing.coverage = item_spans(lines, filing.form_type)
    filing.sections = [(item, title[:200], "\n".join(lines[start:stop]).strip())
                       for item, title, start, stop in spans]
    return filing


def coverage_warning(filing: Filing) -> str | None:
    """A reject row's reason when the sections leave much of the body out (the filing is
    still stored): that text is in no section, so it is never scored or compared."""
    if not filing.sections or filing.coverage >= MIN_COVERAGE:
        return None
    return (f"sections hold only {filing.coverage:.0%} of the text from the first item "
            f"heading on (under {MIN_COVERAGE:.0%}): the rest has no heading this parser "
            "knows, so it is in no section and is never scored or compared")


INDEX_COLUMNS = ("form_type", "filed_date", "cik", "ticker", "company", "accession")


def read_index(path: Path) -> dict[str, dict[str, str]]:
    """An index CSV (`file`, and any of form_type, filed_date, cik, ticker, company, accession)
    keyed by file name; a file that is not such a CSV is a DataError that says so."""
    try:
        text = read_bytes(path).decode("utf-8")
        rows = csv.DictReader(io.StringIO(text))
        columns = [c.strip() for c in rows.fieldnames or []]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"index {path} is not a UTF-8 CSV ({exc}); give a CSV with a header "
                        f"row: file,{','.join(INDEX_COLUMNS)}") from None
    if "file" not in columns or not set(columns) & set(INDEX_COLUMNS):
        raise DataError(f"index {path} has the columns {columns[:8]}, not `file` and any of "
                        f"{', '.join(INDEX_COLUMNS)}; give a CSV with a header row such as "
                        "file,form_type,filed_date,ticker")
    return {row["file"]: {k: row.get(k) or "" for k in INDEX_COLUMNS} for row in rows
            if row.get("file")}


def ingest_filings(wh: Warehouse, path: str | Path, meta: dict[str, str] | None = None,
                   max_bytes: int | None = None, encoding: str | None = None) -> IngestResult:
    """Ingest one filing (a document plus its sections) in one transaction."""
    def parse(path: Path, content: bytes) -> Parsed:
        filing = parse_filing(content, meta)
        reason = _unusable(filing)
        warnings = [*filing.bad_facts, coverage_warning(filing)]  # the filing is still kept
        rejects = rejects_frame([(None, reason, filing.text[:500])] if reason else [
            (None, why, None) for why in warnings if why])
        return Parsed(filing, 0 if reason else 1, rejects, 1)

    def insert(con, filing: Filing) -> int:
        return inserted_rows(con, "documents", lambda: _insert_filing(con, filing, Path(path)))

    return ingest_one(wh, path, "filings", parse, insert, {"meta": meta}, max_bytes, encoding)


def _incomplete(text: str) -> str | None:
    """Why a submission looks cut short (None when it looks whole)."""
    # (The header's PUBLIC DOCUMENT COUNT is no check: whole EDGAR files differ from it.)
    if "<SEC-DOCUMENT>" in text and "</SEC-DOCUMENT>" not in text:
        return "truncated submission: no closing </SEC-DOCUMENT> tag"
    return None


def _unusable(filing: Filing) -> str | None:
    """Why a parsed filing cannot be stored (None when it can)."""
    if filing.problem:
        return filing.problem
    if filing.filed_date and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", filing.filed_date):
        return f"bad filed date {filing.filed_date!r}: give YYYY-MM-DD"
    try:
        filing.published_at  # noqa: B018  (parses the filed date)
    except ValueError:
        return f"bad filed date {filing.filed_date!r}: not a calendar date"
    if not filing.text.strip():
        return "no text in the document"
    if filing.form_type is None:
        return ("form type unknown; pass --form-type, or list the file by its name in an "
                "--index CSV (file,form_type,...)")
    if filing.published_at is None:
        return ("no acceptance time or filed date; pass --filed-date, or list the file by its "
                "name in an --index CSV (file,filed_date,...)")
    if not filing.sections:
        return f"no {filing.form_type} item headings found (is this a filing?)"
    return None


_FACTS = {"concept": pl.String, "value": pl.Float64, "unit": pl.String,
          "period_start": pl.String, "period_end": pl.String, "dimensional": pl.Boolean,
          "context": pl.String, "decimals": pl.String}


def _insert_filing(con, filing: Filing, path: Path) -> None:
    title = " ".join(x for x in (filing.company, filing.form_type, filing.filed_date) if x)
    source = "edgar"
    doc_id = con.execute(
        f"SELECT {doc_id_sql('?', '?', '?')}",
        [title, filing.text, source]).fetchone()[0]
    meta = {"file": path.name, "company": filing.company, "filed_date": filing.filed_date,
            "published_at_basis": "acceptance" if filing.accepted_at else "filed_date_close",
            "sections_coverage": round(filing.coverage, 4)}
    tickers = [filing.ticker.upper()] if filing.ticker else []
    con.execute(
        "INSERT INTO documents (doc_id, kind, source, published_at, ingested_at, tickers, title,"
        " body, form_type, cik, accession, meta) VALUES (?, 'filing', ?, ?, ?, ?, ?, ?, ?, ?, ?,"
        " ?) ON CONFLICT DO NOTHING",
        [doc_id, source, filing.published_at, now_utc(), tickers, title, filing.text,
         filing.form_type, filing.cik, filing.accession or None, json.dumps(meta)])
    for item, item_title, text in filing.sections:
        con.execute("INSERT INTO filing_sections VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [f"{doc_id}:{item}", doc_id, item, item_title, text])
    if filing.facts:  # one insert of a frame: DuckDB's executemany goes row by row
        facts = pl.DataFrame(filing.facts, schema=_FACTS).with_columns(doc_id=pl.lit(doc_id))
        con.register("_facts_in", facts.to_arrow())
        con.execute("INSERT INTO filing_facts BY NAME SELECT * FROM _facts_in "
                    "ON CONFLICT DO NOTHING")
        con.unregister("_facts_in")
