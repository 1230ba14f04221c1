"""Which files are documents, and how each format becomes the text that citations slice.

Text formats: ``.txt`` and ``.md``/``.markdown``, any letter case. The text is the file itself,
decoded: as UTF-8 when it is valid UTF-8, else with the encoding charset-normalizer detects (the
document records which, so a client decodes the file the same way). Offsets index the file.

Derived formats: ``.html``/``.htm`` and ``.pdf``. The text is extracted (trafilatura finds the
main content of a page, without its navigation, footer and ads; pypdf reads a PDF's text layer page
by page, pages separated by a form feed), and offsets index that extracted text, which the build
stores and ``GET /documents/{doc_id}/text`` serves.

Each library is imported only when a file of its format is read, so ``cited --help`` and a corpus
of .txt files never load them. A file that cannot be read as its format raises :class:`Unreadable`
with a reason; the build skips that file and goes on.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from functools import cache
from importlib import metadata
from pathlib import PurePosixPath

from index.types import Block, Cleaned, Document, Format

log = logging.getLogger(__name__)

SUFFIXES: dict[str, Format] = {
    ".txt": "text", ".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html", ".pdf": "pdf",
}
# The libraries whose version can change what a file becomes: recorded in the manifest, so an
# upgrade re-extracts rather than keeping passages cut from another version's text.
EXTRACTORS = ("markdown-it-py", "mdit-py-plugins", "trafilatura", "pypdf", "charset-normalizer")
PAGE_BREAK = "\f"  # between the pages of a PDF's extracted text, as pdftotext writes it


class Unreadable(Exception):
    """A file that cannot be read as its format; ``reason`` completes a sentence about it ("is empty")."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def format_of(name: str) -> Format | None:
    """The format a file name says (its suffix, in any letter case), or None: not a document."""
    return SUFFIXES.get(PurePosixPath(name).suffix.lower())


def supported() -> str:
    return ", ".join(SUFFIXES)


@cache
def extractor_versions() -> dict[str, str]:
    """Installed versions of the libraries that turn files into text (read from package metadata, not
    imported; once per process, as the staleness check runs every reload_interval_s)."""
    versions = {}
    for name in EXTRACTORS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions


def doc_ids(sources: Iterable[str]) -> dict[str, str]:
    """source -> doc_id: the source minus a trailing ``.txt`` (the ids the seeds always had), every
    other file its whole name (``guide.md`` and ``guide.txt`` are ``guide.md`` and ``guide``).

    The only possible clash is a ``.txt`` whose stripped name is another file's name
    (``guide.md.txt`` beside ``guide.md``): that ``.txt`` keeps its whole name too.
    """
    sources = list(sources)
    names = set(sources)
    ids = {}
    for source in sources:
        stripped = source.removesuffix(".txt")
        ids[source] = stripped if stripped == source or stripped not in names else source
    return ids


def read_document(source: str, doc_id: str, data: bytes) -> Document:
    """The document a file's bytes make, by the format its name says. Raises Unreadable."""
    kind = format_of(source)
    if kind is None:
        raise Unreadable(f"is not a supported format ({supported()})")
    if not data.strip():
        raise Unreadable("is empty")
    fallback_title = PurePosixPath(source).stem
    if kind in ("text", "markdown"):
        text, encoding = decode_text(data)
        if not text.strip():
            raise Unreadable("is empty")
        if encoding != "utf-8":
            log.warning("%s is not valid UTF-8: read as %s (detected by charset-normalizer)", source, encoding)
        layout = None
        if kind == "markdown":
            from index.markdown import markdown_layout

            layout = markdown_layout(text, fallback_title)
        return Document(doc_id, source, text, format=kind, encoding=encoding, layout=layout)
    if kind == "html":
        text, layout = extract_html(data, fallback_title)
        return Document(doc_id, source, text, format="html", encoding=None, layout=layout)
    text, pages = extract_pdf(data)
    return Document(doc_id, source, text, format="pdf", encoding=None, pages=pages)


def decode_text(data: bytes) -> tuple[str, str]:
    """The text and the codec that gave it: UTF-8 if the bytes are valid UTF-8, else the encoding
    charset-normalizer finds most plausible. No newline translation: offsets match the file."""
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        bad = exc.start
    from charset_normalizer import from_bytes

    matches = from_bytes(data)
    best = matches.best()
    if best is not None:
        # On short text several single-byte code pages fit equally well (French read as cp1250 gives
        # "crčme"); among the equals, prefer windows-1252, which browsers read "latin-1" as (WHATWG).
        tied = [m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
        best = next((m for m in tied if m.encoding == "cp1252"), best)
    if best is None or best.encoding is None:
        raise Unreadable(f"is not valid UTF-8 (byte {bad}) and no other encoding fits it; convert it to UTF-8")
    try:
        return data.decode(best.encoding), best.encoding
    except (UnicodeDecodeError, LookupError) as exc:  # the detector's pick must decode the whole file, strictly
        raise Unreadable(f"is not valid UTF-8 (byte {bad}) and not {best.encoding} either ({exc}); convert it to UTF-8") from None


def extract_html(data: bytes, fallback_title: str) -> tuple[str, Cleaned]:
    """The page's main content as text, and its structure: headings, paragraphs, list items, table rows.

    trafilatura (favor_precision: less text rather than boilerplate) finds the article; its element
    tree is flattened here into blocks separated by blank lines, headings on lines of their own.
    The text is ours, so whitespace inside a block is collapsed to single spaces.
    """
    import trafilatura

    try:
        found = trafilatura.bare_extraction(data, favor_precision=True, include_comments=False, include_tables=True,
                                            with_metadata=True)
    except Exception as exc:  # lxml and the extractors raise many kinds on broken input
        raise Unreadable(f"cannot be parsed as HTML ({exc.__class__.__name__}: {exc})") from None
    if found is None or found.body is None:
        raise Unreadable("has no main content (trafilatura found no article text in it)")
    pieces: list[tuple[str, str]] = []  # (kind, text): kind "head" or "block"
    for element in found.body:
        tag = element.tag
        if tag == "head":
            pieces.append(("head", _words(element.itertext())))
        elif tag == "list":
            pieces += [("block", _words(item.itertext())) for item in element.findall("item")]
        elif tag == "table":
            for row in element.iter("row"):
                pieces.append(("block", " | ".join(_words(cell.itertext()) for cell in row.findall("cell"))))
        elif tag == "code":
            pieces.append(("block", "".join(element.itertext()).strip()))
        else:
            pieces.append(("block", _words(element.itertext())))
    pieces = [(kind, text) for kind, text in pieces if text.strip(" |")]
    if not any(kind == "block" for kind, _ in pieces):
        raise Unreadable("has no main content (trafilatura found no article text in it)")
    title = (found.title or "").strip() or fallback_title
    text, blocks, title_span = "", [], None
    heading: str | None = None
    segment = 0
    for kind, piece in pieces:
        start = len(text) + (2 if text else 0)
        text += ("\n\n" if text else "") + piece
        if kind == "head":
            if title_span is None and not blocks and heading is None and piece == title:
                title_span = (start, start + len(piece))
            else:
                heading = piece
                segment += 1 if blocks else 0
            continue
        blocks.append(Block(start, start + len(piece), segment, heading))
    return text + "\n", Cleaned(title, title_span, tuple(blocks))


def _words(parts: Iterable[str]) -> str:
    return " ".join("".join(parts).split())


def extract_pdf(data: bytes) -> tuple[str, tuple[int, ...]]:
    """The text layer of every page, joined by form feeds, and where each page starts in it."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise Unreadable("is an encrypted PDF (a password is needed to read it)")
        texts = [page.extract_text() or "" for page in reader.pages]
    except Unreadable:
        raise
    except Exception as exc:  # pypdf raises many kinds on damaged files: any of them skips this file only
        raise Unreadable(f"cannot be read as a PDF ({exc.__class__.__name__}: {exc})") from None
    starts, text = [], ""
    for i, page in enumerate(texts):
        if i:
            text += PAGE_BREAK
        starts.append(len(text))
        text += page
    if not text.strip():
        raise Unreadable("has no text layer (scanned pages? run OCR on it first)")
    return text, tuple(starts)
