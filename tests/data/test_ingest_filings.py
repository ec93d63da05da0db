from datetime import date, datetime, timezone

import pytest

from data.ingest import ingest_files, ingest_filings, parse_filing
from data.ingest.filings import read_index
from data.ingest.source import read_bytes
from tests.conftest import dataset

# Part II Item 1A (risk factors) is not in every 10-Q (IBM's of 2025-07-24 has none found).
EXPECTED_ITEMS = {"10-K": {"1", "1A", "7", "7A", "8"}, "10-Q": {"I-1", "I-2"}}


def test_every_edgar_filing_parses_with_form_type_date_and_items():
    folder = dataset("edgar")
    index = read_index(folder / "index.csv")
    assert len(index) == len(list(folder.glob("*.gz"))) >= 16  # every filing is indexed
    for name, meta in index.items():
        filing = parse_filing(read_bytes(folder / name), meta)
        assert filing.form_type == meta["form_type"], name
        assert filing.sections, f"{name}: no sections"
        if meta["filed_date"]:
            assert filing.published_at.astimezone(timezone.utc).date() == date.fromisoformat(
                meta["filed_date"]), name
        codes = {item for item, _, _ in filing.sections}
        expected = EXPECTED_ITEMS.get(filing.form_type, set())
        if meta["ticker"] and filing.form_type in EXPECTED_ITEMS:  # the modern filings
            assert expected <= codes, f"{name}: {sorted(codes)}"
        if filing.form_type == "8-K":
            assert all("." in c or c.isdigit() for c in codes), codes


def test_sgml_header_gives_acceptance_time_in_utc():
    raw = read_bytes(dataset("edgar", "0001213900-25-032135.txt.gz"))
    filing = parse_filing(raw)
    assert (filing.form_type, filing.cik) == ("8-K", "0001173313")
    assert filing.accession == "0001213900-25-032135"
    # <ACCEPTANCE-DATETIME>20250415163025 is Eastern (EDT, UTC-4).
    assert filing.published_at == datetime(2025, 4, 15, 20, 30, 25, tzinfo=timezone.utc)
    assert [s[0] for s in filing.sections] == ["2.02", "4.02", "7.01", "9.01"]


def test_filing_without_acceptance_is_placed_at_the_close():
    filing = parse_filing(read_bytes(dataset("edgar", "0001011438-98-000429.txt.gz")))
    assert filing.published_at == datetime(1998, 12, 31, 21, 0, tzinfo=timezone.utc)


def test_ingesting_the_folder_with_its_index(wh):
    folder = dataset("edgar")
    results = ingest_files(wh, "filings", [folder])
    by_name = {r.file.rsplit("/", 1)[-1]: r for r in results}
    filings = len(read_index(folder / "index.csv"))
    assert sum(r.inserted for r in results) == filings - 2
    # The two 8-Ks with no recoverable filing date are rejected, not guessed.
    for name in ("Oracle.8-K.html.gz", "1800Flowers.8-K.html.gz"):
        assert by_name[name].rejected == 1 and "filed date" in next(iter(by_name[name].reasons))
    assert wh.scalar("SELECT count(*) FROM documents WHERE kind = 'filing'") == filings - 2
    assert wh.scalar("SELECT count(DISTINCT doc_id) FROM filing_sections") == filings - 2
    row = wh.con.execute("SELECT form_type, tickers, cik FROM documents "
                         "WHERE title LIKE 'Apple Inc. 10-K%'").fetchone()
    assert row == ("10-K", ["AAPL"], "0000320193")
    # Again: nothing changes.
    sections = wh.scalar("SELECT count(*) FROM filing_sections")
    ingest_files(wh, "filings", [folder])
    assert wh.scalar("SELECT count(*) FROM filing_sections") == sections


def test_html_with_no_items_is_rejected(wh, tmp_path):
    path = tmp_path / "page.html"
    path.write_text("<html><body><p>Just a web page about cats.</p></body></html>")
    result = ingest_filings(wh, path, meta={"form_type": "8-K", "filed_date": "2024-01-02"})
    assert result.rejected == 1 and "no 8-K item headings" in next(iter(result.reasons))
    assert wh.scalar("SELECT count(*) FROM documents") == 0


def test_unknown_form_type_is_rejected(wh, tmp_path):
    path = tmp_path / "x.htm"
    path.write_text("<html><body><p>Item 1. Business</p><p>text</p></body></html>")
    result = ingest_filings(wh, path, meta={"filed_date": "2024-01-02"})
    assert "form type unknown" in next(iter(result.reasons))


@pytest.mark.parametrize("query,item", [("cybersecurity incident", "1C"),
                                        ("risk factors supply chain", None)])
def test_search_finds_filing_sections(wh, query, item):
    from data.search import search

    ingest_files(wh, "filings", [dataset("edgar")])
    hits = search(wh, query, kind="filing", limit=5)
    assert hits.height > 0 and hits["score"].is_sorted(descending=True)
    if item:
        assert item in hits["item"].to_list()
    aapl = search(wh, query, ticker="aapl", limit=5)
    assert all("AAPL" in t for t in aapl["tickers"].to_list())


def test_xbrl_facts_of_a_real_10k_match_its_stated_figures(wh):
    edgar = dataset("edgar")
    ingest_files(wh, "filings", [edgar / "aapl-10-k-2024-11-01.html.gz"],
                 index=edgar / "index.csv")

    def fact(concept):
        return wh.scalar("SELECT value FROM filing_facts WHERE concept = ? AND NOT dimensional "
                         "AND period_start = DATE '2023-10-01' AND period_end = "
                         "DATE '2024-09-28'", [concept])

    # Apple's fiscal 2024: net sales $391,035 million, net income $93,736 million, $6.08 EPS.
    assert fact("us-gaap:RevenueFromContractWithCustomerExcludingAssessedTax") == 391_035e6
    assert fact("us-gaap:NetIncomeLoss") == 93_736e6
    assert fact("us-gaap:EarningsPerShareDiluted") == 6.08
    assert wh.scalar("SELECT unit FROM filing_facts WHERE concept = "
                     "'us-gaap:EarningsPerShareDiluted' LIMIT 1") == "USD/shares"


def test_xbrl_values_are_scaled_signed_and_dashes_are_zero():
    from data.ingest.xbrl import numeric_facts

    doc = ('<xbrli:context id="c"><xbrli:period><xbrli:instant>2024-06-30</xbrli:instant>'
           '</xbrli:period></xbrli:context><xbrli:unit id="u"><xbrli:measure>iso4217:USD'
           '</xbrli:measure></xbrli:unit>'
           '<ix:nonFraction name="a:Loss" contextRef="c" unitRef="u" scale="3" sign="-">'
           '<span>1,250</span></ix:nonFraction>'
           '<ix:nonFraction name="a:Nil" contextRef="c" unitRef="u" format="ixt:fixed-zero">'
           '—</ix:nonFraction>'
           '<ix:nonFraction name="a:Orphan" contextRef="missing" unitRef="u">5</ix:nonFraction>')
    found, rejects = numeric_facts(doc)
    facts = {f["concept"]: f for f in found}
    assert facts["a:Loss"]["value"] == -1_250_000 and facts["a:Loss"]["unit"] == "USD"
    assert facts["a:Loss"]["period_start"] is None and facts["a:Loss"]["period_end"] == "2024-06-30"
    assert facts["a:Nil"]["value"] == 0 and "a:Orphan" not in facts
    assert rejects == ["XBRL fact a:Orphan: context 'missing' is not declared"]
