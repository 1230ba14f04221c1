"""The one table renderer of every eval report (Markdown with padded columns, readable on a console
too), and the one way a benchmark writes its report."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["table", "write_report"]


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], align: str | None = None) -> str:
    """A Markdown table; ``align`` holds one ``l`` or ``r`` per column (default: first left, the rest right).

    Columns are padded to a common width so the same text can be printed and pasted into a document.
    """
    align = align or "l" + "r" * (len(headers) - 1)
    cells = [[_cell(c) for c in headers], *([_cell(c) for c in row] for row in rows)]
    if len(align) != len(headers) or set(align) - {"l", "r"} or any(len(row) != len(headers) for row in cells):
        raise ValueError(f"every row and align must have {len(headers)} columns")
    widths = [max(3, *(len(row[i]) for row in cells)) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(row, widths, align, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" if a == "r" else "-" * (w + 2) for w, a in zip(widths, align, strict=True)) + "|"
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def write_report(out: Path, name: str, report: dict[str, Any], text: str) -> tuple[Path, Path]:
    """``<name>.json`` and ``<name>.md`` in ``out``: what each benchmark leaves behind to compare later."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / f"{name}.json", out / f"{name}.md"
    json_path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    md_path.write_text(text, encoding="utf-8")
    return json_path, md_path
