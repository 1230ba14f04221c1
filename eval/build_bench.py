"""Build throughput against bare ``encode`` of the same passages, side by side in one run.

    python -m eval.build_bench [CORPUS_DIR] [--rounds N]

Three rows, interleaved round by round so machine noise hits them alike: ``encode`` of every
passage's embedding input and nothing else; the build (chunking, one forward pass per passage
with sentence vectors pooled from it, BM25, duplicates, writing); and the same build with every
sentence encoded again on its own, as builds did before pooling. Every build starts from an
empty index folder, so nothing is reused.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from eval.tables import table
from index import Embedder, IndexConfig, build_index
from index.build import passages_for
from index.chunk import embedding_input


class SentencesEncodedApart:
    """The real embedder, but sentence vectors come from encoding each unique sentence on its
    own after the passages: the second pass pooling removed, kept here to be measured."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder
        self.info, self.model, self.model_length, self.encode = embedder.info, embedder.model, embedder.model_length, embedder.encode

    def encode_pooling_spans(self, texts: Sequence[str], spans, batch_size: int = 32, progress: bool = False):
        vectors = self.encode(texts, batch_size=batch_size, progress=progress)
        wanted = [[text[a:b] for a, b in row] for text, row in zip(texts, spans, strict=True)]
        unique = list(dict.fromkeys(s for row in wanted for s in row))
        found = dict(zip(unique, self.encode(unique, batch_size=batch_size, progress=progress), strict=True))
        return vectors, [[found[s] for s in row] for row in wanted]


def run(corpus_dir: Path, rounds: int) -> str:
    config = IndexConfig(corpus_dir=corpus_dir, index_dir=Path("."))
    embedder = Embedder(config.model)
    passages, _ = passages_for(config, embedder)
    texts = [embedding_input(p.title, p.heading, p.text, config.chunk.embed_context) for p in passages]
    rows = {
        "bare encode of the passages": lambda _: embedder.encode(texts, batch_size=config.batch_size),
        "build, sentences pooled": lambda folder: build_index(_in(config, folder), embedder),
        "build, sentences encoded apart": lambda folder: build_index(_in(config, folder), SentencesEncodedApart(embedder)),
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


def _in(config: IndexConfig, folder: Path) -> IndexConfig:
    return dataclasses.replace(config, index_dir=folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus_dir", nargs="?", type=Path, default=Path("seeds"))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(run(args.corpus_dir, args.rounds))


if __name__ == "__main__":
    main()
