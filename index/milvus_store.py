"""The scale-out store: one Milvus collection per build, holding the dense vectors and BM25 over the passages' text.

The same code speaks to Milvus Lite (a local file, the default: ``<index_dir>/milvus.db``) and to a
Milvus standalone or distributed cluster (``milvus_uri=http://host:19530``). pymilvus is imported
here only, so the default install and ``cited --help`` never load it.

Collection ``cited_<build folder name>``, written by ``cited index`` before CURRENT names the build
(so a replica that sees CURRENT finds its collection) and dropped when tidying removes the build:

    row     INT64 primary key: the passage's row in passages.jsonl
    vector  FLOAT_VECTOR, IP on unit vectors (= cosine, as FAISS), FLAT: exact like the FAISS default
    terms   VARCHAR, analysed (ANALYZER): index.lexical's terms of the text bm25s indexes (see Terms)
    sparse  SPARSE_FLOAT_VECTOR made from terms by Milvus's BM25 function (k1, b as bm25s's)
    text    VARCHAR, the passage's own text
    doc_id, source, start, end: the citation of the passage, for filters and inspection

The build folder stays the source of truth: passages, sentences, document texts and the answer's
term statistics are read from it; Milvus answers the two candidate searches and vectors by row.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index.errors import CitedError
from index.lexical import B, K1
from index.passage_store import one_after_the_other
from index.ties import TIE_SLACK, Key, cut_is_settled, top

if TYPE_CHECKING:
    from index.store import StoredIndex
    from index.types import Passage

INSTALL = "pip install -e '.[milvus]'"
MAX_TOPK = 16_384  # Milvus's limit on one search's limit
INSERT_BATCH = 1_000
TEXT_BYTES = 65_535  # Milvus's largest VARCHAR
CONNECT_TIMEOUT_S = 10.0


# Milvus's analyser sees index.lexical's terms, one space apart: it only splits at the spaces and
# lower-cases (a no-op on terms). Why not its own stop and stemmer filters: docs/stores.md, and
# Terms below.
ANALYZER = {"tokenizer": "standard", "filter": ["lowercase"]}

Terms = Callable[[Sequence[str]], list[list[str]]]
"""index.lexical's analysis (BM25Index.terms: lower case, bm25s's word pattern, English stopwords,
Snowball English stemmer), run here at insert and at query time alike.

Milvus's own analyser filters were set to the same chain first (standard tokenizer, lowercase,
bm25s's stopword list, stemmer english): Milvus Lite 3.2 accepts the stemmer filter but does not
stem (``meetings`` never matched ``meeting``; Lite 2.5, the server's engine, does), and the standard
tokenizer splits at Unicode word boundaries where bm25s uses a regex (``Taliban’s``, ``U.S.``,
``1,000``, single letters). On the seeds every question's BM25 list moved and hit@3 lost two
questions. Analysed here, both stores count exactly the same terms on any Milvus version, and
Milvus still does the BM25 itself: term and document statistics, idf, length normalisation, the
inverted index. Its score is bm25s's times k1 + 1 (classic BM25 against bm25s's Lucene variant):
the same order, and min-max fusion cancels the factor.
"""


def collection_name(build: str) -> str:
    """The collection of a build folder (``build-20260101T000000-abcd1234`` → ``cited_build_20260101T000000_abcd1234``)."""
    return "cited_" + re.sub(r"[^0-9A-Za-z_]", "_", build)


class MilvusUnavailable(CitedError):
    """The milvus extra is not installed, or no Milvus answers at the URI."""


def _lite_noise(record: logging.LogRecord) -> bool:
    """False for the traceback Milvus Lite's in-process gRPC server logs when pymilvus asks it for a
    method it lacks (AllocTimestamp, while waiting for an index): pymilvus carries on without it,
    and a build's output must not show a stack trace for it."""
    return "Method not implemented" not in record.getMessage()


def connect(uri: str, token: str | None = None) -> Any:
    """A MilvusClient for ``uri``; a one-line MilvusUnavailable when the extra is missing or nothing answers."""
    try:
        from pymilvus import MilvusClient
    except ImportError:
        raise MilvusUnavailable(f"store=milvus needs the milvus extra (pymilvus, milvus-lite): {INSTALL}") from None
    grpc_server = logging.getLogger("grpc._server")
    if _lite_noise not in grpc_server.filters:
        grpc_server.addFilter(_lite_noise)
    quiet = [logging.getLogger(name) for name in ("pymilvus", "milvus_lite")]
    levels = [q.level for q in quiet]
    for q in quiet:  # both log a failed connection with a traceback; the error below says it in one line
        q.setLevel(logging.CRITICAL)
    try:
        if "://" not in uri:  # a Milvus Lite file: its folder must exist (the index folder, before the first build)
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
        return MilvusClient(uri=uri, token=token or "", timeout=CONNECT_TIMEOUT_S)
    except Exception as exc:  # pymilvus raises MilvusException, grpc errors or ConnectionError for the same fault
        hint = ""
        if uri.endswith(".db") and _one_line(exc) == "Open local milvus failed":  # what pymilvus says when Lite's lock is taken
            hint = (" (is another process using this Milvus Lite file, e.g. a running `cited serve`? "
                    "Milvus Lite admits one process; point several at a Milvus server by URI)")
        raise MilvusUnavailable(f"cannot reach Milvus at {uri}: {_one_line(exc)}{hint}") from None
    finally:
        for q, level in zip(quiet, levels, strict=True):
            q.setLevel(level)


def _one_line(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or exc.__class__.__name__
    return " ".join(str(message).split())[:300]


class MilvusWriter:
    """Writes a build's collection (before it is published) and drops those of removed builds."""

    def __init__(self, uri: str, token: str | None = None) -> None:
        self.uri = uri
        self.client = connect(uri, token)

    def write(self, build: str, passages: Sequence[Passage], vectors: np.ndarray, texts: Sequence[str], terms: Terms) -> str:
        """The collection of ``build``: ``texts[i]`` is what bm25s indexed for passage i, ``terms`` its analysis."""
        from pymilvus import DataType, Function, FunctionType

        name = collection_name(build)
        try:
            if self.client.has_collection(name):
                self.client.drop_collection(name)
            schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("row", DataType.INT64, is_primary=True)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=int(vectors.shape[1]))
            schema.add_field("terms", DataType.VARCHAR, max_length=TEXT_BYTES, enable_analyzer=True, analyzer_params=ANALYZER)
            schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
            schema.add_field("text", DataType.VARCHAR, max_length=TEXT_BYTES)
            schema.add_field("doc_id", DataType.VARCHAR, max_length=1024)
            schema.add_field("source", DataType.VARCHAR, max_length=4096)
            schema.add_field("start", DataType.INT64)
            schema.add_field("end", DataType.INT64)
            schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["terms"], output_field_names=["sparse"]))
            index = self.client.prepare_index_params()
            index.add_index("vector", index_type="FLAT", metric_type="IP")
            index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params={"bm25_k1": K1, "bm25_b": B})
            self.client.create_collection(name, schema=schema, index_params=index)
            vectors = np.ascontiguousarray(vectors, dtype=np.float32)
            for at in range(0, len(passages), INSERT_BATCH):
                batch = passages[at : at + INSERT_BATCH]
                analysed = terms(texts[at : at + len(batch)])
                self.client.insert(name, [
                    {"row": row, "vector": vectors[row].tolist(), "terms": _fit(" ".join(t)), "text": _fit(p.text),
                     "doc_id": p.doc_id, "source": p.source, "start": p.start, "end": p.end}
                    for (row, p), t in zip(enumerate(batch, at), analysed, strict=True)
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


def _row(hit: Any) -> int:
    """The row of a search hit: pymilvus 2.x names the primary key ``id``, Milvus Lite 3 by its field name."""
    return int(hit["id"]) if "id" in hit else int(hit["entity"]["row"])


def _fit(text: str) -> str:
    """``text`` cut to Milvus's VARCHAR limit (bytes) at a character boundary; passages are far shorter."""
    data = text.encode("utf-8")
    return text if len(data) <= TEXT_BYTES else data[:TEXT_BYTES].decode("utf-8", errors="ignore")


class MilvusStore:
    """A build's collection, searched for dense and lexical candidates and read for vectors by row."""

    name = "milvus"

    def __init__(self, client: Any, collection: str, total: int, dimension: int, terms: Terms) -> None:
        self.client, self.collection, self.total, self._dimension, self.terms = client, collection, total, dimension, terms
        # The vectors that came back with this thread's last dense search. The ranking asks for
        # vectors of rows it just got (best_cosine, MMR, feedback), mostly dense hits: kept per
        # thread, they cost no second round trip, and nothing outlives the next search.
        self._with_hits = threading.local()

    @classmethod
    def open(cls, uri: str, token: str | None, stored: StoredIndex, terms: Terms) -> MilvusStore:
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
        return cls(client, name, rows, dimension, terms)

    @property
    def dimension(self) -> int:
        return self._dimension

    def _search(self, data: list, field: str, metric: str, limit: int) -> list[tuple[np.ndarray, np.ndarray]]:
        dense = field == "vector"
        found = self.client.search(self.collection, data=data, anns_field=field, limit=limit, output_fields=["row", "vector"] if dense else ["row"],
                                   search_params={"metric_type": metric})
        if dense:  # measured within the noise of asking for the rows alone (on 144 passages, Lite)
            self._with_hits.vectors = {_row(h): h["entity"]["vector"] for hits in found for h in hits}
        return [(np.fromiter((_row(h) for h in hits), np.int64, len(hits)), np.fromiter((h["distance"] for h in hits), np.float64, len(hits)))
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
        data = [" ".join(t) for t in self.terms(list(questions))]
        asked = [i for i, d in enumerate(data) if d]  # a question of stopwords alone matches nothing (as in bm25s)
        out: list[list[tuple[int, float]]] = [[] for _ in questions]
        if asked:
            answers = self._deepening([data[i] for i in asked], "sparse", "BM25", depth, np.abs)
            for i, (rows, s) in zip(asked, answers, strict=True):
                out[i] = top(s[s > 0], depth, key, rows=rows[s > 0])
        return out

    def candidates(self, queries: np.ndarray, questions: Sequence[str], depth: int, key: Key, dense: bool, lexical: bool):
        """The BM25 search in a helper thread while this one asks the dense search: two round trips in the time of one."""
        if not (dense and lexical):
            return one_after_the_other(self, queries, questions, depth, key, dense, lexical)
        answer: dict[str, Any] = {}

        def ask() -> None:
            try:
                answer["lexical"] = self.lexical(questions, depth, key)
            except BaseException as exc:  # noqa: BLE001 -- handed to the caller's thread below
                answer["error"] = exc

        helper = threading.Thread(target=ask, name="cited-milvus-bm25", daemon=True)
        helper.start()
        try:
            hits = self.dense(queries, depth, key)  # in this thread: the vectors that come with the hits are kept for it
        finally:
            helper.join()
        if "error" in answer:
            raise answer["error"]
        return hits, answer["lexical"]

    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        if not len(rows):
            return np.zeros((0, self._dimension), np.float32)
        got = dict(getattr(self._with_hits, "vectors", {}))
        if wanted := sorted({int(r) for r in rows} - got.keys()):
            got.update((int(r["row"]), r["vector"]) for r in self.client.query(self.collection, ids=wanted, output_fields=["vector"]))
        return np.asarray([got[int(r)] for r in rows], dtype=np.float32)
