"""eval.plots: the curves agree with the report's table, the PNGs are real, and report.md embeds them."""

from __future__ import annotations

import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from eval.plots import PLOTS, curves, write_plots
from eval.report import Report
from eval.runner import run_eval
from tests.test_eval_runner import QA, QA_RESULTS, QA_SPANS, QB, QB_RESULTS, QB_SPANS, QC, QC_RESULTS, QD, QD_RESULTS, QD_SPANS, FakeTarget, response

ROOT = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report() -> Report:
    """The hand-made answers of test_eval_runner: two factoid questions, one multi-source, one unanswerable."""
    target = FakeTarget({
        QA.question: response(QA_RESULTS, 0.7),
        QB.question: response(QB_RESULTS, 0.6),
        QC.question: response(QC_RESULTS, 0.35),
        QD.question: response(QD_RESULTS, 0.3),
    })
    run = run_eval([QA, QB, QC, QD], {"qa": QA_SPANS, "qb": QB_SPANS, "qc": (), "qd": QD_SPANS}, target, top_k=10)
    return Report("now", "in-process", {}, {}, {"path": "q", "sha256": "x", "count": 4}, 10, run.records, run.aggregates, run.timing)


def test_the_curves_are_the_tables_values(report: Report) -> None:
    data = curves(report.records, report.top_k)
    assert list(data) == ["overall", "factoid", "multi-source"]  # the table's order; unanswerable questions have no curve
    for name, row in [("overall", report.aggregates["overall"]), *report.aggregates["by_kind"].items()]:
        assert data[name]["n"] == row["n"]
        assert len(data[name]["hit"]) == len(data[name]["recall"]) == report.top_k
        for k in (1, 3, 5, 10):
            assert data[name]["hit"][k - 1] == pytest.approx(row[f"hit@{k}"])
        for k in (5, 10):
            assert data[name]["recall"][k - 1] == pytest.approx(row[f"recall@{k}"])
        assert all(a <= b for a, b in zip(data[name]["hit"], data[name]["hit"][1:]))  # a curve never falls
    # by hand: qb finds its second quote at rank 6, so multi-source recall steps from 0.5 to 1 there
    assert data["multi-source"]["recall"][4:6] == [0.5, 1.0]
    with pytest.raises(ValueError, match="no answerable"):
        curves([r for r in report.records if r["metrics"] is None], 10)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", f"{path.name} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_report_writes_the_plots_and_embeds_them(report: Report, tmp_path: Path) -> None:
    json_path, md_path = report.write(tmp_path / "out")
    markdown = md_path.read_text(encoding="utf-8")
    embedded = re.findall(r"!\[[^\]]+\]\(([^)]+)\)", markdown)
    assert embedded == list(PLOTS)  # relative paths, next to report.md
    for name in embedded:
        path = md_path.parent / name
        width, height = _png_size(path)
        assert 400 <= width <= 2000 and 300 <= height <= 1500
        assert 5_000 < path.stat().st_size < 500_000  # drawn, not blank; not a bitmap dump either
    # the same numbers draw the same files: a report folder can be diffed and kept in git
    again = write_plots(report.records, report.aggregates, report.top_k, tmp_path / "again")
    assert [p.read_bytes() for p in again] == [(md_path.parent / name).read_bytes() for name in PLOTS]
    assert Report.load(json_path).records == report.records


def test_without_plots_the_markdown_embeds_none(report: Report, tmp_path: Path) -> None:
    _, md_path = report.write(tmp_path, plots=False)
    assert "![" not in md_path.read_text(encoding="utf-8")
    assert not any(tmp_path.glob("*.png"))


def test_matplotlib_is_imported_only_to_draw() -> None:
    # `cited --help` must stay fast: the parser, and the plotting module itself, do not import it
    code = "import sys, eval.plots; from service.cli import build_parser; build_parser(); print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
    assert out == "False"
