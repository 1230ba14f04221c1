"""Every indexed document's text, stored in the build, so a citation can be shown without the corpus.

    texts/texts.txt        the documents' texts, UTF-8, one after another (no separators)
    texts/offsets.npy      int64, n + 1 byte offsets: document i is bytes offsets[i]:offsets[i + 1]
    texts/documents.json   the n doc_ids, in the same order

The text is exactly what the build decoded and cut passages from, so for every citation
``text(doc_id)[start:end]`` is the cited passage, even after the file on disk changed or went
away. For HTML and PDF, whose citations index *extracted* text, this is the only place that text
lives. The file is memory-mapped once per build; a document is decoded when asked for.
"""

from __future__ import annotations

import json
import mmap
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from index.errors import IndexCorrupt
from index.types import Document

TEXTS = "texts"  # the build's sub-folder
TEXT_FILE = "texts.txt"
OFFSETS = "offsets.npy"
DOCUMENTS = "documents.json"


def write_texts(documents: Iterable[Document]):
    """A writer (index.store's ``extras``) of the documents' texts, in the order given."""
    documents = list(documents)

    def write(folder: Path) -> None:
        offsets = [0]
        with open(folder / TEXT_FILE, "wb") as fh:
            for doc in documents:
                data = doc.text.encode("utf-8")  # the decoded (or extracted) text, whatever the file's encoding
                fh.write(data)
                offsets.append(offsets[-1] + len(data))
        np.save(folder / OFFSETS, np.asarray(offsets, dtype=np.int64), allow_pickle=False)
        (folder / DOCUMENTS).write_text(json.dumps([d.doc_id for d in documents], ensure_ascii=False) + "\n", encoding="utf-8")

    return write


class DocumentTexts:
    """Read-only access to a build's stored texts; threads may share it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        try:
            doc_ids = json.loads((folder / DOCUMENTS).read_text(encoding="utf-8"))
            offsets = np.load(folder / OFFSETS, allow_pickle=False)
            size = (folder / TEXT_FILE).stat().st_size
        except (OSError, ValueError) as exc:  # json.JSONDecodeError and a bad .npy are ValueErrors
            raise IndexCorrupt(folder, f"its document texts cannot be read ({exc})") from exc
        if (
            not isinstance(doc_ids, list)
            or offsets.ndim != 1
            or len(offsets) != len(doc_ids) + 1
            or offsets[0] != 0
            or offsets[-1] != size
            or np.any(np.diff(offsets) < 0)
        ):
            raise IndexCorrupt(folder / OFFSETS, f"does not fit {TEXT_FILE} ({size} bytes) and {DOCUMENTS} ({len(doc_ids)} ids)")
        self._offsets = offsets
        self._rows = {doc_id: row for row, doc_id in enumerate(doc_ids)}
        self._data: mmap.mmap | bytes = b""
        if size:  # an empty file cannot be mapped
            with open(folder / TEXT_FILE, "rb") as fh:
                self._data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def text(self, doc_id: str) -> str:
        """The document's whole text, as the build read it. Raises KeyError for an unknown id."""
        row = self._rows[doc_id]
        start, end = int(self._offsets[row]), int(self._offsets[row + 1])
        try:
            return self._data[start:end].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise IndexCorrupt(self.folder / TEXT_FILE, f"{doc_id} is not valid UTF-8 ({exc})") from exc


def read_texts(build: Path) -> DocumentTexts | None:
    """The build's texts, or None for a build made before they were stored (format 4 and older)."""
    return DocumentTexts(build / TEXTS) if (build / TEXTS).is_dir() else None
