"""eval.tables: one Markdown table, columns padded so it reads on a console too."""

from __future__ import annotations

import pytest

from eval.tables import table
from tests.conftest import table_rows


def test_a_markdown_table_with_aligned_columns() -> None:
    text = table(["configuration", "nDCG@10"], [["dense", "0.356"], ["**default**: hybrid", "0.406"]])
    lines = text.splitlines()
    assert lines == [
        "| configuration       | nDCG@10 |",
        "|---------------------|--------:|",
        "| dense               |   0.356 |",
        "| **default**: hybrid |   0.406 |",
    ]
    assert len({len(line) for line in lines}) == 1  # the pipes line up on a console
    assert table_rows(text) == [["configuration", "nDCG@10"], ["dense", "0.356"], ["**default**: hybrid", "0.406"]]


def test_alignment_cells_and_bad_shapes() -> None:
    text = table(["", "n", "what"], [["a", 3, "x | y"]], align="lrl")
    assert text.splitlines()[1] == "|-----|----:|--------|"
    assert text.splitlines()[2] == "| a   |   3 | x \\| y |"  # a pipe in a cell cannot break the row
    with pytest.raises(ValueError, match="2 columns"):
        table(["a", "b"], [["only one"]])
    with pytest.raises(ValueError, match="2 columns"):
        table(["a", "b"], [], align="lc")
