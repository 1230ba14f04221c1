"""Wire models of the HTTP API (and of `cited query --json`), separate from the index's records."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from index import SearchResult
from index.response import response

MAX_QUESTION_CHARS = 1000
MAX_TOP_K = 50

# Whitespace, listed code point by code point: Python's str.isspace(), ECMAScript's \s (what a JSON
# Schema pattern means) and pydantic's Rust regex each disagree on a few characters (U+001C-001F,
# U+0085, U+FEFF), so the schema spells the set out and the server uses exactly that set.
WHITESPACE = "\t\n\v\f\r \x1c\x1d\x1e\x1f\x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000\ufeff"
# One character that is not whitespace. Written with escapes that ECMAScript, Python and Rust all read alike.
QUESTION_PATTERN = "[^\\t\\n\\v\\f\\r \\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff]"

# The rule the schema states is the whole rule: at most 1000 characters as sent, at least one of them
# not whitespace. Trimming happens after validation and never decides whether a question is accepted.
Question = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_QUESTION_CHARS, pattern=QUESTION_PATTERN),
    AfterValidator(lambda question: question.strip(WHITESPACE)),
    Field(
        description=f"The question: 1 to {MAX_QUESTION_CHARS} characters as sent (surrounding whitespace counts), "
        "at least one of them not whitespace. Surrounding whitespace is trimmed before searching."
    ),
]


def _integral_float_to_int(value: Any) -> Any:
    """JSON Schema counts 30.0 as an integer, so the API does too; 30.5, "5" and true stay refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# JSON integers: strict (no strings, no booleans), but 30.0 is 30. The bounds sit inside the inner
# Annotated: put beside a BeforeValidator, pydantic writes them into the schema as "ge"/"le" (not
# JSON Schema keywords) inside an anyOf, and the schema loses the limits.
TopK = Annotated[Annotated[int, Field(ge=1, le=MAX_TOP_K)], BeforeValidator(_integral_float_to_int)]
TokenBudget = Annotated[Annotated[int, Field(ge=1, le=1_000_000)], BeforeValidator(_integral_float_to_int)]


class QueryRequest(BaseModel):
    # strict: "5" is not a top_k and 3 is not a question; unknown fields are typos, not options.
    model_config = ConfigDict(extra="forbid", strict=True)

    question: Question
    top_k: TopK = Field(5, description=f"How many passages to return, 1 to {MAX_TOP_K}.")
    token_budget: TokenBudget | None = Field(
        None,
        description="If set, return only top passages (in rank order, skipping any that would overflow) "
        "whose cl100k token counts add up to at most this many tokens.",
    )


class Citation(BaseModel):
    doc_id: str = Field(description="Document id: the source file's path inside the corpus folder, without a trailing .txt (other extensions are kept: guide.md, page.html).")
    title: str = Field(description="Document title (its first line or heading, the page's title, or the file name).")
    source: str = Field(description="File name inside the corpus folder.")
    start: int = Field(description="Start offset, in characters, into the text `offsets` names: the file decoded with `encoding`, or the extracted text.")
    end: int = Field(description="End offset (exclusive): source_text[start:end] == text.")
    heading: str | None = Field(None, description="Section heading the passage sits under, if any.")
    sha256: str | None = Field(
        None,
        description="sha256 (hex) of the source file's bytes when it was indexed. If the file's sha256 is different now, "
        "the file changed after the build and the offsets may no longer slice to the text.",
    )
    offsets: Literal["file", "extracted"] = Field(
        "file",
        description='Which text start/end index. "file": the source file itself (.txt, .md), decoded with `encoding` and no newline '
        'translation. "extracted": the text the index extracted from the file (.html, .pdf), served by GET /documents/{doc_id}/text.',
    )
    encoding: str | None = Field(
        "utf-8", description='With offsets "file": the Python codec the file was decoded with ("utf-8", or the encoding detected for a file '
        "that is not UTF-8). Null for extracted text.",
    )
    page: int | None = Field(
        None, description="PDF only: the page (1-based) on which the cited span starts (a passage may run onto the next page). Null for other formats."
    )


class Highlight(BaseModel):
    start: int = Field(description="Start offset of a highlighted sentence, in the same text as the result's citation.")
    end: int = Field(description="End offset (exclusive); source_text[start:end] is the sentence.")


class Result(BaseModel):
    rank: int = Field(description="1-based rank.")
    score: float = Field(
        description="Ranking score, higher is better. Its scale depends on the retrieval mode: cosine similarity "
        "(dense), BM25 (bm25) or fused min-max-normalised scores (hybrid, up to 2). Compare scores within one response only."
    )
    text: str = Field(description="The passage, exactly as it appears in the text its citation's offsets index.")
    citation: Citation
    tokens: int = Field(description="cl100k tokens in text.")
    highlights: list[Highlight] = Field(description="The sentence(s) of this passage that best answer the question.")
    also_in: list[Citation] = Field(description="The same text in other documents (near-duplicates collapsed into this result).")


class AnswerSentence(BaseModel):
    text: str = Field(description="The one sentence that best answers the question, extracted verbatim.")
    citation: Citation = Field(description="Where the sentence is: start/end are the sentence's own offsets.")


class QueryResponse(BaseModel):
    question: str
    answer: AnswerSentence | None = Field(description="Best answering sentence among the top results; null when no results.")
    best_cosine: float | None = Field(
        description="Highest cosine similarity between the question and a returned passage; null without results. "
        "Not a probability: it does not tell unanswerable questions apart (docs/results.md)."
    )
    results: list[Result]
    index_build: str = Field(description="The index build that answered (see /health).")
    took_ms: float = Field(description="Server time spent on the query, in milliseconds.")

    @classmethod
    def of(cls, question: str, found: SearchResult, took_ms: float) -> QueryResponse:
        return cls.model_validate(response(question, found, took_ms))


class CacheStats(BaseModel):
    size: int
    capacity: int
    hits: int
    misses: int
    hit_rate: float | None = Field(description="hits / (hits + misses) since start; null before the first question.")


class LaneStats(BaseModel):
    """The inference lane since start: how much batching happened and what was refused."""

    queued: int = Field(description="Questions waiting for the model now.")
    max_queue: int
    max_batch: int
    batches: int = Field(description="Forward passes run (each for one or more questions).")
    questions: int = Field(description="Questions answered by the lane.")
    mean_batch: float | None
    largest_batch: int
    encoded: int = Field(description="Questions that needed the model (the rest came from the cache).")
    rejected: int = Field(description="Requests refused with 503 because the queue was full.")
    timed_out: int = Field(description="Requests answered 503 because they waited longer than request_timeout_ms.")
    skipped: int = Field(description="Queued questions never computed because their request had already given up.")
    torch_threads: int
    cache: CacheStats


class Probe(BaseModel):
    status: str
    index_build: str | None = None


class SkippedFile(BaseModel):
    source: str
    reason: str


class Health(BaseModel):
    status: str = Field(description='"ok", or "stale" when the served build no longer matches CURRENT, the corpus or the settings (stale_reasons says how).')
    stale_reasons: list[str] = Field(description="Why the served build is stale: a file added, changed or removed since it was built, CURRENT naming another build, changed settings.")
    published_build: str | None = Field(description="The build CURRENT names, as of the last check (every reload_interval_s; null when that is 0).")
    documents: int
    passages: int
    model: str
    model_fingerprint: str
    index_built_at: str
    index_build: str = Field(description="The live build folder's name: after a publish, shows when this server switched.")
    skipped: list[SkippedFile] = Field(description="Corpus files the live build did not index, and why (empty, another format, an unreadable PDF, a page without main content, a link outside the folder, too large).")
    lane: LaneStats


class DocumentInfo(BaseModel):
    doc_id: str
    title: str
    source: str
    passages: int
    format: Literal["text", "markdown", "html", "pdf"] = Field("text", description="What the file is: text (.txt), markdown, html or pdf.")
    offsets: Literal["file", "extracted"] = Field("file", description="Which text its citations' offsets index: the file, or the extracted text.")
    encoding: str | None = Field("utf-8", description="The codec the file was decoded with (text formats); null for extracted text.")


class Documents(BaseModel):
    documents: list[DocumentInfo]


class ErrorDetail(BaseModel):
    status: int
    message: str
    details: list[dict] = Field(default_factory=list)


class ErrorBody(BaseModel):
    """Every non-2xx response has this shape."""

    error: ErrorDetail
