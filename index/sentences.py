"""Sentence boundaries inside a block of text, as offsets (the text itself is never rewritten)."""

from __future__ import annotations

import re

# Abbreviations whose trailing period does not end a sentence. Lower-case, without the dot.
ABBREVIATIONS = frozenset(
    """
    mr mrs ms dr prof gen col lt sgt capt cmdr adm gov sen rep st jr sr no vol
    vs etc e.g i.e u.s u.k u.n a.m p.m inc ltd co corp dept fig approx est jan feb mar apr
    jun jul aug sep sept oct nov dec mt ft
    """.split()
)

# A candidate boundary: terminal punctuation, optional closing quotes/brackets, then whitespace.
_BOUNDARY = re.compile(r"""[.!?…]+["'”’)\]]*(?=\s+)""")
# What may open the next sentence: an upper-case letter, a digit, or an opening quote/bracket.
_OPENER = re.compile(r"""\s+(?=["'“‘(\[]?[A-Z0-9])""")
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)\.$")


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Split ``text[start:end]`` into sentences and return their (start, end) offsets in ``text``.

    Rule-based on purpose: the offsets must be exact and the behaviour predictable; a
    missed split only makes a sentence longer, which the chunker tolerates.
    Offsets exclude surrounding whitespace; concatenating the sentences with the
    whitespace between them reproduces the input.
    """
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    cursor = start
    for match in _BOUNDARY.finditer(text, start, end):
        stop = match.end()
        if not (_OPENER.match(text, stop, end) or _detached_stop(text, match.start(), stop)):
            continue
        if text[match.start()] == "." and _is_abbreviation(text, cursor, match.start() + 1):
            continue
        _append(text, spans, cursor, stop)
        cursor = stop
    _append(text, spans, cursor, end)
    return spans


def _detached_stop(text: str, dot: int, stop: int) -> bool:
    """A lone full stop with a space before it ("the wing . the flow"): tokenized text.

    Abbreviations never stand apart from their word, so such a stop ends a sentence even
    when the next word is lower-case, as in corpora that were lower-cased and tokenized
    (Cranfield, Penn Treebank style).
    """
    return stop - dot == 1 and text[dot] == "." and dot > 0 and text[dot - 1].isspace()


def _is_abbreviation(text: str, sentence_start: int, dot_end: int) -> bool:
    word = _WORD_BEFORE.search(text, sentence_start, dot_end)
    if word is None:
        return False
    token = word.group(1).lower().rstrip(".")
    # Single capital letters ("Sean R. Roberts") are initials, not sentence ends.
    return token in ABBREVIATIONS or (len(token) == 1 and token.isalpha())


def _append(text: str, spans: list[tuple[int, int]], start: int, end: int) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        spans.append((start, end))
