"""Near-duplicate passages across documents (the same article scraped twice, syndicated copies).

Found once at build time by word-shingle containment, so a query only looks the groups up.
Containment (shared shingles / shingles of the smaller passage) rather than Jaccard, because two
scrapes of one article are cut into passages at different places: a passage of one copy is
typically contained in one passage of the other, or split across two.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

SHINGLE_WORDS = 5
DUPLICATE_CONTAINMENT = 0.5  # at least half of the smaller passage's shingles appear in the other
COPIED_SHARE = 0.5  # documents are copies when half the smaller one's passages have a duplicate in the other
MAX_SHINGLE_SPREAD = 50  # passages a shingle may occur in and still count as evidence of a copy
SHARED_RUN = 8  # shingles two passages of copied documents may share before they count as the same text

_WORD = re.compile(r"[^\W_]+")
_APOSTROPHES = re.compile(r"['’ʼ]")  # "what’s" and a scrape's "whats" are the same word


@dataclass(frozen=True)
class DuplicatePair:
    a: int  # passage rows, a < b, in different documents
    b: int
    containment: float


def shingles(text: str, size: int = SHINGLE_WORDS) -> frozenset[int]:
    """Hashed word n-grams of the case-folded letters and digits (punctuation and quote styles ignored).

    Python's str hash is salted per process: compare shingles within one process only.
    """
    words = _WORD.findall(_APOSTROPHES.sub("", text.casefold()))
    if len(words) < size:
        return frozenset({hash(tuple(words))}) if words else frozenset()
    return frozenset(hash(tuple(words[i : i + size])) for i in range(len(words) - size + 1))


def find_duplicates(
    texts: Sequence[str], doc_ids: Sequence[str], threshold: float = DUPLICATE_CONTAINMENT
) -> list[DuplicatePair]:
    """Pairs of passages from different documents whose containment reaches ``threshold``.

    Shared shingles are counted for all pairs at once as a sparse product (passage × shingle
    incidence times its transpose), which stays near-linear for corpora where most passages
    share nothing and runs in compiled code: a rebuild that embeds nothing new is not slowed
    by this stage.
    """
    sets = [shingles(t) for t in texts]
    sizes = np.array([len(s) for s in sets], dtype=np.int64)
    if not sizes.sum():
        return []
    hashes = np.fromiter((h for s in sets for h in s), dtype=np.int64, count=int(sizes.sum()))
    owners = np.repeat(np.arange(len(sets)), sizes)
    _, column, spread = np.unique(hashes, return_inverse=True, return_counts=True)
    # a shingle in one passage pairs nothing; boilerplate shared by many passages says nothing about duplication
    useful = (spread[column] >= 2) & (spread[column] <= MAX_SHINGLE_SPREAD)
    incidence = sparse.csr_matrix(
        (np.ones(int(useful.sum()), dtype=np.int32), (owners[useful], column[useful])), shape=(len(sets), len(spread))
    )
    shared = sparse.triu(incidence @ incidence.T, k=1).tocoo()
    docs = np.unique(np.asarray(doc_ids), return_inverse=True)[1]
    a, b, count = shared.row, shared.col, shared.data
    containment = count / np.minimum(sizes[a], sizes[b])
    keep = (docs[a] != docs[b]) & (containment >= threshold)
    order = np.lexsort((b[keep], a[keep]))
    return [
        DuplicatePair(int(x), int(y), round(float(c), 4))
        for x, y, c in zip(a[keep][order], b[keep][order], containment[keep][order], strict=True)
    ]


def copied_documents(pairs: Iterable[tuple[int, int]], doc_of: Sequence[str]) -> set[frozenset[str]]:
    """Pairs of documents that are copies of one article, judged from their duplicate passage pairs (rows).

    One shared quote makes one passage pair; two scrapes of an article make a pair of most
    passages. Between copies any shared sentence is the same article text, so a result list
    may not show it twice even when the passages were cut at different places.
    """
    paired: dict[tuple[str, str], set[int]] = defaultdict(set)
    for a, b in pairs:
        da, db = doc_of[a], doc_of[b]
        paired[(da, db)].add(a)
        paired[(db, da)].add(b)
    sizes: dict[str, int] = defaultdict(int)
    for doc in doc_of:
        sizes[doc] += 1
    copies = set()
    for (da, db), rows in paired.items():
        if len(rows) >= COPIED_SHARE * min(sizes[da], sizes[db]):
            copies.add(frozenset((da, db)))
    return copies
