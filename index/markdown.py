"""Markdown: find headings, paragraphs and code with markdown-it-py's token map, never rewriting the text.

Citations of a Markdown file index the file itself, so a passage is the Markdown as written
(``**bold**``, list markers, link syntax included). The parser is used only for structure: each
block token's ``map`` gives its line range, which becomes offsets into the original text.

- Headings (ATX ``#`` and setext) become the ``heading`` of the blocks under them; a level-1
  heading before any other content is the title. Headings are not passage text.
- Paragraphs (also inside lists and block quotes, list and quote markers included), tables and
  code blocks are kept, fenced code with its fences: questions about a README or a guide are often
  answered by a command, best kept in one passage with the sentence that introduces it.
- YAML front matter (``---`` … ``---`` at the top: metadata, not prose) and raw HTML blocks
  (comments, embeds) are dropped and reported as removals. Like a heading, a removal ends the
  segment, so no passage runs across dropped text.
- The furniture rules of ``rules.py`` are for scraped pages and do not run here: Markdown is written
  by hand.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from index.types import Block, Cleaned, Removal

# Where markdown-it splits lines: it normalises \r\n and \r to \n before parsing, so its line
# numbers count exactly these breaks (not U+2028 or form feeds).
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_EDGE = " \t\ufeff"


@cache
def _parser() -> Any:
    from markdown_it import MarkdownIt
    from mdit_py_plugins.front_matter import front_matter_plugin

    # CommonMark plus GitHub tables; html on so raw HTML is a token of its own (dropped), not paragraph text
    return MarkdownIt("commonmark", {"html": True}).enable("table").use(front_matter_plugin)


def _lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of every line, line break excluded, as markdown-it numbers them."""
    spans, pos = [], 0
    for brk in _LINE_BREAK.finditer(text):
        spans.append((pos, brk.start()))
        pos = brk.end()
    spans.append((pos, len(text)))
    return spans


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and (text[start] in _EDGE or text[start].isspace()):
        start += 1
    while end > start and (text[end - 1] in _EDGE or text[end - 1].isspace()):
        end -= 1
    return start, end


def markdown_layout(text: str, fallback_title: str) -> Cleaned:
    """The kept blocks of a Markdown document, as offsets into ``text`` (the file, decoded)."""
    tokens = _parser().parse(text)
    lines = _lines(text)

    def span(first: int, last: int) -> tuple[int, int]:  # lines [first, last)
        last = min(last, len(lines))
        if first >= last:
            return lines[min(first, len(lines) - 1)][0], lines[min(first, len(lines) - 1)][0]
        return _trimmed(text, lines[first][0], lines[last - 1][1])

    blocks: list[Block] = []
    removed: list[Removal] = []
    title, title_span = fallback_title, None
    heading: str | None = None
    segment = 0
    inside_table = 0
    for i, token in enumerate(tokens):
        if token.type == "table_open":
            inside_table += 1
        elif token.type == "table_close":
            inside_table -= 1
            continue
        if token.map is None or (inside_table and token.type != "table_open"):
            continue
        first, last = token.map
        if token.type in ("front_matter", "html_block"):
            start, end = span(first, last)
            if start < end:
                removed.append(Removal(start, end, "markdown-" + token.type.replace("_", "-")))
                segment += 1 if blocks else 0
        elif token.type == "heading_open":
            inline = tokens[i + 1]
            start, end = span(first, first + 1)
            content = inline.content.strip()
            hit = text.find(content, start, end) if content else -1
            if token.tag == "h1" and not blocks and title_span is None and heading is None and content:
                title, title_span = content, ((hit, hit + len(content)) if hit >= 0 else None)
            else:
                heading = content or None
                segment += 1 if blocks else 0
        elif token.type in ("paragraph_open", "table_open", "code_block", "fence"):
            start, end = span(first, last)
            if start < end:
                blocks.append(Block(start, end, segment, heading))
    return Cleaned(title, title_span, tuple(blocks), tuple(removed))
