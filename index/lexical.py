"""Lexical retrieval with BM25 (bm25s): the hybrid ranker's second list, and the plain baseline.

This module owns lexical retrieval: its tokenization (lower-case, bm25s's word regex,
English stopwords, Snowball English stemmer), its parameters (Lucene BM25, k1=1.5, b=0.75,
the setting of the reference numbers in ``eval/cranfield/README.md``) and its on-disk
format. It speaks in row indices of the texts it was built from; mapping rows to doc ids
is the caller's business, so the same index serves a BEIR corpus or the service's passages.

Tokenization must be identical at index and query time, or query terms silently miss the
vocabulary. So the tokenizer settings are stored next to the index (as JSON, including the
literal stopword list, so a bm25s upgrade that edits its list cannot change a saved index's
behaviour) and a loaded index tokenizes queries from that file, never from defaults.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

from index.ties import Key, top

# bm25s sets its own logger to DEBUG on import, so its debug lines pass whatever level the
# application chose; handing the decision back to the application's configuration.
logging.getLogger("bm25s").setLevel(logging.NOTSET)

__all__ = ["BM25Index"]

K1 = 1.5
B = 0.75
METHOD = "lucene"
STEMMER_LANGUAGE = "english"
TOKEN_PATTERN = r"(?u)\b\w\w+\b"  # bm25s's (and scikit-learn's) default, pinned here

_TOKENIZER_FILE = "tokenizer.json"
_FORMAT = "index.lexical/1"


class BM25Index:
    """A bm25s index plus the exact tokenizer it was built with.

    Construct with :meth:`build` or :meth:`load`; ``__init__`` is the shared plumbing.
    """

    def __init__(self, retriever: bm25s.BM25, stopwords: Sequence[str], stemmer_language: str):
        if stemmer_language not in Stemmer.algorithms():
            raise ValueError(f"unknown stemmer {stemmer_language!r}")
        self._retriever = retriever
        self._stopwords = list(stopwords)
        self._stemmer_language = stemmer_language
        self._stemmer = Stemmer.Stemmer(stemmer_language)

    @classmethod
    def build(cls, texts: Sequence[str]) -> BM25Index:
        """Index ``texts``; row ``i`` of every result refers to ``texts[i]``.

        Empty texts are allowed (Cranfield has two) and simply never match.
        """
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, not a single string")
        if len(texts) == 0:
            raise ValueError("cannot build a BM25 index over no texts")
        # The literal list (what stopwords="en" means), so save() stores what was actually used.
        stopwords = list(STOPWORDS_EN)
        index = cls(bm25s.BM25(k1=K1, b=B, method=METHOD), stopwords, STEMMER_LANGUAGE)
        tokens = index._tokenize(list(texts), return_ids=True)
        index._retriever.index(tokens, show_progress=False)
        return index

    @classmethod
    def analyser(cls) -> BM25Index:
        """An empty index whose :meth:`terms` are those :meth:`build` would index with (for another engine)."""
        return cls(bm25s.BM25(k1=K1, b=B, method=METHOD), list(STOPWORDS_EN), STEMMER_LANGUAGE)

    def __len__(self) -> int:
        return int(self._retriever.scores["num_docs"])

    def _tokenize(self, texts: list[str], return_ids: bool):
        # The one tokenization path for documents and queries alike.
        return bm25s.tokenize(
            texts,
            lower=True,
            token_pattern=TOKEN_PATTERN,
            stopwords=self._stopwords,
            stemmer=self._stemmer,
            return_ids=return_ids,
            show_progress=False,
        )

    def terms(self, texts: Sequence[str]) -> list[list[str]]:
        """Each text's terms as retrieval sees them (lower case, stopwords out, stemmed), in order."""
        return [list(t) for t in self._tokenize(list(texts), return_ids=False)] if len(texts) else []

    def document_frequency(self, term: str) -> int:
        """How many indexed texts hold ``term`` (a term as :meth:`terms` gives it); 0 if none does."""
        at = self._retriever.vocab_dict.get(term)
        if at is None:
            return 0
        indptr = self._retriever.scores["indptr"]  # one column per term: its non-zero rows are the texts holding it
        return int(indptr[at + 1] - indptr[at])

    def search_batch(self, queries: Sequence[str], k: int, key: Key = None) -> list[list[tuple[int, float]]]:
        """Top ``k`` (row, score) per query, best first.

        ``k`` larger than the corpus means "all that match". Rows scoring 0 -- no query term in
        the document -- are dropped: they are not matches, and keeping them would hand the
        metrics an arbitrary order of non-matches. Scores within :data:`index.ties.TIE_TOLERANCE`
        are ordered by ``key[row]`` (default: the row), and a tie at the k-th place is settled before the cut, so results
        do not depend on a partial sort or on the last bits of a float sum.
        """
        if isinstance(queries, str):
            raise TypeError("queries must be a sequence of strings, not a single string")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        results: list[list[tuple[int, float]]] = []
        for tokens in self._tokenize(list(queries), return_ids=False) if queries else []:
            # A query with no token in the vocabulary (only stopwords, punctuation or unseen
            # words) matches nothing; bm25s would score every row 0.
            ids = self._retriever.get_tokens_ids(tokens)
            if not ids:
                results.append([])
                continue
            scores = self._retriever.get_scores(ids)
            matching = np.flatnonzero(scores > 0)
            results.append(top(scores[matching], k, key, rows=matching))
        return results

    def save(self, directory: Path) -> None:
        """Write the index with bm25s's own format (``.npy`` arrays, JSON vocab and params,
        no pickle) plus ``tokenizer.json``."""
        directory = Path(directory)
        self._retriever.save(directory, allow_pickle=False, show_progress=False)
        config = {
            "format": _FORMAT,
            "bm25s_version": bm25s.__version__,
            "lower": True,
            "token_pattern": TOKEN_PATTERN,
            "stemmer": self._stemmer_language,
            "stopwords": self._stopwords,
        }
        (directory / _TOKENIZER_FILE).write_text(
            json.dumps(config, ensure_ascii=False, indent=1), encoding="utf-8"
        )

    @classmethod
    def load(cls, directory: Path) -> BM25Index:
        """Read an index written by :meth:`save`; refuses other tokenizer settings."""
        directory = Path(directory)
        config_path = directory / _TOKENIZER_FILE
        if not config_path.is_file():
            raise FileNotFoundError(f"{config_path}: not found (not a saved BM25Index?)")
        config = json.loads(config_path.read_text(encoding="utf-8"))
        if config.get("format") != _FORMAT:
            raise ValueError(f"{config_path}: unsupported format {config.get('format')!r}")
        if config["lower"] is not True or config["token_pattern"] != TOKEN_PATTERN:
            # _tokenize pins these; an index built otherwise cannot be queried correctly.
            raise ValueError(f"{config_path}: tokenizer settings differ from this version's")
        retriever = bm25s.BM25.load(directory, allow_pickle=False, mmap=False, load_corpus=False)
        return cls(retriever, config["stopwords"], config["stemmer"])
