"""Terminal tables never cut a value: numbers, ids and paths come out whole at any width."""

import re

import pytest
from rich.console import Console

from quant.tables import record_of, table_of

ROWS = [{"horizon": h, "IC": -0.012345 * h, "IC t (HAC)": 4.8 / h,
         "pooled IC [95%]": f"{0.132 / h:.3f} [{0.089 / h:.3f}, {0.175 / h:.3f}]",
         "strategy": "sentiment_long_short", "fingerprint": "dbc99cf5201fc29c",
         "rows": 12_154 * h} for h in (1, 5, 10, 20)]


def _rendered(renderable, width: int) -> str:
    console = Console(width=width, record=True, soft_wrap=True, file=open("/dev/null", "w"))
    console.print(renderable)
    return console.export_text()


@pytest.mark.parametrize("width", [40, 60, 80, 120, 200])
def test_every_value_is_whole_at_any_width(width):
    text = _rendered(table_of(ROWS, title="evaluation", width=width), width)
    words = set(re.findall(r"[^\s│┃|]+", text))
    for row in ROWS:
        for value in row.values():
            for word in str(value).split():
                assert word in words, f"{word!r} cut at width {width}:\n{text}"
    assert "…" not in text


def test_a_wide_terminal_gets_a_table_and_a_narrow_one_a_listing():
    assert "┃" in _rendered(table_of(ROWS, width=200), 200)
    narrow = _rendered(table_of(ROWS, width=60), 60)
    assert "┃" not in narrow and "fingerprint" in narrow


def test_a_record_keeps_a_long_path_on_one_line():
    path = "/srv/research/reports/sentiment_long_short-walk_forward-7a4bb1b3aa/report.html"
    text = _rendered(record_of({"run_id": "x", "report": path, "sharpe": 1.93561}), 40)
    assert path in text.splitlines()[1] and "1.936" in text
