"""Which FAISS index holds the passage vectors: exact while small, approximate past a threshold.

Exhaustive inner product costs n·d per question: about 0.8 ms at 10k passages on the 2-core
benchmark machine, 99 ms at 1M. Past ``exact_up_to`` passages the vectors go into an
inverted-file index instead (IndexIVFFlat: k-means lists, only the ``nprobe`` lists nearest the
question are scanned): 1.2 ms at 1M, recall@10 0.9955. IVF was chosen over HNSW by measurement
(docs/results.md, "Scale"): both pass the target, but IVF builds 3.6× faster at 100k, and its
build is deterministic, where HNSW's multi-threaded graph insertion is not. HNSW stays
selectable here so the benchmark can keep comparing them.

Everything a loaded index needs to search the way it was built to (``nprobe``, ``efSearch``)
is saved in the FAISS file itself and recorded in the manifest's ``faiss`` entry, and
:func:`search_as_built` re-applies the manifest's values on open, so a loaded index never
falls back to FAISS's default of one probe.
"""

from __future__ import annotations

import math
from typing import Any

import faiss
import numpy as np

EXACT = "IndexFlatIP"
IVF = "IndexIVFFlat"
HNSW = "IndexHNSWFlat"
KINDS = (EXACT, IVF, HNSW)
APPROXIMATE = IVF  # what write_index switches to past the threshold

SEED = 1234  # k-means initialisation and the training sample: same vectors, same lists
LISTS_PER_ROOT = 4  # nlist = 4·sqrt(n): lists of about sqrt(n)/4 vectors
TRAIN_PER_LIST = 40  # k-means sees 40 vectors per list
MIN_PER_LIST = 39  # FAISS's own minimum for k-means; fewer lists on small inputs
PROBE_SHARE = 1 / 48  # nprobe = nlist/48 lists scanned per question (2 %), at least MIN_PROBES
MIN_PROBES = 16
HNSW_M = 32  # graph neighbours per vector
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 96
RECALL_SAMPLE = 100  # stored vectors used as questions to estimate recall@10 at build time


def vector_index(vectors: np.ndarray, exact_up_to: int, kind: str | None = None) -> tuple[faiss.Index, dict[str, Any]]:
    """The index for ``vectors`` and its manifest entry (type, parameters, estimated recall).

    ``kind`` forces one index type (the scale benchmark compares them); by default the size decides.
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = vectors.shape
    kind = kind or (EXACT if n <= exact_up_to else APPROXIMATE)
    if kind == EXACT:
        index: faiss.Index = faiss.IndexFlatIP(d)
        index.add(vectors)
        params: dict[str, Any] = {}
    elif kind == IVF:
        index, params = _ivf(vectors)
    elif kind == HNSW:
        index, params = _hnsw(vectors)
    else:
        raise ValueError(f"unknown FAISS index kind {kind!r}; expected one of {', '.join(KINDS)}")
    entry = {"index": kind, "metric": "inner_product", "ntotal": int(index.ntotal), "exact_up_to": exact_up_to, **params}
    if kind != EXACT:
        entry["recall_at_10_sampled"] = sampled_recall(index, vectors)
    return index, entry


def search_as_built(index: faiss.Index, entry: dict[str, Any]) -> None:
    """Set the search-time parameter the manifest records on a freshly read index."""
    if "nprobe" in entry:
        faiss.extract_index_ivf(index).nprobe = int(entry["nprobe"])
    if "ef_search" in entry:
        faiss.downcast_index(index).hnsw.efSearch = int(entry["ef_search"])


def ivf_lists(n: int) -> tuple[int, int]:
    """(nlist, nprobe) for ``n`` vectors; never more lists than k-means can train soundly."""
    nlist = max(1, min(n // MIN_PER_LIST, round(LISTS_PER_ROOT * math.sqrt(n))))
    return nlist, min(nlist, max(MIN_PROBES, round(nlist * PROBE_SHARE)))


def _ivf(vectors: np.ndarray) -> tuple[faiss.Index, dict[str, Any]]:
    n, d = vectors.shape
    nlist, nprobe = ivf_lists(n)
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = SEED
    index.cp.max_points_per_centroid = TRAIN_PER_LIST  # FAISS would otherwise subsample with its own draw
    train = min(n, TRAIN_PER_LIST * nlist)
    sample = np.sort(np.random.default_rng(SEED).choice(n, size=train, replace=False)) if train < n else np.arange(n)
    index.train(vectors[sample])
    index.add(vectors)
    index.make_direct_map()  # reconstruct(row) for sentence blending, feedback and vector reuse
    index.nprobe = nprobe
    return index, {"nlist": nlist, "nprobe": nprobe, "trained_on": int(train), "seed": SEED}


def _hnsw(vectors: np.ndarray) -> tuple[faiss.Index, dict[str, Any]]:
    index = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.hnsw.efSearch = HNSW_EF_SEARCH
    index.add(vectors)  # multi-threaded insertion: the graph can differ from run to run
    return index, {"m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "ef_search": HNSW_EF_SEARCH}


def sampled_recall(index: faiss.Index, vectors: np.ndarray, k: int = 10) -> float:
    """Recall@k of ``index`` against exact search, with a fixed sample of stored vectors as questions.

    Each question's own row is left out of both lists (it is trivially found and would flatter
    the estimate). Stored passages are not real questions, so this is a check that the index
    works, not the recall a user sees; the scale benchmark measures that on held-out vectors.
    """
    n = len(vectors)
    rows = np.sort(np.random.default_rng(SEED + 1).choice(n, size=min(n, RECALL_SAMPLE), replace=False))
    queries = vectors[rows]
    _, exact = faiss.knn(queries, vectors, k + 1, metric=faiss.METRIC_INNER_PRODUCT)
    _, approx = index.search(queries, k + 1)
    found = 0
    for row, e, a in zip(rows, exact, approx, strict=True):
        truth = [r for r in e if r != row][:k]
        found += len(set(truth) & {r for r in a if r != row})
    return round(found / (k * len(rows)), 4)
