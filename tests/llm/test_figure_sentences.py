"""Sentences derived from reported figures: the label follows from the numbers, the text states
the numbers, and nothing is derived from a change too small to call or from a segment."""

import re

import polars as pl
import pytest
from click.testing import CliRunner

from llm.errors import ModelError
from llm.train.figure_sentences import comparison_label, from_filings, hold_out, sentences
from quant.cli import cli

FY, PRIOR, OLDER = ("2023-10-01", "2024-09-28"), ("2022-09-25", "2023-09-30"), \
    ("2021-09-26", "2022-09-24")


def _fact(concept, value, period, unit="USD", dimensional=False):
    return {"concept": f"us-gaap:{concept}", "value": value, "unit": unit,
            "period_start": period[0], "period_end": period[1], "dimensional": dimensional,
            "context": "c", "decimals": "-6"}


def _rows(*facts):
    return sentences(pl.DataFrame(list(facts)), "Acme", "ACME")


def _only(rows, label):
    return [r for r in rows if r["label"] == label]


@pytest.mark.parametrize("concept, now, before, label", [
    ("Revenues", 120e6, 100e6, "bullish"),
    ("EarningsPerShareDiluted", 1.5, 2.0, "bearish"),
    ("NetIncomeLoss", -20e6, -50e6, "bullish"),     # a loss that narrowed
    ("NetIncomeLoss", -50e6, -20e6, "bearish"),     # one that widened
    ("OperatingIncomeLoss", 5e6, -8e6, "bullish"),  # a loss turned into a profit
    ("OperatingIncomeLoss", -8e6, 5e6, "bearish"),  # and back
])
def test_each_comparison_is_labelled_by_its_numbers(concept, now, before, label):
    unit = "USD/shares" if "PerShare" in concept else "USD"
    rows = _rows(_fact(concept, now, FY, unit), _fact(concept, before, PRIOR, unit))
    [compared] = [r for r in rows if r["label"] != "neutral"]
    assert compared["label"] == label and compared["concept"] == f"us-gaap:{concept}"
    assert compared["entity"] in ("ACME", "")
    stated = {float(x.replace(",", "")) for x in re.findall(r"\d[\d,]*\.?\d*", compared["text"])
              if not re.fullmatch(r"20\d\d", x)}
    # the sentence states the amount as reports write it (in millions here), and last year's
    # or the change
    scale = 1 if unit == "USD/shares" else 1e6
    assert round(abs(now) / scale, 1) in stated
    assert stated & {round(abs(before) / scale, 1), round(abs(now - before) / abs(before) * 100)}


def test_small_changes_zeros_segments_and_other_years_are_not_compared():
    assert comparison_label(103.0, 100.0) is None   # under 5%
    assert comparison_label(0.0, 100.0) is None
    rows = _rows(_fact("Revenues", 103e6, FY), _fact("Revenues", 100e6, PRIOR),
                 _fact("GrossProfit", 90e6, FY, dimensional=True),
                 _fact("GrossProfit", 50e6, PRIOR, dimensional=True),
                 _fact("NetIncomeLoss", 90e6, FY), _fact("NetIncomeLoss", 50e6, OLDER))
    assert not [r for r in rows if r["label"] != "neutral"]
    # a figure stated alone is neutral: one per figure that has last year's beside it
    assert len(_only(rows, "neutral")) == 1 and "103.0" in _only(rows, "neutral")[0]["text"]


def test_a_quarter_is_compared_with_the_same_quarter_a_year_before():
    q3, q2, q3_before = ("2024-07-01", "2024-09-28"), ("2024-04-01", "2024-06-29"), \
        ("2023-07-02", "2023-09-30")
    rows = _rows(_fact("Revenues", 150e6, q3), _fact("Revenues", 100e6, q2),
                 _fact("Revenues", 120e6, q3_before), _fact("Revenues", 900e6, FY))
    [compared] = [r for r in rows if r["label"] != "neutral"]
    assert compared["label"] == "bullish" and "150.0" in compared["text"]
    assert ("120.0" in compared["text"] or "25%" in compared["text"])
    assert "100.0" not in compared["text"] and "67%" not in compared["text"]


def _filing(facts: str) -> str:
    contexts = "".join(
        f'<xbrli:context id="{name}"><xbrli:period><xbrli:startDate>{start}</xbrli:startDate>'
        f"<xbrli:endDate>{end}</xbrli:endDate></xbrli:period></xbrli:context>"
        for name, (start, end) in (("fy", FY), ("prior", PRIOR)))
    return (f"<html><body><div style='display:none'>{contexts}<xbrli:unit id='usd'>"
            "<xbrli:measure>iso4217:USD</xbrli:measure></xbrli:unit></div>"
            f"<p>Item 7. Management's Discussion</p><p>Results. {facts}</p></body></html>")


def _revenue(context: str, value: str) -> str:
    return (f'<ix:nonFraction name="us-gaap:Revenues" contextRef="{context}" unitRef="usd" '
            f'scale="6">{value}</ix:nonFraction>')


def test_the_command_reads_filings_writes_the_file_and_names_what_gave_nothing(tmp_path):
    (tmp_path / "acme.html").write_text(_filing(_revenue("fy", "24,125") +
                                                _revenue("prior", "20,000")))
    (tmp_path / "plain.html").write_text("<html><body><p>No figures here.</p></body></html>")
    frame, without = from_filings([tmp_path])
    assert frame["label"].to_list().count("bullish") == 1
    assert set(frame["file"]) == {"acme.html"}
    assert without == {str(tmp_path / "plain.html"): "no inline XBRL figures"}
    out = tmp_path / "figures.parquet"
    result = CliRunner().invoke(cli, ["llm", "figure-sentences", str(tmp_path), "--out",
                                       str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert '"files_without": 1' in result.output
    assert pl.read_parquet(out).equals(frame)   # the same seed, the same sentences


def test_filings_without_figures_are_refused_and_nothing_is_written(tmp_path):
    (tmp_path / "plain.html").write_text("<html><body><p>No figures here.</p></body></html>")
    with pytest.raises(ModelError, match="no filing among"):
        from_filings([tmp_path])
    out = tmp_path / "figures.parquet"
    with pytest.raises(ModelError, match="no filing among"):
        CliRunner().invoke(cli, ["llm", "figure-sentences", str(tmp_path / "plain.html"),
                                 "--out", str(out)], catch_exceptions=False)
    assert not out.exists()


def test_filings_are_held_out_whole_and_the_split_is_stable(tmp_path):
    for n in range(8):
        (tmp_path / f"f{n}.html").write_text(_filing(_revenue("fy", f"{24 + n},125") +
                                                     _revenue("prior", "20,000")))
    frame, _ = from_filings([tmp_path])
    kept, held = hold_out(frame, 3)
    assert set(kept["file"]).isdisjoint(held["file"]) and held.height > 0
    assert sorted(kept["file"].to_list() + held["file"].to_list()) == sorted(frame["file"])
    assert hold_out(frame, 3)[1].equals(held)
    with pytest.raises(ModelError, match="at least 2"):
        hold_out(frame, 1)
    args = ["llm", "figure-sentences", str(tmp_path), "--out", str(tmp_path / "t.parquet")]
    result = CliRunner().invoke(cli, [*args, "--hold-out-one-in", "3"])
    assert result.exit_code != 0 and "go together" in result.output
    result = CliRunner().invoke(cli, [*args, "--hold-out-one-in", "3", "--hold-out-to",
                                      str(tmp_path / "h.parquet")], catch_exceptions=False)
    assert result.exit_code == 0
    assert pl.read_parquet(tmp_path / "h.parquet").equals(held)
    assert pl.read_parquet(tmp_path / "t.parquet").equals(kept)
