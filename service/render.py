"""`cited query`'s plain output: what a person reads first (the answer sentence), then each result
with its citation, its highlighted sentences and the other files that hold the same text.

Scores are left out on purpose: a fused score of 2.000 reads like certainty, and it only orders
the results of one response. `--json` prints everything.
"""

from __future__ import annotations

from service.schemas import Citation, QueryResponse

MARK = ("\033[1m", "\033[0m")  # bold on a terminal
PLAIN_MARK = ("»", "«")  # elsewhere: visible in a pipe or a log


def where(c: Citation) -> str:
    """source:start-end; offsets into extracted text (HTML, PDF) are marked, with a PDF's page."""
    extracted = "" if c.offsets == "file" else " (extracted text" + (f", page {c.page})" if c.page is not None else ")")
    return f"{c.source}:{c.start}-{c.end}{extracted}"


def titled(c: Citation) -> str:
    return c.title + (f" › {c.heading}" if c.heading else "")


def marked(text: str, start: int, spans: list[tuple[int, int]], mark: tuple[str, str]) -> str:
    """``text`` (which starts at offset ``start`` of its file) with each span wrapped in ``mark``."""
    out, at = [], 0
    for s, e in sorted(spans):
        s, e = max(s - start, at), min(e - start, len(text))
        if s >= e:
            continue
        out += [text[at:s], mark[0], text[s:e], mark[1]]
        at = e
    out.append(text[at:])
    return "".join(out)


def render(response: QueryResponse, color: bool = False) -> str:
    mark = MARK if color else PLAIN_MARK
    lines: list[str] = []
    if response.answer is not None:
        a = response.answer
        lines += [f"Answer: {a.text}", f"        {where(a.citation)}  {titled(a.citation)}", ""]
    for r in response.results:
        lines.append(f"{r.rank}. {where(r.citation)}  {titled(r.citation)}")
        body = marked(r.text, r.citation.start, [(h.start, h.end) for h in r.highlights], mark)
        lines += [("   " + line).rstrip() for line in body.splitlines()]
        if r.also_in:
            lines.append("   also in: " + ", ".join(where(c) for c in r.also_in))
        lines.append("")
    if not response.results:
        lines.append("no passages (is the token budget smaller than every passage?)")
    return "\n".join(lines).rstrip("\n") + "\n"
