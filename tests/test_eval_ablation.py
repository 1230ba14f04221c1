"""eval.ablation and `cited eval ablation`: rows as overrides, one index per column, the default row = `cited eval`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from eval.ablation import Ablation, ablation_rows, credited_documents, describe, score_beir
from eval.beir import load_beir
from eval.beir_eval import prepare_index
from eval.questions import KINDS
from index import Hit, Passage, RankingConfig
from service.cli import main
from service.settings import Settings
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


# ---- rows ----------------------------------------------------------------------------------


def test_rows_are_overrides_that_inherit_everything_else() -> None:
    base = Settings(candidates=80).ranking_config(fusion="rrf", dense_weight=2.0, mmr_lambda=0.9)
    rows = {row.name: row for row in ablation_rows(base, mmr_lambda=0.6)}
    assert list(rows) == ["dense", "bm25", "hybrid", "sentences", "collapse", "diversity", "feedback", "default"]
    for row in rows.values():
        assert row.ranking == dataclasses.replace(base, **row.overrides)
        assert (row.ranking.fusion, row.ranking.dense_weight, row.ranking.candidates) == ("rrf", 2.0, 80)
    stages = ("dense", "bm25", "hybrid", "sentences", "collapse", "diversity", "feedback")
    assert [rows[n].ranking.retrieval for n in stages] == ["dense", "bm25", *["hybrid"] * 5]
    assert [rows[n].ranking.sentence_weight for n in stages] == [0.0, 0.0, 0.0, *[base.sentence_weight] * 4]
    assert [rows[n].ranking.collapse_duplicates for n in stages] == [False] * 4 + [True] * 3
    assert [rows[n].ranking.mmr_lambda for n in (*stages, "default")] == [1.0] * 5 + [0.6, 1.0, 0.9]
    assert [rows[n].ranking.feedback_passages for n in stages] == [0] * 6 + [3]
    assert rows["default"].ranking == base and rows["default"].overrides == {}
    assert rows["diversity"].label == (
        "hybrid (rrf) + sentences (w=0.5) + collapse + diversity (MMR λ=0.6) [dense_weight=2.0, candidates=80]"
    )
    # a stage the settings switch off is still measured, at its usual value
    off = {row.name: row for row in ablation_rows(dataclasses.replace(base, sentence_weight=0.0))}
    assert off["sentences"].ranking.sentence_weight == 0.5 and off["default"].ranking.sentence_weight == 0.0
    with pytest.raises(ValueError, match="below 1"):
        ablation_rows(base, mmr_lambda=1.0)


def test_describe() -> None:
    assert describe(RankingConfig(retrieval="bm25", collapse_duplicates=False)) == "BM25"
    assert describe(RankingConfig()) == "hybrid (weighted) + sentences (w=0.5) + collapse"
    assert describe(RankingConfig(retrieval="dense", rrf_k=10, highlight=False, sentence_weight=0.0)) == "dense + collapse [rrf_k=10]"
    assert describe(RankingConfig(feedback_passages=2)) == "hybrid (weighted) + sentences (w=0.5) + feedback (2 passages, weight 1) + collapse"


def test_collapsed_copies_are_credited_with_their_results_score() -> None:
    def passage(doc: str) -> Passage:
        return Passage(doc, f"{doc}.txt", "T", 0, 1, "x", 1)

    hits = [
        Hit(rank=1, score=0.9, passage=passage("a"), also_in=(passage("b"),)),
        Hit(rank=2, score=0.8, passage=passage("c")),
        Hit(rank=3, score=0.7, passage=passage("b")),  # b's own passage scores lower than its copy
        Hit(rank=4, score=0.6, passage=passage("a")),
    ]
    names = {"a": "A", "b": "B", "c": "C"}
    assert credited_documents(hits, names) == [("A", 0.9), ("B", 0.9), ("C", 0.8)]
    assert credited_documents(hits, names, k=2) == [("A", 0.9), ("B", 0.9)]


def test_table_and_notes() -> None:
    rows = ablation_rows(RankingConfig())
    overall = {"hit@1": 0.5, "hit@5": 0.75, "mrr@10": 0.6, "ndcg@10": 0.65}
    seed = {row.name: {"overall": overall, "multi_source_recall@5": None} for row in rows}
    beir = {row.name: {"ndcg@10": 0.4, "ndcg@10_own_passages": 0.4, "queries": 3, "passages": 50} for row in rows}
    beir["collapse"] = beir["default"] = {**beir["collapse"], "ndcg@10": 0.39}  # measured once, as score_beir does
    ablation = Ablation("now", {}, rows, {"path": "q.jsonl", "answerable": 4, "multi_source": 0}, 10, seed, beir,
                        {"name": "cranfield", "documents": 9})
    lines = ablation.table().splitlines()
    assert lines[0] == "| configuration | hit@1 | hit@5 | MRR@10 | nDCG@10 | recall@5, multi-source | Cranfield nDCG@10 |"
    assert len(lines) == 2 + len(rows)
    assert lines[2] == "| dense only (passage cosine) | 0.500 | 0.750 | 0.600 | 0.650 | – | 0.400 |"
    notes = "\n".join(ablation.notes())
    assert "without crediting `also_in` copies: `collapse` 0.400, `default` 0.400." in notes
    assert "Row `default` ranks exactly like row `collapse`" in notes
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
    for values in scores.values():
        # three judged queries, each with one obvious document: every row finds it first
        assert values["queries"] == 3 and values["ndcg@10"] == values["ndcg@10_own_passages"] == pytest.approx(1.0)
        assert values["passages"] == len(prepared.retriever.passages)  # fewer than 50: all of them
        assert values["short_queries"] == 3  # only four documents have text
    assert scores["default"] is scores["collapse"]


# ---- the command -----------------------------------------------------------------------------


def test_rows_differ_and_the_default_row_equals_cited_eval(subset: Path, retriever, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    loads = []

    def shared(settings: Settings, progress: bool = False):  # the session index, ranked as the settings say
        loads.append(settings)
        return retriever.with_ranking(settings.ranking_config())

    tiny = write_tiny(tmp_path / "tiny")
    common = ["--questions", str(subset), "--corpus-dir", str(SEEDS), "--index-dir", str(tmp_path / "state" / "index"), "--log-level", "warning"]

    assert main(["eval", *common, "--out", str(tmp_path / "eval")], load=shared) == 0
    assert main(["eval", "ablation", *common, "--cranfield", str(tiny), "--diversity-lambda", "0.5", "--out", str(tmp_path / "ablation")], load=shared) == 0
    assert len(loads) == 2  # one seed retriever per command, whatever the number of rows
    printed = capsys.readouterr().out
    report = json.loads((tmp_path / "eval" / "report.json").read_text(encoding="utf-8"))
    ablation = json.loads((tmp_path / "ablation" / "ablation.json").read_text(encoding="utf-8"))

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
    assert ablation["collection"]["name"] == "tiny" and rows["bm25"]["beir"]["ndcg@10"] == pytest.approx(1.0)
    assert Path(ablation["collection"]["index"]["path"]).is_relative_to(tmp_path / "state" / "beir" / "tiny")

    header = "| configuration | hit@1 | hit@5 | MRR@10 | nDCG@10 | recall@5, multi-source | Tiny nDCG@10 |"
    assert header in printed and "| dense only (passage cosine) | " in printed and "(MMR λ=0.5)" in printed
    assert header in (tmp_path / "ablation" / "ablation.md").read_text(encoding="utf-8")
    default = report["aggregates"]["overall"]
    assert f"| **default**: hybrid (weighted) + sentences (w=0.5) + collapse | {default['hit@1']:.3f} | {default['hit@5']:.3f} | " in printed


def test_command_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "ablation", "--questions", str(QUESTIONS), "--corpus-dir", str(SEEDS), "--cranfield", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cited: error: cannot load collection:") and err.count("\n") == 1
    assert main(["eval", "ablation", "--questions", str(tmp_path / "none.jsonl"), "--no-cranfield"]) == 1
    assert capsys.readouterr().err.startswith("cited: error: question set:")
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "ablation", "--diversity-lambda", "1"])
    assert exit_info.value.code == 2 and "below 1" in capsys.readouterr().err
