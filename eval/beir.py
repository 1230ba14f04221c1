"""Loading a test collection stored in the BEIR folder layout.

This module owns reading ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv`` into
plain Python structures, and refusing collections that are internally inconsistent. It
knows nothing about retrieval or metrics: the ``qrels`` it returns have exactly the shape
:mod:`eval.metrics` takes.

Every problem is raised as :class:`CollectionError` naming the file and, where there is
one, the line: a benchmark that silently drops a malformed judgment produces numbers that
look plausible and are wrong, which is worse than no numbers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from index.errors import CitedError

__all__ = ["BeirCollection", "BeirDoc", "CollectionError", "load_beir"]


class CollectionError(CitedError):
    """A collection file is missing or malformed; ``path`` and ``line`` say where."""

    def __init__(self, path: Path, line: int | None, message: str):
        self.path = path
        self.line = line
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class BeirDoc:
    doc_id: str
    title: str  # "" when the corpus has no title field (several BEIR sets do not)
    text: str


@dataclass(frozen=True)
class BeirCollection:
    """One collection, restricted to what a split can evaluate.

    ``queries`` holds only the queries that appear in the split's qrels (in
    ``queries.jsonl`` order): BEIR ships one ``queries.jsonl`` for all splits, and a query
    without judgments can only be scored as a failure. A query whose judgments are all 0 is
    kept here; :func:`eval.metrics.evaluate` is what skips it.
    """

    name: str
    docs: dict[str, BeirDoc]  # corpus.jsonl order, which is the row order of any index built from it
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, text without line ending), decoding each line separately.

    Decoding per line (rather than opening the file in text mode) is what lets an encoding
    error report its line number.
    """
    if not path.is_file():
        raise CollectionError(path, None, "file not found")
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                yield number, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                raise CollectionError(path, number, f"not valid UTF-8 ({exc.reason})") from None


def _jsonl(path: Path, fields: tuple[str, ...]) -> Iterator[dict[str, str]]:
    """Records of a JSON-lines file with ``_id`` and the required string ``fields``.

    A ``title`` asked for in ``fields`` may be absent (several BEIR corpora have none) and
    reads as "". Blank lines are skipped so a trailing empty line is not an error.
    """
    seen: dict[str, int] = {}
    for number, line in _lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CollectionError(path, number, f"malformed JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise CollectionError(path, number, "expected a JSON object")
        if "title" in fields:
            record.setdefault("title", "")
        for field in ("_id", *fields):
            if field not in record:
                raise CollectionError(path, number, f"missing field {field!r}")
            if not isinstance(record[field], str):
                raise CollectionError(
                    path, number, f"field {field!r} must be a string, got {type(record[field]).__name__}"
                )
        doc_id = record["_id"]
        if not doc_id.strip():
            raise CollectionError(path, number, "empty '_id'")
        if doc_id in seen:
            raise CollectionError(path, number, f"duplicate _id {doc_id!r} (first on line {seen[doc_id]})")
        seen[doc_id] = number
        yield record


def _read_qrels(
    path: Path, queries: dict[str, str], docs: dict[str, BeirDoc]
) -> dict[str, dict[str, int]]:
    """Judgments from a BEIR qrels TSV: a header line, then ``query-id corpus-id score``.

    Judgments naming a query or document that the collection does not contain are errors,
    not skipped: a relevant document that is not in the corpus can never be retrieved and
    would quietly cap recall, and an unknown query usually means the ids were renumbered.
    Repeating a (query, doc) pair is an error because which grade wins would be arbitrary.
    """
    qrels: dict[str, dict[str, int]] = {}
    lines = _lines(path)
    header = next(lines, None)
    if header is None:
        raise CollectionError(path, None, "empty file (expected a header line)")
    header_fields = header[1].split("\t")
    if len(header_fields) != 3 or _as_int(header_fields[2]) is not None:
        raise CollectionError(
            path, 1, "expected a header line 'query-id<TAB>corpus-id<TAB>score'"
        )
    for number, line in lines:
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise CollectionError(path, number, f"expected 3 tab-separated fields, got {len(fields)}")
        query_id, doc_id, score_text = (f.strip() for f in fields)
        score = _as_int(score_text)
        if not query_id or not doc_id:
            raise CollectionError(path, number, "empty query-id or corpus-id")
        if score is None:
            raise CollectionError(path, number, f"score {score_text!r} is not an integer")
        if query_id not in queries:
            raise CollectionError(path, number, f"query-id {query_id!r} is not in queries.jsonl")
        if doc_id not in docs:
            raise CollectionError(path, number, f"corpus-id {doc_id!r} is not in corpus.jsonl")
        judged = qrels.setdefault(query_id, {})
        if doc_id in judged:
            raise CollectionError(path, number, f"query {query_id!r} judges doc {doc_id!r} twice")
        judged[doc_id] = score
    if not qrels:
        raise CollectionError(path, None, "no judgments after the header")
    return qrels


def _as_int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def load_beir(folder: Path, qrels_file: str = "test.tsv") -> BeirCollection:
    """Load ``folder`` (BEIR layout) with the judgments of ``qrels/<qrels_file>``.

    The collection is named after the folder. See :class:`BeirCollection` for why only
    judged queries are kept.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CollectionError(folder, None, "collection folder not found")

    docs = {
        record["_id"]: BeirDoc(record["_id"], record["title"], record["text"])
        for record in _jsonl(folder / "corpus.jsonl", ("title", "text"))
    }
    all_queries = {
        record["_id"]: record["text"] for record in _jsonl(folder / "queries.jsonl", ("text",))
    }
    qrels = _read_qrels(folder / "qrels" / qrels_file, all_queries, docs)
    queries = {qid: text for qid, text in all_queries.items() if qid in qrels}
    return BeirCollection(name=folder.name, docs=docs, queries=queries, qrels=qrels)
