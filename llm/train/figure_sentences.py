"""Formal-register training sentences derived from the figures filings report.

Press releases and reports state results as comparisons ("Operating profit rose to $13.1
million from $8.7 million"), a register the labelled posts and headlines rarely use. A
filing's inline XBRL holds each figure for its period and for the same period a year before,
so every such pair gives a sentence whose label follows from the numbers alone:

- revenue, gross or operating profit, pre-tax profit, net income, earnings per share or
  operating cash flow that rose is bullish, one that fell is bearish;
- a loss that narrowed, or turned into a profit, is bullish; one that widened, or a profit that
  turned into a loss, is bearish;
- a figure stated without a comparison is neutral (as annotators of this register label it).

Changes under `MIN_CHANGE` are left out: a reader could call them either way. Only figures
without dimensions (the company's total, not a segment's) are used. The wording varies over a
few templates of the register, with amounts written as reports write them.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from data.ingest.batch import expand_paths
from data.ingest.filings import parse_filing
from data.ingest.source import read_bytes
from llm.errors import ModelError

MIN_CHANGE = 0.05   # relative change below which a comparison is not labelled

# XBRL concept -> the names reports give the figure (each sentence picks one).
FIGURES: dict[str, tuple[str, ...]] = {
    "us-gaap:Revenues": ("revenue", "net sales", "sales", "total revenue"),
    "us-gaap:RevenueFromContractWithCustomerExcludingAssessedTax":
        ("revenue", "net sales", "net revenue"),
    "us-gaap:SalesRevenueNet": ("net sales", "sales"),
    "us-gaap:GrossProfit": ("gross profit", "gross margin"),
    "us-gaap:OperatingIncomeLoss": ("operating profit", "operating income"),
    "us-gaap:IncomeLossFromContinuingOperationsBeforeIncomeTaxesExtraordinaryItems"
    "NoncontrollingInterest": ("profit before taxes", "pre-tax profit", "pretax income"),
    "us-gaap:NetIncomeLoss": ("net income", "net profit"),
    "us-gaap:ProfitLoss": ("net profit", "profit"),
    "us-gaap:EarningsPerShareBasic": ("earnings per share", "basic EPS"),
    "us-gaap:EarningsPerShareDiluted": ("diluted earnings per share", "diluted EPS"),
    "us-gaap:NetCashProvidedByUsedInOperatingActivities":
        ("cash flow from operations", "operating cash flow", "net cash from operating activities"),
}
_LOSS_NAMES = {"us-gaap:OperatingIncomeLoss": "operating loss",
               "us-gaap:NetIncomeLoss": "net loss", "us-gaap:ProfitLoss": "net loss",
               "us-gaap:IncomeLossFromContinuingOperationsBeforeIncomeTaxesExtraordinaryItems"
               "NoncontrollingInterest": "pre-tax loss"}

_UP = ("rose", "increased", "grew", "climbed", "went up")
_DOWN = ("fell", "decreased", "declined", "dropped", "went down")
_CHANGED = (
    "{subject} {verb} to {now} from {before}.",
    "{subject} {verb} by {pct} to {now}, compared with {before} {ago}.",
    "In {period}, {subject} {verb} to {now} ({before} {ago}).",
    "{subject} {verb} {pct} year on year, to {now}.",
    "{Company} said its {figure} {verb} to {now} in {period}, from {before} {ago}.",
    "{subject} totalled {now}, {direction} from {before} {ago}.",
    "{subject} was {now}, compared to {before} {ago}, {change} of {pct}.",
    "{subject} for {period} was {direction} {pct} at {now}.",
)
_NEUTRAL = (
    "{subject} was {now} in {period}.",
    "{subject} for {period} totalled {now}.",
    "{Company} reported {figure} of {now} for {period}.",
    "In {period}, {subject} amounted to {now}.",
)


_PERIODS = {91: ("the quarter", "the three-month period", "the reporting period"),
            182: ("the first half", "the six-month period"),
            273: ("the nine-month period", "the first nine months"),
            364: ("the year", "the financial year")}


@dataclass(frozen=True)
class Figure:
    """One reported figure: a concept's value over a period."""

    concept: str
    value: float
    unit: str
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days


def figures(facts: pl.DataFrame) -> list[Figure]:
    """The filing's facts this module reads: total (undimensioned) duration figures of the
    concepts in `FIGURES`, one per concept and period."""
    if facts.is_empty():
        return []
    rows = (facts.filter(pl.col("concept").is_in(list(FIGURES)) & ~pl.col("dimensional")
                         & pl.col("period_start").is_not_null())
            .unique(["concept", "period_start", "period_end"], keep="first", maintain_order=True))
    return [Figure(r["concept"], float(r["value"]), r["unit"],
                   date.fromisoformat(r["period_start"]), date.fromisoformat(r["period_end"]))
            for r in rows.iter_rows(named=True)]


def year_on_year(found: list[Figure]) -> list[tuple[Figure, Figure]]:
    """(this period, the same period a year before) for each figure that has both: the same
    concept and unit, periods of the same length (within 10 days) ending 350-380 days apart."""
    pairs = []
    for now in found:
        for before in found:
            if (before.concept == now.concept and before.unit == now.unit
                    and abs(before.days - now.days) <= 10
                    and 350 <= (now.end - before.end).days <= 380):
                pairs.append((now, before))
    return pairs


def comparison_label(now: float, before: float) -> str | None:
    """bullish / bearish for a change the numbers make plain, None for one too small to call
    (or a figure of zero)."""
    if before == 0 or now == 0:
        return None
    if abs(now - before) / abs(before) < MIN_CHANGE:
        return None
    return "bullish" if now > before else "bearish"


def sentences(facts: pl.DataFrame, company: str, ticker: str, seed: int = 0) -> list[dict]:
    """Labelled sentences from one filing's facts (`data.ingest.xbrl.numeric_facts` rows):
    `text`, `label`, `entity` (the ticker, or "" for half of them: scoring reads documents
    with and without one), `concept`."""
    rng = random.Random(f"{seed}-{ticker}-{company}")
    found = figures(facts)
    pairs, rows = year_on_year(found), []
    for now, before in pairs:
        label = comparison_label(now.value, before.value)
        if label is not None:
            rows.append(_row(_comparison(rng, now, before, company), label, now.concept,
                             ticker, rng))
    compared = {(now.concept, now.end) for now, _ in pairs}
    for figure in found:  # figures stated alone: one neutral sentence per concept and period
        if (figure.concept, figure.end) in compared and figure.value > 0:
            rows.append(_row(_statement(rng, figure, company), "neutral", figure.concept,
                             ticker, rng))
    return rows


def _row(text: str, label: str, concept: str, ticker: str, rng: random.Random) -> dict:
    return {"text": text, "label": label, "entity": ticker if rng.random() < 0.5 else "",
            "concept": concept}


def _comparison(rng: random.Random, now: Figure, before: Figure, company: str) -> str:
    if now.value < 0 or before.value < 0:
        return _loss_comparison(rng, now, before, company)
    words, money = _words(rng, now, company), _Money(rng, now.unit, now.value, before.value)
    rise = now.value > before.value
    pct = abs(now.value - before.value) / abs(before.value)
    return _capital(rng.choice(_CHANGED).format(
        verb=rng.choice(_UP if rise else _DOWN), now=money(now.value), before=money(before.value),
        pct=f"{pct:.0%}", direction="up" if rise else "down",
        change="an increase" if rise else "a decrease", **words))


def _loss_comparison(rng: random.Random, now: Figure, before: Figure, company: str) -> str:
    words, money = _words(rng, now, company), _Money(rng, now.unit, now.value, before.value)
    loss = _LOSS_NAMES.get(now.concept, "loss")
    if now.value < 0 and before.value < 0:
        verb = "narrowed" if abs(now.value) < abs(before.value) else "widened"
        return _capital(f"{words['Owner']} {loss} {verb} to {money(-now.value)} "
                        f"from {money(-before.value)} {words['ago']}.")
    if now.value > 0:  # a loss a year ago, a profit now
        return _capital(f"{words['Company']} swung to {words['figure']} of {money(now.value)} "
                        f"from a {loss} of {money(-before.value)} {words['ago']}.")
    return _capital(f"{words['Company']} posted a {loss} of {money(-now.value)} in "
                    f"{words['period']}, against {words['figure']} of {money(before.value)} "
                    f"{words['ago']}.")


def _statement(rng: random.Random, figure: Figure, company: str) -> str:
    money = _Money(rng, figure.unit, figure.value)
    return _capital(rng.choice(_NEUTRAL).format(now=money(figure.value),
                                                **_words(rng, figure, company)))


def _words(rng: random.Random, figure: Figure, company: str) -> dict[str, str]:
    name = rng.choice(FIGURES[figure.concept])
    owner = rng.choice([f"{company}'s", "the company's", "the group's"])
    period = rng.choice(_PERIODS[min(_PERIODS, key=lambda days: abs(days - figure.days))])
    if figure.days > 330:
        period = rng.choice([period, f"fiscal {figure.end.year}", f"{figure.end.year}"])
    return {"figure": name, "subject": f"{owner} {name}", "Owner": owner,
            "Company": rng.choice([company, "The company", "The group"]), "period": period,
            "ago": rng.choice(["a year earlier", "a year ago", "in the corresponding period"])}


class _Money:
    """How one sentence writes its amounts: $6.11, $391.0 billion, USD 13.1 mn, $1,204
    million; every amount of a sentence in one style, at the scale of the smallest."""

    def __init__(self, rng: random.Random, unit: str, *values: float) -> None:
        self.per_share = unit.endswith("/shares")
        self.currency = rng.choice(["$", "USD "])
        self.suffix = rng.choice(["", " per share"])
        small = min(abs(v) for v in values)
        self.scale, self.name = ((1e9, rng.choice(["billion", "bn"]))
                                 if small >= 1e9 and rng.random() < 0.7
                                 else (1e6, rng.choice(["million", "mn", "mln"])))

    def __call__(self, value: float) -> str:
        if self.per_share:
            return f"{self.currency}{value:.2f}{self.suffix}"
        number = value / self.scale
        return f"{self.currency}{number:,.0f} {self.name}" if number >= 1000 else \
            f"{self.currency}{number:.1f} {self.name}"


def _capital(text: str) -> str:
    return text[0].upper() + text[1:]


def from_filings(paths: list[Path], seed: int = 0) -> tuple[pl.DataFrame, dict[str, str]]:
    """Sentences from every filing among `paths` (files or folders; `.gz` read transparently)
    that carries inline XBRL, `file` saying which filing each came from; and the files that
    gave none, with why."""
    files, skipped = expand_paths(paths)   # as ingest reads folders: hidden files, the
    rows, without = [], {str(path): why for path, why in skipped}   # index, outside links
    for path in files:
        try:
            filing = parse_filing(read_bytes(path))
        except Exception as exc:  # one unreadable file never stops the others
            without[str(path)] = f"not read: {exc}"
            continue
        if not filing.facts:
            without[str(path)] = "no inline XBRL figures"
            continue
        company = _short_name(filing.company or filing.ticker or "The company")
        found = sentences(pl.DataFrame(filing.facts), company, filing.ticker or "", seed)
        rows += [{**row, "file": path.name} for row in found]
        if not found:
            without[str(path)] = "no figure with the same period a year before"
    if not rows:
        raise ModelError(f"no filing among {[str(p) for p in paths]} has figures to compare "
                         f"year on year: {without}")
    return pl.DataFrame(rows), without


def hold_out(frame: pl.DataFrame, one_in: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(kept, held out): one filing in `one_in` held out whole, chosen by a hash of its file
    name, so a check on the held-out rows reads filings the training never saw."""
    if one_in < 2:
        raise ModelError(f"--hold-out-one-in must be at least 2, not {one_in}")
    held = pl.col("file").map_elements(
        lambda name: int(hashlib.md5(name.encode()).hexdigest(), 16) % one_in == 0,
        return_dtype=pl.Boolean)
    return frame.filter(~held), frame.filter(held)


def _short_name(company: str) -> str:
    """`Apple Inc.` -> `Apple`, as reports name a company after the first mention."""
    words = company.replace(",", "").split()
    if len(words) > 2 and words[0].lower() == "the":
        words = words[1:]
    suffixes = {"inc", "inc.", "corp", "corp.", "corporation", "co", "co.", "company", "ltd",
                "plc", "incorporated", "n.v.", "s.a."}
    while len(words) > 1 and words[-1].lower() in suffixes:
        words.pop()
    return " ".join(words).title() if company.isupper() else " ".join(words)
