"""Loading a test collection in the BEIR folder layout, refusing any inconsistency with file and line."""

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
    """One split's collection: ``queries`` holds only the judged ones, since BEIR ships one
    queries.jsonl for all splits and an unjudged query could only score as a failure."""

    name: str
    docs: dict[str, BeirDoc]  # corpus.jsonl order, which is the row order of any index built from it
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, text), decoded line by line so an encoding error can name its line."""
    if not path.is_file():
        raise CollectionError(path, None, "file not found")
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                yield number, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                raise CollectionError(path, number, f"not valid UTF-8 ({exc.reason})") from None


def _jsonl(path: Path, fields: tuple[str, ...]) -> Iterator[dict[str, str]]:
    """Records with ``_id`` and string ``fields``; a missing title reads as "" (several BEIR corpora have none)."""
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
    """Judgments of an unknown query or document are errors, not skipped: an unretrievable relevant
    document would quietly cap recall, and an unknown query usually means renumbered ids."""
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
    """``folder`` with the judgments of ``qrels/<qrels_file>``, named after the folder."""
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
