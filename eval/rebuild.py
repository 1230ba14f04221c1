"""The rebuild benchmark: a full build beside what one changed, added or deleted document costs, and memory across swaps."""

from __future__ import annotations

import dataclasses
import gc
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eval.tables import table as markdown_table, write_report
from index import Embedder, IndexConfig, Retriever, build_index, open_index
from index.build import passages_for
from index.chunk import embedding_input
from index.ingest import corpus_files, read_corpus
from index.store import read_index

MARK = " Round {n} of the rebuild benchmark wrote this sentence."


def _edited(text: str, n: int, everywhere: bool = False) -> str:
    """``text`` with a sentence inserted mid-document, or after every sentence (a document no build has seen)."""
    if everywhere:
        return text.replace(". ", "." + MARK.format(n=n) + " ")
    at = text.find(". ", len(text) // 2)
    at = len(text.rstrip()) if at < 0 else at + 1
    return text[:at] + MARK.format(n=n) + text[at:]


def _rss_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _timed(step: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = step()
    return time.perf_counter() - started, result


def run_rebuild(corpus_dir: Path, work: Path, config: IndexConfig, embedder: Embedder, rounds: int = 3, swaps: int = 5) -> dict[str, Any]:
    """Every step on a copy of ``corpus_dir`` in ``work`` (the original is never touched).

    ``open_index`` is what `cited index` and `cited serve` run, so each step is timed as a user
    meets it: the stat check, the build if one is needed, and reading the published build.
    """
    copy = work / "corpus"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(corpus_dir, copy)
    config = dataclasses.replace(config, corpus_dir=copy, index_dir=work / "index")
    files = corpus_files(copy)
    throughput = _throughput(config, embedder, work)
    full, stored = _timed(lambda: build_index(config, embedder))
    steps: dict[str, list[float]] = {"unchanged": [], "one changed": [], "one added": [], "one deleted": []}
    reuse: dict[str, dict[str, int]] = {}
    for n in range(rounds):
        steps["unchanged"].append(_timed(lambda: open_index(config, embedder))[0])
        target = files[(len(files) // 2 + n) % len(files)]
        target.write_text(_edited(target.read_text(encoding="utf-8"), n), encoding="utf-8")
        seconds, stored = _timed(lambda: open_index(config, embedder))
        steps["one changed"].append(seconds)
        reuse["one changed"] = stored.manifest["reuse"]
        added = copy / f"added-by-benchmark-{n}.txt"
        added.write_text(_edited(files[n % len(files)].read_text(encoding="utf-8"), n, everywhere=True), encoding="utf-8")
        seconds, stored = _timed(lambda: open_index(config, embedder))
        steps["one added"].append(seconds)
        reuse["one added"] = stored.manifest["reuse"]
        added.unlink()
        seconds, stored = _timed(lambda: open_index(config, embedder))
        steps["one deleted"].append(seconds)
        reuse["one deleted"] = stored.manifest["reuse"]
    return {
        "corpus": str(corpus_dir),
        "documents": len(files),
        "passages": len(stored.passages),
        "full_build_s": round(full, 2),
        "throughput": throughput,
        "steps": {name: {"median_s": round(statistics.median(v), 3), "share_of_full": round(statistics.median(v) / full, 4),
                         "reuse": reuse.get(name)} for name, v in steps.items()},
        "process_start_s": _process_start(config),
        "swaps": _swap_memory(config, embedder, swaps),
    }


def _throughput(config: IndexConfig, embedder: Embedder, work: Path) -> dict[str, Any]:
    """Passages per second of a whole build with each way of making sentence vectors, beside bare
    ``encode`` of the same passage inputs (before and after, to bracket machine noise)."""
    texts = [embedding_input(p.title, p.heading, p.text, config.chunk.embed_context)
             for p in passages_for(read_corpus(config.corpus_dir), config, embedder)[0]]
    embedder.encode(texts[:32])  # warm-up
    bare = [_timed(lambda: embedder.encode(texts, batch_size=config.batch_size))[0]]
    builds = {}
    for method in ("encoded", "pooled"):
        scratch = dataclasses.replace(config, index_dir=work / f"throughput-{method}",
                                      chunk=dataclasses.replace(config.chunk, sentence_vectors=method))
        builds[method] = _timed(lambda: build_index(scratch, embedder))[0]
        shutil.rmtree(scratch.index_dir, ignore_errors=True)
    bare.append(_timed(lambda: embedder.encode(texts, batch_size=config.batch_size))[0])
    base = statistics.median(bare)
    return {
        "passages": len(texts),
        "bare_encode_s": round(base, 2),
        "bare_encode_passages_per_s": round(len(texts) / base, 1),
        "builds": {m: {"seconds": round(s, 2), "passages_per_s": round(len(texts) / s, 1), "x_bare_encode": round(base / s, 2)}
                   for m, s in builds.items()},
    }


def _process_start(config: IndexConfig) -> float:
    """Wall time of `cited index` on a fresh index in a new process: interpreter, imports, model load, stat check."""
    command = [sys.executable, "-m", "service.cli", "index", "--corpus-dir", str(config.corpus_dir), "--index-dir", str(config.index_dir)]
    seconds, done = _timed(lambda: subprocess.run(command, capture_output=True, text=True, check=False))
    if done.returncode != 0:
        raise RuntimeError(f"cited index failed: {done.stderr.strip()[-500:]}")
    return round(seconds, 2)


def _swap_memory(config: IndexConfig, embedder: Embedder, swaps: int) -> dict[str, Any]:
    """RSS with one index loaded, then after each switch to a newly published build (as the server swaps).

    If an old index were kept alive, RSS would grow by about one index per swap.
    """
    gc.collect()
    before = _rss_mb()
    live = Retriever(embedder, read_index(config.index_dir))
    gc.collect()
    start = _rss_mb()
    after = []
    for n in range(swaps):
        (config.corpus_dir / "swap.txt").write_text(f"Swap round {n} of the rebuild benchmark.\n", encoding="utf-8")
        live = Retriever(embedder, open_index(config, embedder))  # the watcher's swap: the old one is dropped
        gc.collect()
        after.append(_rss_mb())
    return {"passages": len(live.passages), "rss_mb_before_index": before, "rss_mb_one_index": start, "rss_mb_after_each_swap": after}


def markdown(report: dict[str, Any]) -> str:
    rows = [["full build", f"{report['full_build_s']:.2f}", "1", "", ""]]
    for name, step in report["steps"].items():
        r = step["reuse"] or {}
        reused = f"{r.get('passages_reused', '')} / {r.get('passages_embedded', '')}" if r else "not rebuilt"
        rows.append([name, f"{step['median_s']:.3f}", f"{step['share_of_full']:.4f}", reused,
                     f"{r.get('sentences_reused', '')} / {r.get('sentences_embedded', '')}" if r else ""])
    swaps, speed = report["swaps"], report["throughput"]
    speed_rows = [["bare encode of the passages", f"{speed['bare_encode_s']:.2f}", f"{speed['bare_encode_passages_per_s']:.1f}", "1"]]
    speed_rows += [[f"build, sentences {m}", f"{b['seconds']:.2f}", f"{b['passages_per_s']:.1f}", f"{b['x_bare_encode']:.2f}"]
                   for m, b in speed["builds"].items()]
    return "\n".join([
        "# Rebuild benchmark",
        "",
        f"{report['documents']} documents, {report['passages']} passages, from {report['corpus']}. Medians; each step "
        "is `open_index` (what `cited index` and `cited serve` run): stat check, build if needed, read the published build.",
        "",
        markdown_table(["step", "seconds", "× full build", "passages reused / embedded", "sentences reused / embedded"], rows, align="lrrrr"),
        "",
        f"Build throughput on the {speed['passages']} passages, side by side in one run (a build also cleans, chunks, "
        "indexes BM25, finds duplicates and writes):",
        "",
        markdown_table(["", "seconds", "passages/s", "× bare encode"], speed_rows),
        "",
        f"A new `cited index` process on a fresh index (interpreter, imports, model load, stat check): {report['process_start_s']:.2f} s.",
        "",
        f"Memory across swaps: RSS {swaps['rss_mb_before_index']} MB before the index is loaded, "
        f"{swaps['rss_mb_one_index']} MB with one index of {swaps['passages']} passages; "
        f"after each of {len(swaps['rss_mb_after_each_swap'])} swaps: {', '.join(map(str, swaps['rss_mb_after_each_swap']))} MB.",
        "",
    ])


def write(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    return write_report(out, "rebuild", report, markdown(report))
