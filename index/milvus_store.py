"""The scale-out store: one Milvus collection per build, holding the dense vectors and BM25 over the passages' text.

The same code speaks to Milvus Lite (a local file, the default: ``<index_dir>/milvus.db``) and to a
Milvus standalone or distributed cluster (``milvus_uri=http://host:19530``). pymilvus is imported
here only, so the default install and ``cited --help`` never load it.

Collection ``cited_<build folder name>``, written by ``cited index`` before CURRENT names the build
(so a replica that sees CURRENT finds its collection) and dropped when tidying removes the build:

    row     INT64 primary key: the passage's row in passages.jsonl
    vector  FLOAT_VECTOR, IP on unit vectors (= cosine, as FAISS), FLAT: exact like the FAISS default
    text    VARCHAR, analysed (analyzer()) -- the words of the text bm25s indexes (title and heading when embedded)
    sparse  SPARSE_FLOAT_VECTOR made from text by Milvus's BM25 function (k1, b as bm25s's)
    doc_id, source, start, end: the citation of the passage, for filters and inspection

The build folder stays the source of truth: passages, sentences, document texts and the answer's
term statistics are read from it; Milvus answers the two candidate searches and vectors by row.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from index.errors import CitedError
from index.lexical import B, K1, STEMMER_LANGUAGE, TOKEN_PATTERN
from index.ties import TIE_SLACK, Key, cut_is_settled, top

if TYPE_CHECKING:
    from index.store import StoredIndex
    from index.types import Passage

INSTALL = "pip install -e '.[milvus]'"
MAX_TOPK = 16_384  # Milvus's limit on one search's limit
INSERT_BATCH = 1_000
TEXT_BYTES = 65_535  # Milvus's largest VARCHAR
CONNECT_TIMEOUT_S = 10.0


def analyzer() -> dict[str, Any]:
    """Milvus's analyser, set as index.lexical's: lowercase, bm25s's English stopword list
    (literally), Snowball English stemmer, in that order. Its input is :func:`words`."""
    from bm25s.stopwords import STOPWORDS_EN

    return {
        "tokenizer": "standard",
        "filter": ["lowercase", {"type": "stop", "stop_words": sorted(STOPWORDS_EN)}, {"type": "stemmer", "language": STEMMER_LANGUAGE}],
    }


_WORD = re.compile(TOKEN_PATTERN)


def words(text: str) -> str:
    """``text`` as bm25s splits it (index.lexical's word pattern), one space between words.

    Milvus's standard tokenizer splits at Unicode word boundaries, which differ from the regex
    on text this corpus is full of: ``Taliban’s`` (a curly apostrophe) stays one token the
    stemmer does not reduce to ``taliban``, ``U.S.`` and ``1,000`` stay one token, and single
    letters and digits are kept. Measured on the seeds, those differences moved every question's
    BM25 list and two questions' hit@3 (docs/stores.md). Split here, at insert and at query time
    alike, the standard tokenizer only finds the spaces, so both engines count the same terms.
    """
    return " ".join(_WORD.findall(text))


def collection_name(build: str) -> str:
    """The collection of a build folder (``build-20260101T000000-abcd1234`` → ``cited_build_20260101T000000_abcd1234``)."""
    return "cited_" + re.sub(r"[^0-9A-Za-z_]", "_", build)


class MilvusUnavailable(CitedError):
    """The milvus extra is not installed, or no Milvus answers at the URI."""


def connect(uri: str, token: str | None = None) -> Any:
    """A MilvusClient for ``uri``; a one-line MilvusUnavailable when the extra is missing or nothing answers."""
    try:
        from pymilvus import MilvusClient
    except ImportError:
        raise MilvusUnavailable(f"store=milvus needs the milvus extra (pymilvus, milvus-lite): {INSTALL}") from None
    try:
        return MilvusClient(uri=uri, token=token or "", timeout=CONNECT_TIMEOUT_S)
    except Exception as exc:  # pymilvus raises MilvusException, grpc errors or ConnectionError for the same fault
        raise MilvusUnavailable(f"cannot reach Milvus at {uri}: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or exc.__class__.__name__
    return " ".join(str(message).split())[:300]


class MilvusWriter:
    """Writes a build's collection (before it is published) and drops those of removed builds."""

    def __init__(self, uri: str, token: str | None = None) -> None:
        self.uri = uri
        self.client = connect(uri, token)

    def write(self, build: str, passages: Sequence[Passage], vectors: np.ndarray, texts: Sequence[str]) -> str:
        from pymilvus import DataType, Function, FunctionType

        name = collection_name(build)
        try:
            if self.client.has_collection(name):
                self.client.drop_collection(name)
            schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("row", DataType.INT64, is_primary=True)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=int(vectors.shape[1]))
            schema.add_field("text", DataType.VARCHAR, max_length=TEXT_BYTES, enable_analyzer=True, analyzer_params=analyzer())
            schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
            schema.add_field("doc_id", DataType.VARCHAR, max_length=1024)
            schema.add_field("source", DataType.VARCHAR, max_length=4096)
            schema.add_field("start", DataType.INT64)
            schema.add_field("end", DataType.INT64)
            schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"], output_field_names=["sparse"]))
            index = self.client.prepare_index_params()
            index.add_index("vector", index_type="FLAT", metric_type="IP")
            index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params={"bm25_k1": K1, "bm25_b": B})
            self.client.create_collection(name, schema=schema, index_params=index)
            vectors = np.ascontiguousarray(vectors, dtype=np.float32)
            for at in range(0, len(passages), INSERT_BATCH):
                self.client.insert(name, [
                    {"row": row, "vector": vectors[row].tolist(), "text": _fit(words(texts[row])), "doc_id": p.doc_id, "source": p.source,
                     "start": p.start, "end": p.end}
                    for row, p in enumerate(passages[at : at + INSERT_BATCH], at)
                ])
            self.client.flush(name)
            self.client.load_collection(name)
        except CitedError:
            raise
        except Exception as exc:
            self.drop([build])
            raise MilvusUnavailable(f"cannot write the Milvus collection {name} at {self.uri}: {_one_line(exc)}") from None
        return name

    def drop(self, builds: Sequence[str]) -> None:
        """Best effort, like tidying the folders: a collection left behind costs space, not correctness."""
        for build in builds:
            try:
                if self.client.has_collection(collection_name(build)):
                    self.client.drop_collection(collection_name(build))
            except Exception:  # noqa: BLE001 -- never fatal, as index.store.tidy
                pass


def _fit(text: str) -> str:
    """``text`` cut to Milvus's VARCHAR limit (bytes) at a character boundary; passages are far shorter."""
    data = text.encode("utf-8")
    return text if len(data) <= TEXT_BYTES else data[:TEXT_BYTES].decode("utf-8", errors="ignore")


class MilvusStore:
    """A build's collection, searched for dense and lexical candidates and read for vectors by row."""

    name = "milvus"

    def __init__(self, client: Any, collection: str, total: int, dimension: int) -> None:
        self.client, self.collection, self.total, self._dimension = client, collection, total, dimension

    @classmethod
    def open(cls, uri: str, token: str | None, stored: StoredIndex) -> MilvusStore:
        client = connect(uri, token)
        name = collection_name(stored.path.name)
        try:
            if not client.has_collection(name):
                raise MilvusUnavailable(
                    f"Milvus at {uri} has no collection {name} for build {stored.path.name}: "
                    "build with store=milvus (`cited index --rebuild --store milvus`)"
                )
            client.load_collection(name)
            fields = {f["name"]: f for f in client.describe_collection(name)["fields"]}
            dimension = int(fields["vector"]["params"]["dim"])
            rows = int(client.get_collection_stats(name)["row_count"])
        except CitedError:
            raise
        except Exception as exc:
            raise MilvusUnavailable(f"cannot open the Milvus collection {name} at {uri}: {_one_line(exc)}") from None
        if rows != len(stored.passages):
            raise MilvusUnavailable(f"Milvus collection {name} at {uri} holds {rows} rows, the build {len(stored.passages)} passages: rebuild it")
        return cls(client, name, rows, dimension)

    @property
    def dimension(self) -> int:
        return self._dimension

    def _search(self, data: list, field: str, metric: str, limit: int) -> list[tuple[np.ndarray, np.ndarray]]:
        found = self.client.search(self.collection, data=data, anns_field=field, limit=limit, output_fields=["row"],
                                   search_params={"metric_type": metric})
        return [(np.fromiter((h["row"] for h in hits), np.int64, len(hits)), np.fromiter((h["distance"] for h in hits), np.float64, len(hits)))
                for hits in found]

    def _deepening(self, data: list, field: str, metric: str, depth: int, scored) -> list[list[tuple[int, float]]]:
        """Ask for depth + TIE_SLACK, then more while a tie at the cut may reach past what came back (as FAISS's loop)."""
        cap = min(self.total, MAX_TOPK)
        fetch = min(cap, depth + TIE_SLACK)
        while True:
            answers = [(rows, scored(d)) for rows, d in self._search(data, field, metric, fetch)]
            if fetch >= cap or all(len(rows) < fetch or cut_is_settled(s, depth) for rows, s in answers):
                return answers
            fetch = min(cap, 2 * fetch)

    def dense(self, queries: np.ndarray, depth: int, key: Key) -> list[list[tuple[int, float]]]:
        if depth <= 0 or not len(queries):
            return [[] for _ in queries]
        answers = self._deepening(np.asarray(queries, dtype=np.float32).tolist(), "vector", "IP", depth, lambda d: d)
        return [top(s, depth, key, rows=rows) for rows, s in answers]

    def lexical(self, questions: Sequence[str], depth: int, key: Key) -> list[list[tuple[int, float]]]:
        if isinstance(questions, str):
            raise TypeError("questions must be a sequence of strings, not a single string")
        if depth <= 0 or not questions:
            return [[] for _ in questions]
        # Milvus Lite reports BM25 as a distance (the score negated), a Milvus server as the score: both are |score|.
        data = [words(q) for q in questions]
        if not any(data):  # nothing Milvus could match: no word of two characters
            return [[] for _ in questions]
        answers = self._deepening([d or "_" for d in data], "sparse", "BM25", depth, np.abs)
        return [top(s[s > 0], depth, key, rows=rows[s > 0]) for rows, s in answers]

    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        if not len(rows):
            return np.zeros((0, self._dimension), np.float32)
        wanted = sorted({int(r) for r in rows})
        got = {int(r["row"]): r["vector"] for r in self.client.query(self.collection, ids=wanted, output_fields=["vector"])}
        return np.asarray([got[int(r)] for r in rows], dtype=np.float32)
