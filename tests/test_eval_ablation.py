"""eval.ablation and `cited eval ablation`: one index per column, the default row = `cited eval` and `cited eval beir`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from eval.ablation import Ablation, score_beir
from eval.beir import load_beir
from eval.beir_eval import CollectionScore
from eval.beir_index import prepare_index
from eval.ladder import ablation_rows
from eval.questions import KINDS
from index import RankingConfig
from service.cli import main
from service.settings import Settings
from tests.conftest import table_rows
from tests.test_beir_eval import write_tiny

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
QUESTIONS = ROOT / "eval" / "questions.jsonl"
PER_KIND = 3  # questions of each kind in the subset: 15, enough for rows to differ, fast to run five times


@pytest.fixture(scope="module")
def subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lines = QUESTIONS.read_text(encoding="utf-8").splitlines()
    chosen = [line for kind in KINDS for line in [x for x in lines if json.loads(x)["kind"] == kind][:PER_KIND]]
    path = tmp_path_factory.mktemp("ablation") / "subset.jsonl"
    path.write_text("\n".join(chosen) + "\n", encoding="utf-8")
    return path


# ---- the table --------------------------------------------------------------------------------


def test_table_and_notes() -> None:
    rows = ablation_rows(RankingConfig())
    overall = {"hit@1": 0.5, "hit@5": 0.75, "mrr@10": 0.6, "ndcg@10": 0.65}
    seed = {row.name: {"overall": overall, "multi_source_recall@5": None} for row in rows}
    per_query = {q: {"ndcg@10": 0.4} for q in ("q1", "q2", "q3")}
    beir = {row.name: CollectionScore({"ndcg@10": 0.4}, per_query, {}, 0.1, {"passage_depth": 500}) for row in rows}
    beir["collapse"] = beir["default"] = dataclasses.replace(beir["collapse"], metrics={"ndcg@10": 0.39})  # measured once
    ablation = Ablation("now", {}, rows, {"path": "q.jsonl", "answerable": 4, "multi_source": 0}, 10, seed, beir,
                        {"name": "cranfield", "documents": 9})
    cells = table_rows(ablation.table())
    assert cells[0] == ["configuration", "hit@1", "hit@5", "MRR@10", "nDCG@10", "recall@5, multi-source", "Cranfield nDCG@10"]
    assert len(cells) == 1 + len(rows)
    assert cells[1] == ["dense only (passage cosine)", "0.500", "0.750", "0.600", "0.650", "–", "0.400"]
    assert cells[-1][0] == "**default**: hybrid (weighted) + sentences (w=0.5) + collapse" and cells[-1][-1] == "0.390"
    notes = "\n".join(ablation.notes())
    assert "9 documents, 3 judged queries; each row ranks the top 500 passages" in notes
    assert "Row `default` ranks exactly like row `collapse`" in notes
    assert json.loads(json.dumps(ablation.to_dict()))["rows"][-1]["beir"]["metrics"] == {"ndcg@10": 0.39}
    skipped = Ablation("now", {}, rows, {}, 10, seed)
    assert "Cranfield" not in skipped.table() and "Cranfield" not in "".join(skipped.notes())


# ---- the BEIR column, on a tiny hand-made collection ----------------------------------------


def test_beir_column_on_a_tiny_collection(tmp_path: Path, embedder) -> None:
    folder = write_tiny(tmp_path / "tiny")
    settings = Settings(corpus_dir=tmp_path / "unused", index_dir=tmp_path / "state" / "index")
    collection = load_beir(folder)
    prepared = prepare_index(collection, settings.index_config(), embedder, progress=False)
    rows = ablation_rows(settings.ranking_config())
    scores = score_beir(prepared, collection, rows)
    assert set(scores) == {row.name for row in rows}
    for score in scores.values():
        # three judged queries, each with one obvious document: every row finds it first
        assert len(score.per_query) == 3 and score.metrics["ndcg@10"] == pytest.approx(1.0)
        assert score.notes["passage_depth"] == len(prepared.retriever.passages)  # fewer than 500: all of them
    assert scores["default"] is scores["collapse"]


# ---- the command -----------------------------------------------------------------------------


def test_rows_differ_and_the_default_row_equals_cited_eval_and_cited_eval_beir(
    subset: Path, retriever, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loads = []

    def shared(settings: Settings, progress: bool = False):  # the session index, ranked as the settings say
        loads.append(settings)
        return retriever.with_ranking(settings.ranking_config())

    tiny = write_tiny(tmp_path / "tiny")
    state = ["--corpus-dir", str(SEEDS), "--index-dir", str(tmp_path / "state" / "index"), "--log-level", "warning"]
    common = ["--questions", str(subset), *state]

    assert main(["eval", *common, "--out", str(tmp_path / "eval")], load=shared) == 0
    assert main(["eval", "ablation", *common, "--cranfield", str(tiny), "--diversity-lambda", "0.5", "--out", str(tmp_path / "ablation")], load=shared) == 0
    assert len(loads) == 2  # one seed retriever per command, whatever the number of rows
    printed = capsys.readouterr().out
    assert main(["eval", "beir", str(tiny), *state, "--out", str(tmp_path / "beir")], load=shared) == 0
    report = json.loads((tmp_path / "eval" / "report.json").read_text(encoding="utf-8"))
    ablation = json.loads((tmp_path / "ablation" / "ablation.json").read_text(encoding="utf-8"))
    beir = json.loads((tmp_path / "beir" / "beir-tiny.json").read_text(encoding="utf-8"))

    rows = {row["name"]: row for row in ablation["rows"]}
    ranks = {name: row["seed"]["first_relevant_rank"] for name, row in rows.items()}
    assert ranks["dense"] != ranks["bm25"]
    assert ranks["hybrid"] != ranks["dense"] and ranks["hybrid"] != ranks["bm25"]
    for row in rows.values():
        assert row["seed"]["overall"]["n"] == 4 * PER_KIND and 0 <= row["seed"]["multi_source_recall@5"] <= 1
    assert rows["default"]["seed"]["overall"] == report["aggregates"]["overall"]
    assert ranks["default"] == {r["id"]: r["first_relevant_rank"] for r in report["records"] if r["metrics"] is not None}
    assert rows["default"]["seed"]["multi_source_recall@5"] == report["aggregates"]["by_kind"]["multi-source"]["recall@5"]
    assert rows["default"]["same_as"] == "collapse" and rows["diversity"]["ranking"]["mmr_lambda"] == 0.5
    assert rows["dense"]["overrides"] == {"sentence_weight": 0.0, "feedback_passages": 0, "collapse_duplicates": False, "mmr_lambda": 1.0, "retrieval": "dense"}
    assert ablation["collection"]["name"] == "tiny" and rows["bm25"]["beir"]["metrics"]["ndcg@10"] == pytest.approx(1.0)
    assert Path(ablation["collection"]["index"]["path"]).is_relative_to(tmp_path / "state" / "beir" / "tiny")
    # One scoring rule: the ablation's column and `cited eval beir` give each configuration the same numbers.
    assert beir["index"]["rebuilt_this_run"] is False  # the ablation's index, reused
    for name in ("default", "dense"):
        assert rows[name]["beir"]["metrics"] == beir["methods"][name]["metrics"]
        assert rows[name]["beir"]["notes"] == beir["methods"][name]["notes"]

    header = ["configuration", "hit@1", "hit@5", "MRR@10", "nDCG@10", "recall@5, multi-source", "Tiny nDCG@10"]
    printed_rows = {cells[0]: cells for cells in table_rows(printed)}
    assert printed_rows["configuration"] == header and "dense only (passage cosine)" in printed_rows
    assert any("(MMR λ=0.5)" in label for label in printed_rows)
    assert table_rows((tmp_path / "ablation" / "ablation.md").read_text(encoding="utf-8"))[0] == header
    default = report["aggregates"]["overall"]
    assert printed_rows["**default**: hybrid (weighted) + sentences (w=0.5) + collapse"][1:3] == [f"{default['hit@1']:.3f}", f"{default['hit@5']:.3f}"]


def test_command_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "ablation", "--questions", str(QUESTIONS), "--corpus-dir", str(SEEDS), "--cranfield", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cited: error: cannot load collection:") and err.count("\n") == 1
    assert main(["eval", "ablation", "--questions", str(tmp_path / "none.jsonl"), "--no-cranfield"]) == 1
    assert capsys.readouterr().err.startswith("cited: error: question set:")
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "ablation", "--diversity-lambda", "1"])
    assert exit_info.value.code == 2 and "below 1" in capsys.readouterr().err
