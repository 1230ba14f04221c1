"""Build throughput against bare ``encode`` of the same passages, side by side in one run.

    python -m eval.build_bench [CORPUS_DIR] [--rounds N]

Three rows, interleaved round by round so machine noise hits them alike: ``encode`` of every
passage's embedding input and nothing else; the whole build (cleaning, chunking, embedding,
BM25, duplicates, writing) as configured, sentences encoded on their own after the passages;
and the same build with ``sentence_vectors="pooled"``, one forward pass per passage. Every
build starts from an empty index folder, so nothing is reused.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from eval.tables import table
from index import Embedder, IndexConfig, build_index
from index.build import passages_for
from index.chunk import embedding_input


def run(corpus_dir: Path, rounds: int) -> str:
    config = IndexConfig(corpus_dir=corpus_dir, index_dir=Path("."))
    embedder = Embedder(config.model)
    passages, _ = passages_for(config, embedder)
    texts = [embedding_input(p.title, p.heading, p.text, config.chunk.embed_context) for p in passages]
    rows = {
        "bare encode of the passages": lambda _: embedder.encode(texts, batch_size=config.batch_size),
        "build, sentences encoded apart": lambda folder: build_index(_in(config, folder), embedder),
        "build, sentences pooled": lambda folder: build_index(_in(config, folder, "pooled"), embedder),
    }
    embedder.encode(texts[:32])  # warm-up
    seconds: dict[str, list[float]] = {name: [] for name in rows}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for i, (name, job) in enumerate(rows.items()):
                started = time.perf_counter()
                job(Path(tmp) / f"{r}-{i}")
                seconds[name].append(time.perf_counter() - started)
    base = statistics.median(seconds["bare encode of the passages"])
    lines = [
        [name, f"{statistics.median(s):.2f}", f"{len(texts) / statistics.median(s):.1f}", f"{base / statistics.median(s):.2f}"]
        for name, s in seconds.items()
    ]
    head = (f"{len(texts)} passages from {corpus_dir}, {rounds} rounds, torch threads {torch.get_num_threads()}; "
            f"seconds per round: " + "; ".join(f"{n}: {np.round(s, 2).tolist()}" for n, s in seconds.items()))
    return head + "\n\n" + table(["row", "median s", "passages/s", "× bare encode"], lines, "lrrr")


def _in(config: IndexConfig, folder: Path, sentence_vectors: str = "encoded") -> IndexConfig:
    return dataclasses.replace(config, index_dir=folder, chunk=dataclasses.replace(config.chunk, sentence_vectors=sentence_vectors))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus_dir", nargs="?", type=Path, default=Path("seeds"))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(run(args.corpus_dir, args.rounds))


if __name__ == "__main__":
    main()
