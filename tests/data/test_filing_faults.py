"""Filings that lie or break: a bad fact is one reject and the rest of the filing is kept, one
bad file never blocks the files after it, and what ingest derives after its commit (passages,
the search index, change features) is completed by the next ingest whatever stopped it."""

import pytest

from data.ingest import ingest_files
from data.search import search

CONTEXTS = ('<xbrli:context id="fy"><xbrli:period><xbrli:startDate>2023-10-01</xbrli:startDate>'
            '<xbrli:endDate>2024-09-28</xbrli:endDate></xbrli:period></xbrli:context>'
            '<xbrli:context id="bad"><xbrli:period><xbrli:startDate>2024-13-45'
            '</xbrli:startDate><xbrli:endDate>2024-09-28</xbrli:endDate></xbrli:period>'
            '</xbrli:context><xbrli:unit id="usd"><xbrli:measure>iso4217:USD</xbrli:measure>'
            '</xbrli:unit>')
REVENUE = ('<ix:nonFraction name="us-gaap:Revenues" contextRef="fy" unitRef="usd" scale="6">'
           '24,125</ix:nonFraction>')


def _filing(facts: str, body: str = "Revenue rose on strong demand.") -> str:
    return (f"<html><body><div style='display:none'>{CONTEXTS}</div>"
            f"<p>Item 2.02 Results of Operations</p><p>{body} {facts}</p>"
            "<p>Item 9.01 Exhibits</p><p>99.1</p></body></html>")


def _facts(wh) -> dict:
    return dict(wh.con.execute("SELECT concept, value FROM filing_facts").fetchall())


def _rejects(wh) -> list[str]:
    return [r for (r,) in wh.con.execute("SELECT reason FROM rejects ORDER BY reason").fetchall()]


@pytest.mark.parametrize("bad, reason", [
    # Unclosed: its digits must never run into the next fact's.
    ('<ix:nonFraction name="us-gaap:NetIncomeLoss" contextRef="fy" unitRef="usd" scale="6">'
     '2,502', "its ix:nonFraction tag is never closed"),
    ('<ix:nonFraction name="us-gaap:NetIncomeLoss" contextRef="fy" unitRef="usd" scale="x">'
     '2,502</ix:nonFraction>', "scale 'x' is not a power of ten"),
    ('<ix:nonFraction name="us-gaap:NetIncomeLoss" contextRef="fy" unitRef="usd" scale="99">'
     '2,502</ix:nonFraction>', "scale '99' is not a power of ten"),
    ('<ix:nonFraction name="us-gaap:NetIncomeLoss" contextRef="bad" unitRef="usd">'
     '2,502</ix:nonFraction>', "has a date that is not a calendar date"),
    ('<ix:nonFraction name="us-gaap:NetIncomeLoss" contextRef="fy" unitRef="eur">'
     '2,502</ix:nonFraction>', "unit 'eur' is not declared"),
    ('<ix:nonFraction name="us-gaap:NetIncomeLoss" contextRef="fy" unitRef="usd" sign="+">'
     '2,502</ix:nonFraction>', "sign '+' is neither absent nor '-'"),
    ('<ix:nonFraction name="us-gaap:NetIncomeLoss" contextRef="fy" unitRef="usd">'
     '2.502.1</ix:nonFraction>', "no number in"),
])
def test_a_bad_fact_is_a_reject_and_the_rest_of_the_filing_is_kept(wh, tmp_path, bad, reason):
    path = tmp_path / "8k.html"
    path.write_text(_filing(bad + REVENUE))
    result = ingest_files(wh, "filings", [path], form_type="8-K", filed_date="2024-11-01",
                          ticker="AAA")[0]
    assert result.inserted == 1 and result.rejected == 1
    assert _facts(wh) == {"us-gaap:Revenues": 24_125e6}
    [why] = _rejects(wh)
    assert why.startswith("XBRL fact us-gaap:NetIncomeLoss:") and reason in why


def test_a_file_that_breaks_the_parser_never_blocks_the_files_after_it(wh, tmp_path, monkeypatch):
    import data.ingest.filings as filings

    parse = filings.parse_filing

    def breaks_on_first(content, meta=None):
        if b"BREAK" in content:
            raise ValueError("an input nobody foresaw")
        return parse(content, meta)

    monkeypatch.setattr(filings, "parse_filing", breaks_on_first)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.html").write_text(_filing("", "BREAK"))
    (inbox / "b.html").write_text(_filing(REVENUE))
    first, second = ingest_files(wh, "filings", [inbox], form_type="8-K",
                                 filed_date="2024-11-01", ticker="AAA")
    assert first.rejected == 1 and "ValueError: an input nobody foresaw" in _rejects(wh)[0]
    assert second.inserted == 1 and _facts(wh) == {"us-gaap:Revenues": 24_125e6}


def test_derived_tables_stopped_after_the_commit_are_completed_by_the_next_ingest(
        wh, tmp_path, monkeypatch):
    import data.ingest.batch as batch

    def killed(wh):  # the process died after the documents' commit
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "complete_derived", killed)
    path = tmp_path / "8k.html"
    path.write_text(_filing(REVENUE, "Quarterly revenue rose on strong widget demand."))
    with pytest.raises(KeyboardInterrupt):
        ingest_files(wh, "filings", [path], form_type="8-K", filed_date="2024-11-01",
                     ticker="AAA")
    assert wh.scalar("SELECT count(*) FROM search_passages") == 0
    monkeypatch.undo()
    prices = tmp_path / "p.csv"  # any ingest completes it, even of another kind
    prices.write_text("ticker,date,close\nAAA,2024-11-01,10\n")
    ingest_files(wh, "prices", [prices])
    assert ingest_files(wh, "filings", [path], form_type="8-K", filed_date="2024-11-01",
                        ticker="AAA")[0].skipped_file
    assert search(wh, "widget")["title"].to_list() == ["8-K 2024-11-01 - Item 2.02"]
    sections = wh.scalar("SELECT count(*) FROM filing_sections")
    assert wh.scalar("SELECT count(*) FROM filing_changes") == sections == 2


def test_a_10_mb_single_line_news_item_is_cut_linearly_and_found(wh, tmp_path):
    import json
    import resource

    words = ["revenue", "growth", "shares", "rose", "market", "quarter", "profit"]
    body = " ".join(words[i % 7] for i in range(1_500_000)) + " needle"
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps({"published_at": "2012-03-01T14:00:00Z", "tickers": "AAA",
                                "title": "Big", "body": body}) + "\n")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert ingest_files(wh, "news", [path])[0].inserted == 1
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 1024, f"peak memory grew by {grown_mb:.0f} MB"
    assert search(wh, "needle")["title"].to_list() == ["Big"]
    assert wh.scalar("SELECT sum(length(text)) FROM search_passages") >= len(body)


def _body(words: int, topic: str) -> list[str]:
    return [f"{topic} sentence number {i} says something about the business." for i in
            range(words)]


def _ten_k(body_order: list[str], page_headers: bool = False) -> list[str]:
    contents = ["TABLE OF CONTENTS", "PART I"] + [f"Item {i}. Title {i}" for i in
                                                  ["1", "1A", "2", "7", "7A", "8", "15"]]
    lines = contents + ["Forward-looking statements: " + "cover text " * 60]
    for item in body_order:
        lines.append(f"Item {item}. Title {item}")
        for start in range(0, 40, 10):
            if page_headers and start:
                lines.append(f"ITEM {item}. TITLE {item}")  # a running page header
            lines += _body(10, f"item-{item}")
    return lines


@pytest.mark.parametrize("order", [["1", "1A", "2", "7", "7A", "8", "15"],
                                   ["1", "1A", "2", "8", "7", "7A", "15"],
                                   ["1", "1A", "2", "7A", "7", "8", "15"]])
@pytest.mark.parametrize("page_headers", [False, True])
def test_sections_are_found_in_the_body_whatever_its_order(order, page_headers):
    from data.ingest.sections import item_spans

    lines = _ten_k(order, page_headers)
    spans, share = item_spans(lines, "10-K")
    assert share > 0.95  # the cover text after the contents is in no item
    for item, _, start, stop in spans:
        text = "\n".join(lines[start:stop])
        assert text.count(f"item-{item} sentence") == 40, item  # the whole body, nothing else
        assert "item-" not in text.replace(f"item-{item} ", "")


def test_a_10q_body_without_part_lines_is_placed_by_its_titles():
    from data.ingest.sections import item_spans

    lines = (["PART I", "Item 1. Financial Statements", "Item 2. Management's Discussion",
              "PART II", "Item 1. Legal Proceedings", "Item 6. Exhibits",
              "Item 1. Financial Statements", *_body(30, "fs"),
              "Item 2. Management's Discussion and Analysis", *_body(30, "mda"),
              "Item 1. Legal Proceedings", *_body(5, "legal"), "Item 6. Exhibits", "31.1"])
    spans = {item: "\n".join(lines[a:b]) for item, _, a, b in item_spans(lines, "10-Q")[0]}
    assert spans.keys() == {"I-1", "I-2", "II-1", "II-6"}
    assert spans["I-2"].count("mda sentence") == 30 and "legal" not in spans["I-2"]


def test_a_filing_whose_sections_leave_text_out_is_kept_and_flagged(wh, tmp_path):
    from data.status import warehouse_status

    body = "".join(f"<p>{line}</p>" for line in _body(200, "unheaded"))
    path = tmp_path / "10k.html"
    path.write_text("<html><body><p>Item 1. Business</p><p>Item 2. Properties</p>"  # contents
                    f"{body}<p>Item 1. Business</p><p>We sell widgets.</p>"  # body unheaded
                    "<p>Item 2. Properties</p><p>An office.</p></body></html>")
    result = ingest_files(wh, "filings", [path], form_type="10-K", filed_date="2024-11-01",
                          ticker="AAA")[0]
    assert result.inserted == 1
    assert "sections hold only" in _rejects(wh)[0]
    [thin] = warehouse_status(wh)["filings_with_thin_sections"]
    assert thin["coverage"] < 0.8
