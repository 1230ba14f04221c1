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

SHINGLE_WORDS = 5
DUPLICATE_CONTAINMENT = 0.5  # at least half of the smaller passage's shingles appear in the other
COPIED_SHARE = 0.5  # documents are copies when half the smaller one's passages have a duplicate in the other
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

    An inverted index from shingle to passages keeps this near-linear for corpora where most
    passages share nothing.
    """
    sets = [shingles(t) for t in texts]
    postings: dict[int, list[int]] = defaultdict(list)
    for row, shingle_set in enumerate(sets):
        for s in shingle_set:
            postings[s].append(row)
    shared: dict[tuple[int, int], int] = defaultdict(int)
    for rows in postings.values():
        if len(rows) > 50:  # boilerplate shared by many passages says nothing about duplication
            continue
        for i, a in enumerate(rows):
            for b in rows[i + 1 :]:
                if doc_ids[a] != doc_ids[b]:
                    shared[(a, b)] += 1
    pairs = []
    for (a, b), count in sorted(shared.items()):
        containment = count / min(len(sets[a]), len(sets[b]))
        if containment >= threshold:
            pairs.append(DuplicatePair(a, b, round(containment, 4)))
    return pairs


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
