"""Wire models of POST /answer: the generated answer, each sentence's citation check, the passages sent."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from service.schemas import Citation, QueryRequest, Result


class AnswerRequest(QueryRequest):
    stream: bool = Field(
        False,
        description="Answer as server-sent events (text/event-stream): `passages`, then `delta` events as the model "
        "writes, then `answer` with the checked answer (or `error`). Off: one JSON object.",
    )


class Evidence(BaseModel):
    passage: int = Field(description="The [n] of the passage holding the sentence.")
    text: str = Field(description="The passage sentence that contains the answer sentence, verbatim.")
    citation: Citation = Field(description="Where that passage sentence is: start/end are its own offsets in the document.")
    how: Literal["lexical", "vector"] = Field(
        description="lexical: enough of the answer sentence's content terms occur in it; vector: their sentence vectors are close enough."
    )
    containment: float = Field(description="Share of the answer sentence's content terms (stemmed) found in the passage sentence.")
    cosine: float = Field(description="Cosine similarity of the two sentences' vectors (the index's embedding model).")


class CheckedSentence(BaseModel):
    start: int = Field(description="Start offset of the sentence in `answer` (markers included).")
    end: int = Field(description="End offset (exclusive): answer[start:end] == text.")
    text: str
    citations: list[int] = Field(description="The passage numbers its markers name that were sent.")
    supported: bool = Field(description="A cited passage contains what the sentence says (docs/generation.md).")
    reason: Literal["supported", "no_answer", "uncited", "invalid_citation", "not_in_cited"] = Field(
        description="supported; no_answer: the sentence that says the passages do not answer (claims nothing); uncited: no marker, "
        "so a reader cannot check it (unsupported); invalid_citation: its markers name only passages that were not sent; "
        "not_in_cited: no cited passage contains it."
    )
    evidence: Evidence | None = Field(
        description="The passage sentence that contains it: for a supported sentence, in a cited passage; for an uncited "
        "one, in any passage sent (where it could have been cited from); else null."
    )


class InvalidCitation(BaseModel):
    start: int = Field(description="Start offset of the marker in `answer`.")
    end: int
    marker: str = Field(description="The marker as written, e.g. [9].")
    number: int = Field(description="The passage number it names, which was not sent.")


class AnswerResponse(BaseModel):
    question: str
    answer: str = Field(description="The model's answer, verbatim, with its [n] markers.")
    supported: bool = Field(description="Every sentence is supported and every marker names a passage that was sent.")
    sentences: list[CheckedSentence]
    invalid_citations: list[InvalidCitation] = Field(description="Markers naming a passage number that was not sent.")
    results: list[Result] = Field(description="The passages sent to the model, exactly as POST /query returns them: [n] is the result of rank n.")
    model: str = Field(description="The model that answered, as the endpoint names it.")
    index_build: str = Field(description="The index build that retrieved the passages (see /health).")
    took_ms: float = Field(description="Server time spent, retrieval, generation and check included, in milliseconds.")
