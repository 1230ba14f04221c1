"""The engines benchmark: the local build and the Ray build of one corpus, side by side in one run.

Two measures per engine, alternated round by round so machine noise falls on both alike:

- **embedding**: the build's embedding step alone (index.pooling over the corpus's passages and
  sentences, nothing reused), with Ray already up. This is the throughput a cluster scales, and
  gives the per-core cost the capacity page projects from.
- **build**: the whole ``build_index`` into an empty folder, as `cited index --engine ...` runs it.
  For Ray that includes starting a private Ray and stopping it (the fixed cost of one command).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from eval.tables import table as markdown_table, write_report
from index import Embedder, IndexConfig, build_index
from index.build import passages_for
from index.chunk import embedding_input
from index.highlight import sentence_spans
from index.ingest import read_corpus
from index.pooling import embed_apart, embed_pooled
from index.reuse import POOLED, KnownVectors

ENGINES = ("local", "ray")


def run_engines(config: IndexConfig, embedder: Embedder, work: Path, rounds: int = 3, engines: Sequence[str] = ENGINES,
                builds: bool = True, progress: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Medians over ``rounds`` of each engine's embedding step and whole build of ``config.corpus_dir``."""
    corpus = read_corpus(config.corpus_dir, config.files)
    passages, documents = passages_for(corpus, config, embedder)
    texts = [embedding_input(p.title, p.heading, p.text, config.chunk.embed_context) for p in passages]
    sentences, members = sentence_spans(passages)
    embed = embed_pooled if config.chunk.sentence_vectors == POOLED else embed_apart
    embedder.encode(texts[:32])  # warm-up: the first forward pass allocates
    cpus = os.cpu_count() or 1
    import torch

    local_threads = torch.get_num_threads()
    seconds: dict[str, dict[str, list[float]]] = {e: {"embedding": [], "build": []} for e in engines}
    encoders: dict[str, Any] = {"local": embedder}
    with ExitStack() as stack:
        if "ray" in engines:  # one private Ray for the embedding rounds; the build rounds time its start
            from index.ray_embed import RayEmbedder, ray_session

            stack.enter_context(ray_session(None))
            encoders["ray"] = RayEmbedder(embedder)
        for n in range(rounds):
            for engine in engines:
                started = time.perf_counter()
                embed(encoders[engine], passages, texts, sentences, members, KnownVectors(), config.batch_size)
                seconds[engine]["embedding"].append(time.perf_counter() - started)
                progress(f"round {n + 1}: {engine} embedding {seconds[engine]['embedding'][-1]:.1f} s")
    for n in range(rounds if builds else 0):  # whole builds with no Ray left running: the Ray build starts its own, as the command does
        for engine in engines:
            scratch = dataclasses.replace(config, index_dir=work / f"index-{engine}", engine=engine, ray_address=None)
            shutil.rmtree(scratch.index_dir, ignore_errors=True)
            started = time.perf_counter()
            build_index(scratch, embedder)
            seconds[engine]["build"].append(time.perf_counter() - started)
            shutil.rmtree(scratch.index_dir, ignore_errors=True)
            progress(f"round {n + 1}: {engine} build {seconds[engine]['build'][-1]:.1f} s")
    results = {}
    for engine in engines:
        embedding = statistics.median(seconds[engine]["embedding"])
        build = statistics.median(seconds[engine]["build"]) if builds else None
        cores = local_threads if engine == "local" else encoders[engine].actors * encoders[engine].cpus_per_actor
        results[engine] = {
            "cores": cores,
            "embedding_s": round(embedding, 2),
            "embedding_passages_per_s": round(len(passages) / embedding, 1),
            # the capacity page's unit: core-seconds of embedding per 1,000 passages (their sentences included)
            "embedding_core_s_per_1k_passages": round(embedding * cores * 1000 / len(passages), 1),
            "build_s": round(build, 2) if build else None,
            "build_passages_per_s": round(len(passages) / build, 1) if build else None,
            "rounds": {k: [round(s, 2) for s in v] for k, v in seconds[engine].items()},
        }
    report = {
        "corpus": str(config.corpus_dir),
        "documents": len(documents),
        "passages": len(passages),
        "sentences": len(sentences),
        "sentence_vectors": config.chunk.sentence_vectors,
        "batch_size": config.batch_size,
        "cpus": cpus,
        "rounds": rounds,
        "engines": results,
    }
    if "local" in results and "ray" in results:
        report["ray_over_local"] = {
            "embedding_throughput": round(results["ray"]["embedding_passages_per_s"] / results["local"]["embedding_passages_per_s"], 2),
            "build_throughput": round(results["ray"]["build_passages_per_s"] / results["local"]["build_passages_per_s"], 2) if builds else None,
        }
    return report


def markdown(report: dict[str, Any]) -> str:
    rows = [[engine, r["cores"], f"{r['embedding_s']:.2f}", f"{r['embedding_passages_per_s']:.1f}", f"{r['embedding_core_s_per_1k_passages']:.1f}",
             _num(r["build_s"], 2), _num(r["build_passages_per_s"], 1)] for engine, r in report["engines"].items()]
    lines = [
        "# Engines benchmark",
        "",
        f"{report['documents']} documents, {report['passages']} passages, {report['sentences']} sentences from {report['corpus']} "
        f"(sentence vectors {report['sentence_vectors']}, batch {report['batch_size']}); {report['cpus']} CPUs; "
        f"medians of {report['rounds']} rounds, engines alternated.",
        "",
        markdown_table(["engine", "cores", "embedding s", "passages/s", "core-s per 1k passages", "build s", "build passages/s"], rows),
        "",
        "Embedding: the build's embedding step alone (passages and their sentences, nothing reused), Ray already running. "
        "Build: the whole `cited index` build into an empty folder; the Ray build starts and stops its own local Ray.",
    ]
    if ratio := report.get("ray_over_local"):
        build = "not run" if ratio["build_throughput"] is None else f"{ratio['build_throughput']:.2f}x"
        lines += ["", f"Ray over local throughput: embedding {ratio['embedding_throughput']:.2f}x, whole build {build}."]
    return "\n".join(lines) + "\n"


def _num(value: float | None, digits: int) -> str:
    return "not run" if value is None else f"{value:.{digits}f}"


def write(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    return write_report(out, "engines", report, markdown(report))
