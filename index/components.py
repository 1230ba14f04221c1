"""The parts of a build beside the dense vectors: lexical index, duplicate pairs, sentence table, document texts.

Each is written into its own sub-folder of the build (hashed by the manifest like every file)
and read back once when a Retriever is made.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from index.ann import search_as_built, vector_index
from index.config import EXACT_UP_TO

from index.dedup import DuplicatePair
from index.highlight import SentenceTable
from index.lexical import BM25Index
from index.texts import DocumentTexts, read_texts

SENTENCE_INDEX = "search.faiss"  # only past exact_up_to sentences
SENTENCE_INDEX_ENTRY = "search.json"
LEXICAL = "lexical"
DUPLICATES = "duplicates"
SENTENCES = "sentences"


@dataclass(frozen=True)
class Components:
    lexical: BM25Index
    duplicates: dict[int, list[tuple[int, float]]]  # passage row → [(other row, containment)], best first
    sentences: SentenceTable
    texts: DocumentTexts | None = None  # None: a build from before texts were stored


def write_duplicates(pairs: list[DuplicatePair]):
    def write(folder: Path) -> None:
        with open(folder / "pairs.jsonl", "w", encoding="utf-8") as fh:
            for pair in pairs:
                fh.write(json.dumps({"a": pair.a, "b": pair.b, "containment": pair.containment}) + "\n")

    return write


def write_sentences(starts: list[int], ends: list[int], members: list[list[int]], vectors: np.ndarray, origins: list[int],
                    exact_up_to: int = EXACT_UP_TO):
    """``origins[i]``: the passage row sentence i's vector is pooled from (index.pooling.origins), kept
    so a rebuild finds a pooled vector again by that passage's input (index.reuse).

    Past ``exact_up_to`` sentences their search index is approximate like the passages' (index.ann)
    and stored, since training it is too slow to repeat on every load; below, the vectors are
    scanned exactly (index.highlight.SentenceTable).
    """

    def write(folder: Path) -> None:
        if len(vectors) > exact_up_to:
            searchable, entry = vector_index(vectors, exact_up_to)
            faiss.write_index(searchable, str(folder / SENTENCE_INDEX))
            (folder / SENTENCE_INDEX_ENTRY).write_text(json.dumps(entry, indent=1) + "\n", encoding="utf-8")
        offsets = np.cumsum([0] + [len(m) for m in members]).astype(np.int64)
        flat = np.asarray([i for m in members for i in m], dtype=np.int64)
        for name, array in (
            ("starts", np.asarray(starts, dtype=np.int64)),
            ("ends", np.asarray(ends, dtype=np.int64)),
            ("member_offsets", offsets),
            ("member_ids", flat),
            ("vectors", np.ascontiguousarray(vectors, dtype=np.float32)),
            ("origins", np.asarray(origins, dtype=np.int64)),
        ):
            np.save(folder / f"{name}.npy", array, allow_pickle=False)

    return write


def read_components(build: Path) -> Components:
    duplicates: dict[int, list[tuple[int, float]]] = {}
    with open(build / DUPLICATES / "pairs.jsonl", encoding="utf-8") as fh:
        for line in fh:
            pair = json.loads(line)
            duplicates.setdefault(pair["a"], []).append((pair["b"], pair["containment"]))
            duplicates.setdefault(pair["b"], []).append((pair["a"], pair["containment"]))
    for partners in duplicates.values():
        partners.sort(key=lambda p: (-p[1], p[0]))
    return Components(BM25Index.load(build / LEXICAL), duplicates, read_sentences(build), read_texts(build))


def read_sentences(build: Path) -> SentenceTable:
    arrays = {name: np.load(build / SENTENCES / f"{name}.npy", allow_pickle=False) for name in
              ("starts", "ends", "member_offsets", "member_ids", "vectors")}
    offsets, ids = arrays["member_offsets"], arrays["member_ids"]
    members = [ids[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
    search_index = None
    if (build / SENTENCES / SENTENCE_INDEX).is_file():
        search_index = faiss.read_index(str(build / SENTENCES / SENTENCE_INDEX))
        search_as_built(search_index, json.loads((build / SENTENCES / SENTENCE_INDEX_ENTRY).read_text(encoding="utf-8")))
    return SentenceTable(arrays["starts"], arrays["ends"], members, arrays["vectors"], search_index)


def read_sentence_origins(build: Path) -> np.ndarray:
    return np.load(build / SENTENCES / "origins.npy", allow_pickle=False)
