"""Cleaning: decide which lines of a scraped page are article text.

This module owns the walk over a document's lines: it applies the furniture
rules of ``rules.py`` (alone and with their neighbours), picks the title,
turns short standalone lines into section headings, and groups the kept lines
into segments. It never rewrites text: every kept line is reported as offsets
into the original string, so passages can later be cut from the original.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from index import rules
from index.types import Block, Cleaned, Removal

# Every line boundary Python's str.splitlines() knows, so a stray U+2028 cannot glue two lines.
_LINE_BREAK = re.compile(r"\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")

# Trimmed from both ends of a line: all of str.isspace(), plus the invisible BOM and
# zero-width characters scrapers leave behind, so a "\ufeffTitle" line yields "Title".
_EDGE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
    "\ufeff\u200b\u200c\u200d\u2060"
)

TITLE_MAX_CHARS = 150
HEADING_MAX_WORDS = 12
HEADING_MAX_CHARS = 80
_QUOTES = "\"'”’»“‘«"
# Words a title-cased heading may leave in lower case.
_SMALL_WORDS = {"a", "an", "the", "and", "or", "but", "of", "in", "on", "at", "to", "for", "by",
                "with", "from", "as", "vs", "vs.", "via", "into", "over", "per"}


class _Line(NamedTuple):
    start: int  # offsets of the stripped text; start == end for a blank line
    end: int
    text: str


def clean(text: str, fallback_title: str) -> Cleaned:
    """Report which lines of ``text`` are article text, without rewriting any of it.

    The order matters: single-line rules run first so the neighbour rules know which
    lines are already furniture, and the title is found before the end zone because a
    zone marker is trusted only once article text (not just a title) has been kept.
    """
    lines = _split_lines(text)
    # verdict[i] is the name of the rule that dropped line i, or None while it is kept.
    verdict: list[str | None] = [_line_verdict(ln.text) for ln in lines]
    _mark_caption_alt_text(lines, verdict)
    _mark_author_cards(lines, verdict)
    _mark_link_lists(lines, verdict)
    title_idx = _find_title(lines, verdict)
    _mark_end_zone(lines, verdict, title_idx)
    return _assemble(lines, verdict, title_idx, fallback_title)


def _split_lines(text: str) -> list[_Line]:
    out: list[_Line] = []
    pos = 0
    for brk in [*_LINE_BREAK.finditer(text), None]:
        end = brk.start() if brk else len(text)
        raw = text[pos:end]
        body = raw.strip(_EDGE)
        if body:
            s = pos + (len(raw) - len(raw.lstrip(_EDGE)))
            out.append(_Line(s, s + len(body), body))
        else:
            out.append(_Line(pos, pos, ""))
        if brk is None:
            break
        pos = brk.end()
    return out


def _line_verdict(line: str) -> str | None:
    """Zone markers are checked first so 'Comments' is treated as a zone, not a mere button."""
    if not line:
        return None
    if rules.END_ZONE.matches(line):
        return rules.END_ZONE.name
    for rule in rules.LINE_RULES:
        if rule.matches(line):
            return rule.name
    return None


def _next_nonblank(lines: list[_Line], i: int) -> int | None:
    for j in range(i + 1, len(lines)):
        if lines[j].text:
            return j
    return None


def _strip_closers(line: str) -> str:
    return line.rstrip(rules.CLOSERS)


def _short_label(line: str) -> bool:
    """A short line with no sentence ending: the shape of alt text, headings and titles."""
    return (
        len(line) <= HEADING_MAX_CHARS
        and len(line.split()) <= HEADING_MAX_WORDS
        and not _strip_closers(line).endswith(tuple(rules.SENTENCE_END + "?"))
        and any(ch.isalpha() for ch in line)
    )


def _mark_caption_alt_text(lines: list[_Line], verdict: list[str | None]) -> None:
    """Image alt text sits on the line right above its credited caption, with no blank line between."""
    for j in range(1, len(lines)):
        i = j - 1
        if verdict[j] == rules.CREDITED_CAPTION.name and lines[i].text and verdict[i] is None:
            if _short_label(lines[i].text) and not rules.LIST_ITEM.match(lines[i].text):
                verdict[i] = rules.CAPTION_ALT.name


def _mark_author_cards(lines: list[_Line], verdict: list[str | None]) -> None:
    """An author box repeats the name: 'Jane Doe' then 'Jane Doe is a correspondent …'."""
    for i, ln in enumerate(lines):
        if verdict[i] is not None or not rules.AUTHOR_CARD.matches(ln.text):
            continue
        j = _next_nonblank(lines, i)
        if j is None or verdict[j] is not None:
            continue
        bio = lines[j].text
        if re.match(re.escape(ln.text) + r"\s+(?:is|was)\s", bio) and rules.AUTHOR_ROLE.search(bio[:160]):
            verdict[i] = verdict[j] = rules.AUTHOR_CARD.name


def _mark_link_lists(lines: list[_Line], verdict: list[str | None]) -> None:
    """Runs of list items (blank lines allowed between) that are mostly links are 'more stories' lists."""

    def flush(run: list[int]) -> None:
        links = sum(rules.looks_like_link(lines[k].text) for k in run)
        if len(run) >= rules.LINK_RUN_MIN and links >= rules.LINK_SHARE * len(run):
            for k in run:
                verdict[k] = rules.LINK_LIST.name

    run: list[int] = []
    for i, ln in enumerate(lines):
        if not ln.text:
            continue
        if verdict[i] is None and rules.LIST_ITEM.match(ln.text):
            run.append(i)
        else:
            flush(run)
            run = []
    flush(run)


def _looks_like_title(line: str) -> bool:
    return (
        len(line) <= TITLE_MAX_CHARS
        and not _strip_closers(line).endswith((".", ",", ";", ":"))
        and any(ch.isalpha() for ch in line)
        and not rules.LIST_ITEM.match(line)
    )


def _find_title(lines: list[_Line], verdict: list[str | None]) -> int | None:
    for i, ln in enumerate(lines):
        if ln.text and verdict[i] is None:
            return i if _looks_like_title(ln.text) else None
    return None


def _is_long_prose(line: str) -> bool:
    tail = line.rstrip(_QUOTES + ")]")
    return (
        len(line) >= rules.ZONE_PROSE_MIN_CHARS
        and tail.endswith((".", "!", "?"))
        and not rules.LIST_ITEM.match(line)
    )


def _mark_end_zone(lines: list[_Line], verdict: list[str | None], title_idx: int | None) -> None:
    """From the first trusted end marker on, every line is dropped under the zone rule's name.

    A marker is trusted only if article text was kept before it and little prose follows it;
    otherwise it was a sidebar or an inline teaser box, and only the marker line goes.
    """
    zone = rules.END_ZONE.name
    prose_after = [0] * (len(lines) + 1)  # prose_after[k]: long prose lines at index >= k
    for k in range(len(lines) - 1, -1, -1):
        here = verdict[k] is None and _is_long_prose(lines[k].text)
        prose_after[k] = prose_after[k + 1] + (1 if here else 0)
    kept_before = False
    for i, ln in enumerate(lines):
        if not ln.text:
            continue
        if verdict[i] is None and i != title_idx:
            kept_before = True
        if verdict[i] == zone and kept_before and prose_after[i + 1] <= rules.ZONE_MAX_PROSE_AFTER:
            for k in range(i + 1, len(lines)):
                if lines[k].text:
                    verdict[k] = zone
            return


def _is_heading(lines: list[_Line], i: int) -> bool:
    """A one-line paragraph, short, capitalised and not ending like a sentence.

    A question counts only in Title Case ('What Is ETIM?'), because a one-line
    question in sentence case ('So what's driving them?') is usually prose.
    """
    line = lines[i].text
    if i > 0 and lines[i - 1].text:
        return False
    if i + 1 >= len(lines) or lines[i + 1].text or _next_nonblank(lines, i) is None:
        return False
    if not (line[0].isupper() or line[0].isdigit()) or rules.LIST_ITEM.match(line):
        return False
    if line.endswith(tuple(_QUOTES)):
        return False
    if line.endswith("?"):
        return _title_cased(line[:-1]) and _short_label(line[:-1])
    return _short_label(line)


def _title_cased(line: str) -> bool:
    words = [w for w in line.split() if any(ch.isalpha() for ch in w)]
    major = [w for w in words if w.lower() not in _SMALL_WORDS]
    capped = [w for w in major if not w[0].isalpha() or w[0].isupper()]
    return bool(major) and len(capped) >= 0.8 * len(major)


def _assemble(
    lines: list[_Line], verdict: list[str | None], title_idx: int | None, fallback_title: str
) -> Cleaned:
    """Turn verdicts into blocks; furniture, headings and captions close the current segment."""
    blocks: list[Block] = []
    removed: list[Removal] = []
    kept_texts: set[str] = set()
    heading: str | None = None
    segment = 0
    pending_break = False

    for i, ln in enumerate(lines):
        if not ln.text or i == title_idx:
            continue
        if verdict[i] is None and ln.text in kept_texts and len(ln.text) >= rules.REPEAT_MIN_CHARS:
            verdict[i] = rules.REPEAT.name
        if verdict[i] is not None:
            removed.append(Removal(ln.start, ln.end, verdict[i]))
            pending_break = True
            continue
        if _is_heading(lines, i):
            heading = ln.text
            pending_break = True
            continue
        kind = "prose"
        j = _next_nonblank(lines, i)
        if j is not None and verdict[j] is None and lines[j].text == ln.text:
            kind = "caption"
            verdict[j] = rules.CAPTION_REPEAT.name
        if blocks and (pending_break or kind == "caption" or blocks[-1].kind == "caption"):
            segment += 1
        pending_break = False
        blocks.append(Block(ln.start, ln.end, segment, heading, kind))
        kept_texts.add(ln.text)

    if title_idx is None:
        return Cleaned(fallback_title, None, tuple(blocks), tuple(removed))
    t = lines[title_idx]
    return Cleaned(t.text, (t.start, t.end), tuple(blocks), tuple(removed))
