"""`cited bench scale` end to end on a tiny size (not a timing test: the real run is in docs/results.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from eval.scale import LEXICAL_COLUMNS, VECTOR_COLUMNS, synthetic_texts, synthetic_vectors
from service.cli import main
from tests.conftest import table_rows


def test_the_command_reports_every_column_for_each_size(embedder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr("index.Embedder", lambda name: embedder)  # the session's model, not a second load
    code = main(["bench", "scale", "--sizes", "2000", "--queries", "5", "--anchors", "seeds", "--exact-up-to", "1000", "--out", str(tmp_path)])
    assert code == 0
    report = json.loads((tmp_path / "scale.json").read_text(encoding="utf-8"))
    [vectors], [lexical] = report["vectors"], report["lexical"]
    assert vectors["passages"] == lexical["passages"] == 2000 and vectors["index"] == "IndexIVFFlat"
    assert 0 < vectors["recall_at_10"] <= 1 and vectors["bytes_per_passage"] > 384 * 4 and vectors["peak_rss_mb"] > vectors["start_rss_mb"]
    markdown = (tmp_path / "scale.md").read_text(encoding="utf-8")
    tables = [rows for rows in (table_rows(block) for block in markdown.split("\n\n")) if rows]
    assert [rows[0] for rows in tables] == [list(VECTOR_COLUMNS), list(LEXICAL_COLUMNS)]
    assert all(len(rows) == 2 and "–" not in rows[1] for rows in tables)
    assert markdown in capsys.readouterr().out


@pytest.mark.parametrize("flags, message", [(["--sizes", "10"], "between 1000"), (["--index", "lsh"], "comma-separated list")])
def test_bad_flags_are_one_line_errors(flags: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "scale", *flags])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_synthetic_vectors_are_unit_length_repeatable_and_clustered_like_embeddings(retriever) -> None:
    anchors = retriever.stored.vector_index.reconstruct_n(0, retriever.stored.vector_index.ntotal)
    v = synthetic_vectors(anchors, 500, seed=1)
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5) and np.array_equal(v, synthetic_vectors(anchors, 500, seed=1))
    cosines = v @ v.T
    np.fill_diagonal(cosines, -1)
    assert np.median(cosines.max(axis=1)) > 0.5  # uniform noise in 384-d would give about 0.15


def test_synthetic_texts_are_made_of_the_given_sentences() -> None:
    texts = synthetic_texts(["Alpha one.", "Beta two.", "Gamma three."], 20)
    assert len(texts) == 20 and all(3 <= t.count(".") <= 6 for t in texts)


@pytest.mark.slow
def test_the_real_sizes_switch_to_ivf_and_keep_recall(tmp_path: Path) -> None:
    """10k and 100k with the real anchors (minutes; the 1M row of docs/results.md is `cited bench scale`)."""
    assert main(["bench", "scale", "--sizes", "10000,100000", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "scale.json").read_text(encoding="utf-8"))
    assert [r["index"] for r in report["vectors"]] == ["IndexFlatIP", "IndexIVFFlat"]
    assert all(r["recall_at_10"] >= 0.95 for r in report["vectors"])
    assert all("missing" not in r for r in report["lexical"])
