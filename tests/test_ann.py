"""Past exact_up_to the passage vectors go into an approximate index that still behaves like the exact one."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import faiss
import numpy as np
import pytest

from eval.scale import synthetic_vectors
from index import IndexConfig, IndexStale, RankingConfig, Retriever, build_index, open_index
from index.ann import EXACT, IVF, vector_index
from index.components import DUPLICATES, LEXICAL, SENTENCE_INDEX, SENTENCES
from index.reuse import known_vectors
from index.store import read_index, write_index
from service.settings import Settings


def _copy(src: Path):
    return lambda dest: shutil.copytree(src, dest, dirs_exist_ok=True)


@pytest.fixture(scope="module")
def approximate_seeds(retriever: Retriever, tmp_path_factory: pytest.TempPathFactory):
    """The seed build written again with a threshold below its size."""
    stored = retriever.stored
    vectors = stored.vector_index.reconstruct_n(0, stored.vector_index.ntotal)
    manifest = {k: v for k, v in stored.manifest.items() if k not in ("files", "faiss")}
    folder = tmp_path_factory.mktemp("approximate") / "index"
    write_index(folder, manifest, stored.passages, vectors, {n: _copy(stored.path / n) for n in (LEXICAL, DUPLICATES, SENTENCES)}, exact_up_to=10)
    return read_index(folder), vectors


def test_above_the_threshold_the_index_is_approximate_and_recorded_as_such(approximate_seeds) -> None:
    stored, vectors = approximate_seeds
    entry = stored.manifest["faiss"]
    assert entry["index"] == IVF and entry["exact_up_to"] == 10 and entry["ntotal"] == len(vectors)
    assert entry["nprobe"] >= 1 and entry["nlist"] >= 1 and entry["seed"] and 0.9 <= entry["recall_at_10_sampled"] <= 1
    ivf = faiss.extract_index_ivf(stored.vector_index)  # read back as IVF, searching as the manifest says
    assert ivf.nlist == entry["nlist"] and ivf.nprobe == entry["nprobe"]


def test_the_approximate_index_gives_back_every_vector(approximate_seeds) -> None:
    stored, vectors = approximate_seeds
    assert np.allclose(stored.vector_index.reconstruct(7), vectors[7])
    assert np.allclose(stored.vector_index.reconstruct_n(0, len(vectors)), vectors)
    assert len(known_vectors(stored, "encoded").passages) == len({p.text for p in stored.passages})  # rebuilds can reuse them


def test_the_approximate_index_retrieves_what_exact_retrieves_on_the_seeds(approximate_seeds, retriever: Retriever, embedder) -> None:
    stored, _ = approximate_seeds
    dense = RankingConfig(retrieval="dense")
    exact, approximate = retriever.with_ranking(dense), Retriever(embedder, stored, dense)
    questions = ["Who is Chen Wenqing?", "What is ETIM?", "Where is the Wakhan corridor?", "What did Beijing ask Mullah Omar in 2000?"]
    found = []
    for question in questions:
        want = {h.passage.start for h in exact.search(question, _options(10)).hits}
        got = {h.passage.start for h in approximate.search(question, _options(10)).hits}
        found.append(len(want & got) / len(want))
    assert np.mean(found) >= 0.9


def _options(k: int):
    from index import SearchOptions

    return SearchOptions(top_k=k)


@pytest.fixture(scope="module")
def clustered(retriever: Retriever) -> np.ndarray:
    """Vectors drawn around the real seed embeddings (eval.scale), enough for IVF to skip most lists."""
    anchors = retriever.stored.vector_index.reconstruct_n(0, retriever.stored.vector_index.ntotal)
    return synthetic_vectors(anchors, 5000, seed=1)


def test_ivf_probes_a_few_lists_and_still_finds_nearly_every_neighbour(clustered: np.ndarray) -> None:
    index, entry = vector_index(clustered, exact_up_to=1000)
    assert entry["index"] == IVF and entry["nprobe"] < entry["nlist"]
    queries = clustered[:50] + 0.05 * np.random.default_rng(0).standard_normal(clustered[:50].shape).astype(np.float32)
    _, truth = faiss.knn(queries, clustered, 10, metric=faiss.METRIC_INNER_PRODUCT)
    _, got = index.search(queries, 10)
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got.tolist(), truth.tolist(), strict=True)]) >= 0.9
    again, _ = vector_index(clustered, exact_up_to=1000)  # fixed seeds: the same lists, the same answers
    assert np.array_equal(again.search(queries, 10)[1], got)


def test_at_or_below_the_threshold_the_index_is_exact(clustered: np.ndarray) -> None:
    _, entry = vector_index(clustered[:1000], exact_up_to=1000)
    assert entry["index"] == EXACT and "recall_at_10_sampled" not in entry


def _dense_only(index: faiss.Index) -> Retriever:
    """A retriever reduced to what ``_dense`` reads: the FAISS store, the tie order, the ranking."""
    from index.faiss_store import FaissStore

    r = Retriever.__new__(Retriever)
    r.store, r.order, r.ranking = FaissStore(index, None), None, RankingConfig(sentence_weight=0.0)
    return r


def test_the_dense_tie_loop_ends_on_an_approximate_index(clustered: np.ndarray) -> None:
    vectors = clustered.copy()
    vectors[1000:1200] = vectors[0]  # 200 copies of one vector: a tie far wider than the depth asked
    index, _ = vector_index(vectors, exact_up_to=1000)
    hits = _dense_only(index)._dense(vectors[:1], 50)[0]
    assert [row for row, _ in hits] == [0, *range(1000, 1049)]  # the tie settled by row, as exact search would
    deep = _dense_only(index)._dense(vectors[:1], 3000)[0]  # deeper than the probed lists hold: FAISS pads with -1
    assert 200 < len(deep) <= 3000 and all(row >= 0 for row, _ in deep)


def test_the_threshold_is_a_setting(monkeypatch) -> None:
    monkeypatch.setenv("CITED_EXACT_UP_TO", "123")
    assert Settings().index_config().exact_up_to == 123


def test_a_manifest_whose_search_parameter_does_not_fit_the_index_is_corrupt(approximate_seeds, tmp_path: Path) -> None:
    import json

    from index import IndexCorrupt

    stored, _ = approximate_seeds
    copy = tmp_path / "index"
    shutil.copytree(stored.path.parent, copy)
    manifest_path = copy / stored.path.name / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["faiss"]["nprobe"] = "many"
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexCorrupt, match="faiss entry"):
        read_index(copy)


def test_a_build_past_the_threshold_searches_passages_and_sentences_approximately(small_corpus: Path, tmp_path: Path, embedder) -> None:
    config = IndexConfig(corpus_dir=small_corpus, index_dir=tmp_path / "index", exact_up_to=1)
    stored = build_index(config, embedder)
    assert stored.manifest["faiss"]["index"] == IVF
    assert (stored.path / SENTENCES / SENTENCE_INDEX).is_file()  # more sentences than passages: past it too
    found = Retriever(embedder, stored).search("How much does the breakwater cost?", _options(3))
    assert found.hits and found.hits[0].passage.source == "harbour.txt"
    with pytest.raises(IndexStale, match="exact_up_to 1 → 20000"):
        open_index(dataclasses.replace(config, exact_up_to=20_000), embedder, rebuild=False)
    exact = build_index(dataclasses.replace(config, exact_up_to=20_000), embedder)
    assert exact.manifest["faiss"]["index"] == "IndexFlatIP" and not (exact.path / SENTENCES / SENTENCE_INDEX).exists()
    assert exact.manifest["reuse"]["passages_embedded"] == 0  # only the index changed
