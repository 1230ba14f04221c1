"""A BEIR collection as a corpus folder of its own, indexed and searched by the service's own pipeline."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from eval.beir import BeirCollection, BeirDoc, CollectionError
from index import Embedder, IndexConfig, IndexMissing, IndexStale, Retriever, build_index, open_index

__all__ = [
    "Materialised",
    "PreparedIndex",
    "beir_cache_dir",
    "decode_doc_id",
    "doc_file_text",
    "encode_doc_id",
    "materialise",
    "prepare_index",
]

log = logging.getLogger(__name__)


def encode_doc_id(doc_id: str) -> str:
    """Percent-encoding of all but ``A-Za-z0-9-_.`` and of a leading dot: one visible, portable file name."""
    name = quote(doc_id, safe="-_.")
    return "%2E" + name[1:] if name.startswith(".") else name  # no hidden files, no "." or ".."


def decode_doc_id(name: str) -> str:
    return unquote(name)


def doc_file_text(doc: BeirDoc) -> str:
    """``title + "\\n\\n" + text``, the title without trailing full stops.

    The cleaner does not take a line ending like a sentence for a title, and Cranfield spells
    nearly every title "... wings ."; the title would otherwise become a passage of its own.
    """
    title = doc.title.strip().rstrip(". ").strip()
    return f"{title}\n\n{doc.text}" if title else doc.text


@dataclass(frozen=True)
class Materialised:
    names: dict[str, str]  # file stem (the index's doc_id) -> collection doc id
    written: int  # files created or rewritten
    removed: int  # stale .txt files deleted (docs no longer in the collection)


def materialise(docs: Iterable[BeirDoc], corpus_dir: Path) -> Materialised:
    """One ``<encoded id>.txt`` per document.

    Files whose bytes are unchanged are left alone so the manifest's hashes, and so the index,
    stay fresh; files of documents no longer in the collection are deleted so they cannot leak in.
    """
    corpus_dir.mkdir(parents=True, exist_ok=True)
    names: dict[str, str] = {}
    folded: dict[str, str] = {}
    written = 0
    for doc in docs:
        stem = encode_doc_id(doc.doc_id)
        if stem.casefold() in folded:  # would share one file on a case-insensitive file system
            raise CollectionError(
                corpus_dir,
                None,
                f"doc ids {folded[stem.casefold()]!r} and {doc.doc_id!r} differ only in case; "
                "they cannot be stored as separate files portably",
            )
        folded[stem.casefold()] = doc.doc_id
        names[stem] = doc.doc_id
        path = corpus_dir / f"{stem}.txt"
        data = doc_file_text(doc).encode("utf-8")
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)
            written += 1
    removed = 0
    for path in sorted(corpus_dir.rglob("*.txt")):
        if path.parent != corpus_dir or path.stem not in names:
            path.unlink()
            removed += 1
    return Materialised(names, written, removed)


def beir_cache_dir(config: IndexConfig, name: str) -> Path:
    """``<index_dir>/../beir/<name>``: next to the service's index, never inside it."""
    return config.index_dir.parent / "beir" / name


@dataclass(frozen=True)
class PreparedIndex:
    retriever: Retriever
    config: IndexConfig
    materialised: Materialised  # .names maps a passage's doc_id (file stem) to the collection doc id
    rebuild_reason: str | None  # why it was built during this call; None: a fresh index was reused
    seconds: float  # materialising + opening (building, if rebuilt)

    def summary(self) -> dict[str, Any]:
        manifest = self.retriever.manifest
        model = manifest.get("model", {})
        documents = manifest.get("documents", [])
        # an empty document (Cranfield 471 and 995) is skipped by the build ("is empty"): still a document of the collection, without a passage
        empty = sum(1 for s in manifest.get("skipped", []) if s.get("reason") == "is empty")
        return {
            "path": str(self.retriever.stored.path),
            "model": model.get("name"),
            "model_fingerprint": model.get("fingerprint"),
            "dimension": model.get("dimension"),
            "max_seq_length": model.get("max_seq_length"),
            "chunking": manifest.get("chunking"),
            "documents": len(documents) + empty,
            "documents_without_passages": sum(1 for d in documents if d.get("passages", 0) == 0) + empty,
            "passages": len(self.retriever.passages),
            "built_at": manifest.get("built_at"),
            "build_seconds": manifest.get("build_seconds"),
            "rebuilt_this_run": self.rebuild_reason is not None,
            "rebuild_reason": self.rebuild_reason,
            "files_written": self.materialised.written,
            "files_removed": self.materialised.removed,
            "open_seconds": round(self.seconds, 3),
        }


def prepare_index(
    collection: BeirCollection, index_config: IndexConfig, embedder: Embedder, progress: bool = True
) -> PreparedIndex:
    """The collection's passage index with ``index_config``'s model and chunking, built only when missing or stale."""
    started = time.perf_counter()
    cache = beir_cache_dir(index_config, collection.name)
    config = dataclasses.replace(index_config, corpus_dir=cache / "corpus", index_dir=cache / "index")
    try:
        materialised = materialise(collection.docs.values(), config.corpus_dir)
    except OSError as exc:
        raise CollectionError(config.corpus_dir, None, f"cannot write the corpus of {collection.name}: {exc}") from None
    try:  # open_index(rebuild=True) would do the same, but could not say whether it rebuilt
        stored = open_index(config, embedder, rebuild=False)
        rebuild_reason = None
    except (IndexMissing, IndexStale) as exc:
        rebuild_reason = str(exc) if isinstance(exc, IndexStale) else "no index yet"
        log.warning("building the %s index: %s", collection.name, rebuild_reason)
        stored = build_index(config, embedder, progress=progress)
    retriever = Retriever(embedder, stored)
    unknown = {p.doc_id for p in retriever.passages} - materialised.names.keys()
    if unknown:  # only if the corpus folder changed under us
        raise CollectionError(config.index_dir, None, f"the index has passages of unknown documents {sorted(unknown)[:3]}")
    return PreparedIndex(retriever, config, materialised, rebuild_reason, time.perf_counter() - started)
