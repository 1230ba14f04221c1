"""Abbreviations defined in the corpus itself ("East Turkestan Islamic Movement (ETIM)").

Found at build time with the Schwartz & Hearst (2003) rule, so a question that uses one form
can match passages that use the other, in any corpus and without a hand-kept alias list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_DEFINITION = re.compile(r"\(\s*([A-Z][A-Za-z0-9.\-]{1,9})\s*\)")
_WORDS = re.compile(r"[^\W_][\w’'\-]*")


def _long_form(abbreviation: str, preceding: str) -> str | None:
    """Shortest word sequence before the parenthesis whose letters spell the abbreviation in order."""
    letters = [c.lower() for c in abbreviation if c.isalnum()]
    words = _WORDS.findall(preceding)[-(min(len(letters) + 5, 2 * len(letters))) :]
    text = " ".join(words)
    i, j = len(letters) - 1, len(text) - 1
    while i >= 0:
        while j >= 0 and (text[j].lower() != letters[i] or (i == 0 and j > 0 and text[j - 1].isalnum())):
            j -= 1
        if j < 0:
            return None
        i, j = i - 1, j - 1
    start = text.rfind(" ", 0, j + 1) + 1
    long_form = text[start:]
    if len(long_form.split()) < 2 or long_form.lower() == abbreviation.lower():
        return None
    return long_form


def find_aliases(texts: Iterable[str]) -> dict[str, list[str]]:
    """Map each form to the other forms it is defined as; symmetric, keys as written."""
    table: dict[str, set[str]] = {}
    for text in texts:
        for match in _DEFINITION.finditer(text):
            abbreviation = match.group(1).rstrip(".")
            if sum(c.isupper() for c in abbreviation) < 2:
                continue
            long_form = _long_form(abbreviation, text[: match.start()])
            if long_form:
                table.setdefault(abbreviation, set()).add(long_form)
                table.setdefault(long_form, set()).add(abbreviation)
    return {k: sorted(v) for k, v in sorted(table.items())}


def expand(question: str, aliases: dict[str, list[str]]) -> str:
    """The question plus the other forms of every alias it mentions (abbreviations match case-sensitively)."""
    extra: list[str] = []
    lowered = question.lower()
    for form, others in aliases.items():
        found = re.search(rf"(?<!\w){re.escape(form)}(?!\w)", question) if form.isupper() or "-" in form else form.lower() in lowered
        if found:
            extra.extend(o for o in others if o.lower() not in lowered)
    return question if not extra else question + " " + " ".join(dict.fromkeys(extra))
