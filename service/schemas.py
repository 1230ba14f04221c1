"""Wire models of the HTTP API (and of `cited query --json`), separate from the index's records."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from index.types import Hit, Passage

MAX_QUESTION_CHARS = 1000
MAX_TOP_K = 50

Question = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUESTION_CHARS),
    Field(description=f"The question, 1 to {MAX_QUESTION_CHARS} characters after trimming whitespace."),
]


class QueryRequest(BaseModel):
    # strict: "5" is not a top_k and 3 is not a question; unknown fields are typos, not options.
    model_config = ConfigDict(extra="forbid", strict=True)

    question: Question
    top_k: int = Field(5, ge=1, le=MAX_TOP_K, description=f"How many passages to return, 1 to {MAX_TOP_K}.")
    token_budget: int | None = Field(
        None,
        ge=1,
        le=1_000_000,
        description="If set, return only top passages (in rank order, skipping any that would overflow) "
        "whose cl100k token counts add up to at most this many tokens.",
    )


class Citation(BaseModel):
    doc_id: str = Field(description="Document id: the source file name without .txt.")
    title: str = Field(description="Document title (its first line, or the file name).")
    source: str = Field(description="File name inside the corpus folder.")
    start: int = Field(description="Start offset, in characters, into the file decoded as UTF-8.")
    end: int = Field(description="End offset (exclusive): source_text[start:end] == text.")
    heading: str | None = Field(None, description="Section heading the passage sits under, if any.")

    @classmethod
    def of(cls, passage: Passage) -> Citation:
        return cls(
            doc_id=passage.doc_id,
            title=passage.title,
            source=passage.source,
            start=passage.start,
            end=passage.end,
            heading=passage.heading,
        )


class Result(BaseModel):
    rank: int = Field(description="1-based rank.")
    score: float = Field(description="Cosine similarity of question and passage, in [-1, 1]; higher is closer.")
    text: str = Field(description="The passage, exactly as it appears in the source file.")
    citation: Citation
    tokens: int = Field(description="cl100k tokens in text.")


class QueryResponse(BaseModel):
    question: str
    results: list[Result]
    took_ms: float = Field(description="Server time spent on the query, in milliseconds.")

    @classmethod
    def of(cls, question: str, hits: list[Hit], took_ms: float) -> QueryResponse:
        return cls(
            question=question,
            results=[
                Result(rank=h.rank, score=round(h.score, 6), text=h.passage.text, citation=Citation.of(h.passage), tokens=h.passage.tokens)
                for h in hits
            ],
            took_ms=round(took_ms, 3),
        )


class Health(BaseModel):
    status: str
    documents: int
    passages: int
    model: str
    model_fingerprint: str
    index_built_at: str


class DocumentInfo(BaseModel):
    doc_id: str
    title: str
    source: str
    passages: int


class Documents(BaseModel):
    documents: list[DocumentInfo]


class ErrorDetail(BaseModel):
    status: int
    message: str
    details: list[dict] = Field(default_factory=list)


class ErrorBody(BaseModel):
    """Every non-2xx response has this shape."""

    error: ErrorDetail
