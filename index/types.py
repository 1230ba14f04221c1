"""Records passed between the pipeline stages (ingest → clean → chunk → embed → store → search).

Every span is a pair of Python string offsets into a document's text, so a citation can always
be checked with ``text[start:end]``. For text formats (.txt, .md) that text is the file itself,
decoded (as UTF-8, or as the encoding detected for it); for derived formats (HTML, PDF) it is the
text extracted from the file, which the index stores and the API serves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

BlockKind = Literal["prose", "caption"]


Format = Literal["text", "markdown", "html", "pdf"]
Offsets = Literal["file", "extracted"]


@dataclass(frozen=True)
class Document:
    """One corpus file, decoded or extracted, before cleaning."""

    doc_id: str  # the source minus a trailing ".txt" (other extensions are kept); stable across rebuilds
    source: str  # file name relative to the corpus folder (what a citation shows)
    text: str  # what offsets index: the whole file decoded, untouched (text formats), or the extracted text (HTML, PDF)
    format: Format = "text"
    encoding: str | None = "utf-8"  # the codec the file was decoded with (text formats); None for derived formats
    pages: tuple[int, ...] = ()  # PDF: where each page starts in ``text`` (page n starts at pages[n - 1])
    layout: Cleaned | None = None  # structure the format's parser already found (markdown, HTML); None: clean the text

    @property
    def offsets(self) -> Offsets:
        """Which text citations slice: the file (decoded with ``encoding``) or the extracted text."""
        return "extracted" if self.format in ("html", "pdf") else "file"


@dataclass(frozen=True)
class Block:
    """A kept line of article text, trimmed of surrounding whitespace.

    ``segment`` groups blocks that are contiguous article text: a passage may
    span several blocks of one segment but never two segments, because a
    segment ends wherever furniture was removed or a heading starts.
    """

    start: int
    end: int
    segment: int
    heading: str | None = None
    kind: BlockKind = "prose"


@dataclass(frozen=True)
class Removal:
    """A span of furniture the cleaner dropped, and the rule that dropped it."""

    start: int
    end: int
    rule: str


@dataclass(frozen=True)
class Cleaned:
    """What cleaning keeps of one document."""

    title: str
    title_span: tuple[int, int] | None  # where the title line sits, if it came from the text
    blocks: tuple[Block, ...]
    removed: tuple[Removal, ...] = ()


@dataclass(frozen=True)
class Span:
    start: int
    end: int


@dataclass(frozen=True)
class Passage:
    """A retrievable unit: a contiguous slice of one source file."""

    doc_id: str
    source: str
    title: str
    start: int
    end: int
    text: str  # == original[start:end], always
    tokens: int  # cl100k token count of ``text``
    heading: str | None = None

    @property
    def key(self) -> str:
        """Stable id across rebuilds while chunking is unchanged (FAISS ids are only row numbers)."""
        return f"{self.source}:{self.start}-{self.end}"


@dataclass(frozen=True)
class Hit:
    """One ranked result of a search."""

    rank: int  # 1-based
    score: float
    passage: Passage
    also_in: tuple[Passage, ...] = ()  # near-duplicate passages in other files
    highlights: tuple[Span, ...] = field(default=())
