"""The scale benchmark: the passage index and BM25 at 10k, 100k and 1M passages, one fresh process per size.

No corpus of a million passages ships with cited, so both sides are synthetic, built from real text:

- **Vectors.** Real all-MiniLM-L6-v2 embeddings of the seed passages and of Cranfield's abstracts
  and queries (the *anchors*, encoded once per run) are the centres of a mixture: each synthetic
  vector is a Dirichlet-weighted blend of three random anchors plus Gaussian noise drawn with the
  anchors' own covariance, normalised. Uniform random vectors in 384 dimensions have no
  neighbours worth the name (every cosine is about 0), which makes an approximate index look far
  worse than on any real corpus; real embeddings are anisotropic and clustered by topic, and this
  keeps both. Blending three anchors, not one, fills the space between topics, so the benchmark
  is not the easy case of tight balls around 1,767 points. Questions are held-out draws of the
  same mixture.
- **Text.** Each passage is 3–6 random sentences of the seed passages, so term statistics are
  those of real English news text. Many passages share sentences, so BM25 scores tie often;
  the latency includes settling those ties (index.ties), as the service's does.

Each size runs in a child process so its peak RSS is its own (a high-water mark never goes down).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from eval.tables import table as markdown_table, write_report
from index.ann import KINDS, search_as_built, vector_index

SIZES = (10_000, 100_000, 1_000_000)
K = 10
PARTS = 3  # anchors blended per vector, with Dirichlet(1, 1, 1) weights: a continuum between topics
NOISE = 0.3  # in units of the anchors' spread: at 1,400 vectors the median nearest-neighbour cosine is 0.74, Cranfield's own is 0.75
CHUNK = 10_000  # vectors generated per step, to bound the generator's own memory
CORPUS_SEED, QUERY_SEED, TEXT_SEED = 1, 2, 3
WARMUP = 5


# -- data ----------------------------------------------------------------------------------------


def anchor_texts(seed_passages: Sequence[str], cranfield: Path | None) -> list[str]:
    texts = list(seed_passages)
    if cranfield is not None:
        for name, field in (("corpus.jsonl", "text"), ("queries.jsonl", "text")):
            with open(cranfield / name, encoding="utf-8") as fh:
                texts.extend(t for line in fh if line.strip() and (t := json.loads(line)[field].strip()))
    return texts


def synthetic_vectors(anchors: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` unit vectors around the anchors (see the module docstring); the same seed gives the same vectors."""
    rng = np.random.default_rng(seed)
    anchors = np.asarray(anchors, dtype=np.float32)
    centred = anchors - anchors.mean(axis=0)
    # noise ~ N(0, cov(anchors)): z @ (U·sqrt(S)) via the SVD of the centred anchors
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    shape = (vt.T * (s / np.sqrt(len(anchors)))).T.astype(np.float32)
    out = np.empty((n, anchors.shape[1]), dtype=np.float32)
    for start in range(0, n, CHUNK):
        m = min(CHUNK, n - start)
        weights = rng.dirichlet(np.ones(PARTS), size=m).astype(np.float32)
        v = sum(weights[:, j : j + 1] * anchors[rng.integers(len(anchors), size=m)] for j in range(PARTS))
        v = v + NOISE * (rng.standard_normal((m, len(shape)), dtype=np.float32) @ shape)
        out[start : start + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def synthetic_texts(sentences: Sequence[str], n: int, seed: int = TEXT_SEED) -> list[str]:
    rng = np.random.default_rng(seed)
    counts = rng.integers(3, 7, size=n)
    picks = rng.integers(len(sentences), size=int(counts.sum()))
    texts, at = [], 0
    for c in counts.tolist():
        texts.append(" ".join(sentences[i] for i in picks[at : at + c]))
        at += c
    return texts


# -- one size, in a child process ------------------------------------------------------------------


def _peak_rss_mb() -> float:
    """This process's high-water RSS. Not ``ru_maxrss``: Linux carries that across exec from the
    forking parent, so a child of a process holding the model would report the model's size."""
    return _status("VmHWM") or round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _forget_peak() -> None:
    """Reset the high-water mark (Linux ≥ 4.0), so the generator's scratch arrays are not taken
    for the build's: the peak then counts the data as a real build holds it, plus the build."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _rss_mb() -> float:
    return _status("VmRSS") or 0.0


def _status(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)  # kB
    except OSError:
        pass
    return None


def _searched(index: faiss.Index, asked: np.ndarray) -> tuple[list[float], np.ndarray]:
    """Milliseconds per question asked one at a time, and the rows of all of them asked at once."""
    ms = _timed(lambda i: index.search(asked[i : i + 1], K), len(asked))
    return ms, index.search(asked, K)[1]


def _percentiles(ms: Sequence[float]) -> tuple[float, float]:
    return round(statistics.median(ms), 3), round(float(np.percentile(ms, 99, method="linear")), 3)


def _timed(search: Callable[[int], Any], count: int) -> list[float]:
    for i in range(min(WARMUP, count)):
        search(i)
    ms = []
    for i in range(count):
        started = time.perf_counter()
        search(i)
        ms.append((time.perf_counter() - started) * 1000)
    return ms


def measure_vectors(anchors: np.ndarray, n: int, queries: int, exact_up_to: int, kind: str | None, folder: Path) -> dict[str, Any]:
    """Build, write, read back and search one index of ``n`` synthetic vectors; compare with exact."""
    vectors = synthetic_vectors(anchors, n, CORPUS_SEED)
    asked = synthetic_vectors(anchors, queries, QUERY_SEED)
    _forget_peak()
    started = time.perf_counter()
    index, entry = vector_index(vectors, exact_up_to, kind)
    build_s = time.perf_counter() - started
    peak = _peak_rss_mb()  # the vectors held by the builder, as in a real build, plus the index
    path = folder / "faiss.index"
    faiss.write_index(index, str(path))
    del index
    loaded = faiss.read_index(str(path))
    search_as_built(loaded, entry)
    ms, approx = _searched(loaded, asked)
    del loaded  # free the index before the exact one is built beside the vectors
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    del vectors
    exact_ms, truth = _searched(exact, asked)
    recall = np.mean([len(set(a.tolist()) & set(t.tolist())) / K for a, t in zip(approx, truth, strict=True)])
    p50, p99 = _percentiles(ms)
    size = path.stat().st_size
    return {
        "passages": n,
        "index": entry["index"],
        "params": {k: v for k, v in entry.items() if k not in ("index", "metric", "ntotal")},
        "build_s": round(build_s, 2),
        "peak_rss_mb": peak,
        "disk_mb": round(size / 2**20, 1),
        "bytes_per_passage": round(size / n, 1),
        "search_p50_ms": p50,
        "search_p99_ms": p99,
        "exact_p50_ms": _percentiles(exact_ms)[0],
        f"recall_at_{K}": round(float(recall), 4),
    }


def measure_lexical(sentences: Sequence[str], questions: Sequence[str], n: int, queries: int) -> dict[str, Any]:
    from index.lexical import BM25Index

    texts = synthetic_texts(sentences, n)
    _forget_peak()
    started = time.perf_counter()
    index = BM25Index.build(texts)
    build_s = time.perf_counter() - started
    del texts
    ms = _timed(lambda i: index.search_batch([questions[i % len(questions)]], K), queries)
    p50, p99 = _percentiles(ms)
    return {"passages": n, "build_s": round(build_s, 2), "peak_rss_mb": _peak_rss_mb(), "search_p50_ms": p50, "search_p99_ms": p99}


def _child(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    faiss.omp_set_num_threads(spec["threads"])
    start = _rss_mb()  # the interpreter with numpy, FAISS and bm25s loaded
    folder = Path(spec["folder"])
    if spec["side"] == "vectors":
        result = measure_vectors(np.load(folder / "anchors.npy"), spec["n"], spec["queries"], spec["exact_up_to"], spec["kind"], folder)
    else:
        data = json.loads((folder / "text.json").read_text(encoding="utf-8"))
        result = measure_lexical(data["sentences"], data["questions"], spec["n"], spec["queries"])
    print(json.dumps({**result, "start_rss_mb": start}))


def _in_child(spec: dict[str, Any], timeout: float | None) -> dict[str, Any] | str:
    """One measurement in a fresh interpreter; its result, or why there is none."""
    spec_path = Path(spec["folder"]) / f"spec-{spec['side']}-{spec['n']}.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    done = _run_child(spec_path, timeout)
    if isinstance(done, str):
        return done
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()
        return f"failed: {last[-1] if last else 'exit ' + str(done.returncode)}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def _run_child(spec_path: Path, timeout: float | None) -> subprocess.CompletedProcess | str:
    """Run :func:`_child` with ``index`` as a bare namespace, so ``index/__init__`` (which loads
    the model's runtime, torch, some 800 MB) is never run: the child holds FAISS, bm25s and
    numpy only, and its peak RSS is the index's, not the model's."""
    root = Path(__file__).resolve().parent.parent
    code = (
        "import sys, types; bare = types.ModuleType('index'); "
        f"bare.__path__ = [{str(root / 'index')!r}]; sys.modules['index'] = bare; "
        f"from eval.scale import _child; _child({str(spec_path)!r})"
    )
    try:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, cwd=root)
    except subprocess.TimeoutExpired:
        return f"not finished within {timeout:.0f} s"


# -- the run -------------------------------------------------------------------------------------


def run_scale(
    anchors: np.ndarray,
    sentences: Sequence[str],
    questions: Sequence[str],
    sizes: Sequence[int] = SIZES,
    queries: int = 200,
    exact_up_to: int = 20_000,
    kinds: Sequence[str | None] = (None,),
    lexical_timeout: float | None = 1800.0,
    threads: int | None = None,
    anchors_from: str = "",
    progress: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """Every size in turn: the vector index (once per kind; None lets the size decide), then BM25.

    ``lexical_timeout`` bounds each BM25 child: a size that does not finish is reported as such.
    """
    if unknown := [k for k in kinds if k is not None and k not in KINDS]:
        raise ValueError(f"unknown index kind {unknown[0]!r}")
    threads = threads or _cpus()
    vectors: list[dict[str, Any]] = []
    lexical: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cited-scale-") as tmp:
        folder = Path(tmp)
        np.save(folder / "anchors.npy", np.asarray(anchors, dtype=np.float32))
        (folder / "text.json").write_text(json.dumps({"sentences": list(sentences), "questions": list(questions)}), encoding="utf-8")
        for n in sizes:
            common = {"n": n, "queries": queries, "folder": tmp, "threads": threads}
            for kind in kinds:
                v = _in_child({**common, "side": "vectors", "exact_up_to": exact_up_to, "kind": kind}, None)
                if isinstance(v, str):
                    raise RuntimeError(f"vectors at {n}: {v}")
                vectors.append(v)
                progress(f"vectors {n}: {v['index']}, build {v['build_s']} s, p50 {v['search_p50_ms']} ms, recall@{K} {v[f'recall_at_{K}']}")
            b = _in_child({**common, "side": "lexical"}, lexical_timeout)
            lexical.append(b if isinstance(b, dict) else {"passages": n, "missing": b})
            progress(f"bm25 {n}: {b if isinstance(b, str) else 'build ' + str(b['build_s']) + ' s, p50 ' + str(b['search_p50_ms']) + ' ms'}")
    return {
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": _cpus(), "faiss_threads": threads, "python": platform.python_version(), "faiss": faiss.__version__},
        "data": {
            "vectors": f"{len(anchors)} real embeddings ({anchors_from}) blended {PARTS} at a time (Dirichlet weights) "
            f"plus Gaussian noise with their covariance ×{NOISE}, normalised",
            "queries": f"{queries} held-out draws of the same mixture, one per search call; k={K}",
            "text": f"3–6 random sentences of {len(sentences)} seed sentences per passage; {len(questions)} seed questions",
        },
        "exact_up_to": exact_up_to,
        "kinds": [k or "by size" for k in kinds],
        "vectors": vectors,
        "lexical": lexical,
    }


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


VECTOR_COLUMNS = ("passages", "index", "build s", "peak RSS MB", "peak − start MB", "disk MB", "bytes/passage",
                  "search p50 ms", "search p99 ms", "exact p50 ms", f"recall@{K}")
LEXICAL_COLUMNS = ("passages", "BM25 build s", "peak RSS MB", "peak − start MB", "search p50 ms", "search p99 ms")


def _growth(row: dict[str, Any]) -> float:
    return round(row["peak_rss_mb"] - row["start_rss_mb"], 1)


def _params(row: dict[str, Any]) -> str:
    p = row["params"]
    if "nprobe" in p:
        return f"IVF{p['nlist']}, nprobe {p['nprobe']}"
    if "ef_search" in p:
        return f"HNSW{p['m']}, efSearch {p['ef_search']}"
    return "flat (exact)"


def markdown(report: dict[str, Any]) -> str:
    vector_rows = [
        [f"{r['passages']:,}", _params(r), r["build_s"], r["peak_rss_mb"], _growth(r), r["disk_mb"], r["bytes_per_passage"],
         r["search_p50_ms"], r["search_p99_ms"], r["exact_p50_ms"], r[f"recall_at_{K}"]]
        for r in report["vectors"]
    ]
    lexical_rows = [
        [f"{r['passages']:,}", *(["–"] * 5 if "missing" in r else [r["build_s"], r["peak_rss_mb"], _growth(r), r["search_p50_ms"], r["search_p99_ms"]])]
        for r in report["lexical"]
    ]
    missing = [f"BM25 at {r['passages']:,}: {r['missing']}." for r in report["lexical"] if "missing" in r]
    m, d = report["machine"], report["data"]
    return "\n".join([
        "# Scale benchmark",
        "",
        f"{report['created_at']}, {m['cpus']} CPUs (FAISS threads {m['faiss_threads']}), FAISS {m['faiss']}; "
        f"exact up to {report['exact_up_to']:,} passages; index: {', '.join(report['kinds'])}.",
        f"Vectors: {d['vectors']}. Questions: {d['queries']}. Search time excludes encoding the question. "
        "Each size runs in a fresh process; peak − start is what the size added to the interpreter's own footprint.",
        "",
        markdown_table(VECTOR_COLUMNS, vector_rows, align="ll" + "r" * (len(VECTOR_COLUMNS) - 2)),
        "",
        f"BM25 (index.lexical, top {K}): {d['text']}.",
        "",
        markdown_table(LEXICAL_COLUMNS, lexical_rows),
        *(["", *missing] if missing else []),
        "",
    ])


def write(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    return write_report(out, "scale", report, markdown(report))
