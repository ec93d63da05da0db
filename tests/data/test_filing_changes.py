"""Change features against the previous filing, on an edited copy of a real 10-K."""

import gzip
import json

import pytest

from data.filing_changes import sentence_changes, similarity
from data.ingest import ingest_files
from tests.conftest import dataset

REMOVED = ("The Company&#8217;s operations are also subject to the risks of industrial "
           "accidents at its suppliers and contract manufacturers.")
NEW_RISK = ("The Company faces a new risk from zeppelin traffic over its campuses. ")


def test_similarity_and_sentence_changes_on_known_texts():
    assert similarity("Sales rose. Costs fell.", "Sales rose. Costs fell.") == (1.0, 1.0)
    cosine, jaccard = similarity("sales rose", "sales fell")
    assert cosine == pytest.approx(0.5) and jaccard == pytest.approx(1 / 3)
    added, removed, count = sentence_changes("Sales rose. Costs fell. New risk.",
                                             "Sales rose. Costs fell. Old risk.")
    assert (added, removed, count) == (["New risk."], ["Old risk."], 3)


def test_a_10k_against_its_edited_previous_filing(wh, tmp_path):
    real = gzip.open(dataset("edgar", "aapl-10-k-2024-11-01.html.gz")).read().decode()
    assert REMOVED in real
    # The previous year's filing: the paragraph not yet there, another risk in its place.
    previous = tmp_path / "aapl-10-k-2023.htm"
    previous.write_text(real.replace(REMOVED, NEW_RISK))
    current = tmp_path / "aapl-10-k-2024.htm"
    current.write_text(real)
    # Ingested newest first: the older one, arriving later, is still placed before it.
    ingest_files(wh, "filings", [current], form_type="10-K", filed_date="2024-11-01")
    ingest_files(wh, "filings", [previous], form_type="10-K", filed_date="2023-11-03")
    rows = wh.query("SELECT c.*, d.published_at FROM filing_changes c JOIN documents d "
                    "USING (doc_id) ORDER BY d.published_at, item")
    first, second = (rows.filter(rows["published_at"] == p) for p in
                     sorted(set(rows["published_at"])))
    assert first["previous_doc_id"].is_null().all()  # nothing before the first one
    risks = second.filter(second["item"] == "1A").row(0, named=True)
    assert risks["previous_doc_id"] == first["doc_id"][0]
    assert risks["added"] == 1 and risks["removed"] == 1
    assert "industrial accidents" in json.loads(risks["added_text"])[0]
    assert "zeppelin" in json.loads(risks["removed_text"])[0]
    assert 0.99 < risks["cosine"] < 1.0 and risks["jaccard"] < 1.0
    unchanged = second.filter(second["item"] == "7").row(0, named=True)
    assert (unchanged["cosine"], unchanged["added"], unchanged["removed"]) == (
        pytest.approx(1.0), 0, 0)
