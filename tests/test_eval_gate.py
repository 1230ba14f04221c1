"""eval.gate and the `cited eval` command end to end (reports, baseline, gate, compare)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from eval.gate import GATED, BaselineError, baseline_of, check, load_baseline, save_baseline
from eval.report import Report
from eval.runner import METRICS
from service.cli import main
from tests.conftest import table_rows

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
QUESTIONS = ROOT / "eval" / "questions.jsonl"


def make_report(overall: dict[str, float], records: list[dict] | None = None) -> Report:
    row = {"n": 2, **dict.fromkeys(METRICS, 0.5), **overall}
    dist = {"n": 0, "min": None, "median": None, "max": None}
    return Report(
        created_at="2026-01-01T00:00:00Z",
        target="in-process",
        settings={"chunk_tokens": 128},
        manifest={"model": {"name": "m"}, "built_at": "then"},
        questions={"path": "q.jsonl", "sha256": "abc", "count": 2},
        top_k=10,
        records=records or [],
        aggregates={
            "overall": row,
            "by_kind": {"factoid": row},
            "scores": {
                "top_score": {"answerable": dist, "unanswerable": dist},
                "best_cosine": {"answerable": dist, "unanswerable": dist},
                "unanswerable": {},
            },
        },
    )


CURRENT = make_report({"hit@5": 0.75, "mrr@10": 0.5, "ndcg@10": 0.625})


def test_a_baseline_with_a_lower_value_passes() -> None:
    baseline = baseline_of(CURRENT)
    assert check(baseline, CURRENT).passed  # identical: no drop at max_drop 0
    lowered = copy.deepcopy(baseline)
    lowered["gated"]["mrr@10"] -= 0.1  # the current run improved
    result = check(lowered, CURRENT)
    assert result.passed and "gate passed" in result.text()
    assert any(line.startswith("mrr@10") and "0.4000 → 0.5000" in line and "+0.1000" in line for line in result.lines)


def test_a_drop_beyond_max_drop_fails_and_names_the_metric() -> None:
    raised = copy.deepcopy(baseline_of(CURRENT))
    raised["gated"]["mrr@10"] = 0.75  # current 0.5: a drop of 0.25
    assert check(raised, CURRENT, max_drop=0.25).passed  # exactly the allowed drop passes
    result = check(raised, CURRENT, max_drop=0.125)
    assert not result.passed
    assert result.failures == ["gate failed: mrr@10 dropped 0.2500 (0.7500 → 0.5000), more than the allowed 0.1250"]
    for name in GATED:  # baseline → current for every gated metric, failing or not
        assert any(line.split()[0] == name for line in result.lines)


def test_allowed_questions_set_the_tolerance_and_the_dropped_questions_are_named() -> None:
    before = make_report({"hit@5": 1.0, "mrr@10": 1.0, "ndcg@10": 1.0}, [record("q1", 1), record("q2", 1)])
    one_down = make_report({"hit@5": 1.0, "mrr@10": 0.75, "ndcg@10": 0.9}, [record("q1", 1), record("q2", 2)])
    baseline = baseline_of(before)
    assert baseline["first_relevant_rank"] == {"q1": 1, "q2": 1}
    assert not check(baseline, one_down).passed  # no tolerance: any drop fails
    # two answerable questions: one question moves a mean by at most 0.5
    result = check(baseline, one_down, allow_questions=1)
    assert result.passed and "allowed drop 0.5000 per metric (1 of 2 questions)" in result.lines
    assert "  q2 (factoid): 1 → 2" in result.lines and "questions ranked lower than in the baseline: 1" in result.lines
    both_missed = make_report({"hit@5": 0.0, "mrr@10": 0.0, "ndcg@10": 0.0}, [record("q1", None), record("q2", None)])
    failed = check(baseline, both_missed, allow_questions=1)
    assert not failed.passed and len(failed.failures) == len(GATED)
    assert "  q1 (factoid): 1 → miss" in failed.lines
    with pytest.raises(ValueError, match="allow_questions"):
        check(baseline, one_down, allow_questions=-1)


def test_baseline_round_trip_and_bad_files(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "baseline.json"
    save_baseline(path, CURRENT)
    loaded = load_baseline(path)
    assert loaded["gated"] == {"hit@5": 0.75, "mrr@10": 0.5, "ndcg@10": 0.625}
    assert loaded["settings"] == {"chunk_tokens": 128} and loaded["date"]
    with pytest.raises(BaselineError, match="not found"):
        load_baseline(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(BaselineError, match="not readable"):
        load_baseline(tmp_path / "bad.json")
    (tmp_path / "partial.json").write_text(json.dumps({"gated": {"hit@5": 1}}), encoding="utf-8")
    with pytest.raises(BaselineError, match="mrr@10"):
        load_baseline(tmp_path / "partial.json")


def test_cli_missing_baseline_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["eval", "--baseline", str(tmp_path / "missing.json"), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("cited: error: baseline") and "missing.json not found" in err and err.count("\n") == 1


def test_cli_bad_question_file_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"id": "z1", "kind": "factoid", "question": "?", "gold": [{"source": "000_f2f8642a0eb764e7.txt", "quote": "not in there"}]}\n')
    status = main(["eval", "--questions", str(bad), "--corpus-dir", str(SEEDS), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 1 and "'z1'" in err and "not in there" in err and err.count("\n") == 1
    assert main(["eval", "--max-drop", "0.1"]) == 1
    assert "--max-drop needs --baseline" in capsys.readouterr().err
    assert main(["eval", "--allow-questions", "2"]) == 1
    assert "--allow-questions needs --baseline" in capsys.readouterr().err
    assert main(["eval", "--set", "mmr_lambda=2", "--corpus-dir", str(SEEDS), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cited: error: --set: mmr_lambda") and err.count("\n") == 1
    with pytest.raises(SystemExit) as exit_info:  # a served setting is a flag of its own, not an experiment
        main(["eval", "--set", "sentence_weight=0.2"])
    assert exit_info.value.code == 2 and "NAME=VALUE" in capsys.readouterr().err


def test_cited_eval_end_to_end(tmp_path: Path, seed_settings, retriever, capsys: pytest.CaptureFixture[str]) -> None:
    # A few real questions (some answerable, one not) keep this fast; the full set runs in test_eval_runner.
    lines = QUESTIONS.read_text(encoding="utf-8").splitlines()
    subset = tmp_path / "subset.jsonl"
    subset.write_text("\n".join(lines[:4] + lines[-1:]) + "\n", encoding="utf-8")
    common = ["eval", "--questions", str(subset), "--corpus-dir", str(SEEDS), "--index-dir", str(seed_settings.index_dir),
              "--log-level", "warning"]

    # 1. a real load of the session index (no rebuild allowed): reports and a baseline are written
    out = tmp_path / "out"
    assert main([*common, "--out", str(out), "--save-baseline", str(tmp_path / "baseline.json")]) == 0
    printed = capsys.readouterr().out
    assert "overall" in printed and "wrote baseline" in printed
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["top_k"] == 10 and report["questions"]["count"] == 5 and report["target"] == "in-process"
    assert report["manifest"]["model"]["name"] == "all-MiniLM-L6-v2"
    assert report["settings"]["index_dir"] == str(seed_settings.index_dir)
    assert len(report["records"]) == 5 and report["aggregates"]["overall"]["n"] == 4
    assert "| **overall** |" in (out / "report.md").read_text(encoding="utf-8")
    baseline = json.loads((tmp_path / "baseline.json").read_text(encoding="utf-8"))
    assert baseline["gated"] == {name: report["aggregates"]["overall"][name] for name in GATED}

    # 2. a baseline 0.05 above today's mrr@10 with --max-drop 0.02: exit 1, the metric and drop named
    def shared(settings, progress=False):  # skip a second model load
        return retriever

    raised = copy.deepcopy(baseline)
    raised["gated"]["mrr@10"] += 0.05
    (tmp_path / "raised.json").write_text(json.dumps(raised), encoding="utf-8")
    status = main([*common, "--out", str(tmp_path / "out2"), "--baseline", str(tmp_path / "raised.json"), "--max-drop", "0.02"], load=shared)
    printed = capsys.readouterr().out
    assert status == 1
    assert "gate failed: mrr@10 dropped 0.0500" in printed and "more than the allowed 0.0200" in printed
    assert "gate failed: hit@5" not in printed and "ndcg@10" in printed
    # ...and the unchanged baseline passes
    assert main([*common, "--out", str(tmp_path / "out3"), "--baseline", str(tmp_path / "baseline.json")], load=shared) == 0
    assert "gate passed" in capsys.readouterr().out


def record(qid: str, rank: int | None) -> dict:
    return {"id": qid, "kind": "factoid", "question": f"{qid}?", "first_relevant_rank": rank, "metrics": {}, "results": [], "top_score": 0.5, "gold": []}


def test_cli_compare(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = make_report({"mrr@10": 0.5}, [record("q1", 3), record("q2", 1), record("q3", None), record("q4", 2)])
    b = make_report({"mrr@10": 0.625}, [record("q1", 1), record("q2", None), record("q3", 4), record("q4", 2)])
    (tmp_path / "a.json").write_text(a.to_json(), encoding="utf-8")
    (tmp_path / "b.json").write_text(b.to_json(), encoding="utf-8")
    assert main(["eval", "compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    assert ["overall", "mrr@10", "0.5000", "0.6250", "+0.1250"] in table_rows(out)
    assert "better in B (2):" in out and "q1 (factoid): 3 → 1" in out and "q3 (factoid): miss → 4" in out
    assert "worse in B (1):" in out and "q2 (factoid): 1 → miss" in out
    assert "q4" not in out
    assert main(["eval", "compare", str(tmp_path / "a.json"), str(tmp_path / "nope.json")]) == 1
    assert "nope.json not found" in capsys.readouterr().err
