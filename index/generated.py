"""A generated answer as plain JSON data: the one shape of POST /answer and of the eval's generated answer.

Like index.response for /query: the service validates and documents it (service/answer_schemas.py),
the eval scores the same dict in-process, so both read the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from index.generate import ChatClient, messages
from index.response import citation, response
from index.search import Retriever, SearchResult
from index.support import CheckedAnswer, check_answer
from index.types import Passage


def sent_passages(found: SearchResult) -> list[Passage]:
    """The passages the model sees, [1]..[k]: /query's results for the same question, top_k and token_budget."""
    return [h.passage for h in found.hits]


def check(retriever: Retriever, text: str, passages: Sequence[Passage]) -> CheckedAnswer:
    """The citation check with the retriever's own tokenizer and embedding model (one forward pass)."""
    return check_answer(text, passages, retriever.lexicon.terms, retriever.embedder.encode)


def generated_response(question: str, found: SearchResult, text: str, model: str, checked: CheckedAnswer, took_ms: float) -> dict[str, Any]:
    passages = sent_passages(found)
    base = response(question, found, took_ms)

    def evidence(match) -> dict[str, Any] | None:
        if match is None:
            return None
        return {
            "passage": match.passage,
            "text": match.text,
            "citation": citation(passages[match.passage - 1], found.files, match.span, found.documents),
            "how": match.how,
            "containment": match.containment,
            "cosine": match.cosine,
        }

    return {
        "question": question,
        "answer": text,
        "supported": checked.supported,
        "sentences": [
            {"start": s.span.start, "end": s.span.end, "text": s.text, "citations": list(s.citations),
             "supported": s.supported, "reason": s.reason, "evidence": evidence(s.match)}
            for s in checked.sentences
        ],
        "invalid_citations": [{"start": m.start, "end": m.end, "marker": m.text, "number": m.number} for m in checked.invalid],
        "results": base["results"],
        "model": model,
        "index_build": base["index_build"],
        "took_ms": base["took_ms"],
    }


def generate(retriever: Retriever, client: ChatClient, question: str, found: SearchResult, took_ms_so_far: float = 0.0) -> dict[str, Any]:
    """Ask the model about ``found``'s passages and check its answer, synchronously (the eval, scripts)."""
    import time

    from index.support import NO_ANSWER

    started = time.perf_counter()
    passages = sent_passages(found)
    if passages:
        completion = client.complete(messages(question, passages))
        text, model = completion.text, completion.model
    else:  # nothing to cite: no model call, the answer says so
        text, model = NO_ANSWER, client.config.model
    checked = check(retriever, text, passages)
    return generated_response(question, found, text, model, checked, took_ms_so_far + (time.perf_counter() - started) * 1000)
