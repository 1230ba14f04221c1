"""Turn a corpus folder into a published index, and open the live one (rebuilding it when stale)."""

from __future__ import annotations

import logging
import time
from contextlib import AbstractContextManager, nullcontext, suppress
from dataclasses import asdict
from pathlib import Path

from index.chunk import chunk_document, embedding_input
from index.clean import clean
from index.components import DUPLICATES, LEXICAL, SENTENCES, write_duplicates, write_sentences
from index.dedup import find_duplicates
from index.config import IndexConfig
from index.embed import Embedder, ModelInfo
from index.errors import CitedError, CorpusError, IndexCorrupt, IndexMissing, IndexStale
from index.highlight import Sentence, sentence_spans
from index.ingest import Corpus, corpus_digest, read_corpus
from index.lexical import BM25Index
from index.lock import index_lock
from index.manifest import expected_inputs, new_manifest, stale_reasons
from index.pooling import Embedded, embed_apart, embed_pooled
from index.reuse import POOLED, known_vectors
from index.store import StoredIndex, io_errors, read_index, step, tidy, write_index
from index.texts import TEXTS, write_texts
from index.types import Document, Passage

log = logging.getLogger(__name__)


def passages_for(corpus: Corpus, config: IndexConfig, embedder: Embedder, previous: StoredIndex | None = None) -> tuple[list[Passage], list[dict]]:
    """Clean and chunk the corpus; also returns one summary record per document.

    A file ``previous`` indexed with the same bytes, model, chunking and pipeline code keeps its
    passages: chunking is a pure function of those, so only changed files are chunked again.
    """
    unchanged = _chunks_by_file(previous, expected_inputs(embedder.info, config.chunk, corpus.files, config.exact_up_to))
    passages: list[Passage] = []
    documents: list[dict] = []
    limit = embedder.info.max_seq_length
    for doc in corpus.documents:
        found = unchanged.get((doc.source, corpus.files[doc.source]))
        if found is None or found[1]["doc_id"] != doc.doc_id:  # an id changes only when a clashing name came or went
            # Markdown and HTML come with the structure their parser found; plain text and a PDF's text are cleaned by rules.
            cleaned = doc.layout or clean(doc.text, fallback_title=Path(doc.source).stem)
            chunks = chunk_document(doc, cleaned, config.chunk, embedder.model_length, limit)
            found = chunks, {"doc_id": doc.doc_id, "source": doc.source, "title": cleaned.title, "passages": len(chunks), **text_record(doc)}
        passages.extend(found[0])
        documents.append(found[1])
    if not passages:
        raise CorpusError(
            f"corpus folder {config.corpus_dir}: no readable article text in its {len(corpus.documents)} document(s) "
            "(every line is blank or page furniture): nothing to index"
        )
    return passages, documents


def text_record(doc: Document) -> dict:
    """What a client needs to slice a document's citations: which text the offsets index, how to
    decode the file (text formats), where each page starts (PDF). Kept in the manifest's documents."""
    return {"format": doc.format, "offsets": doc.offsets, "encoding": doc.encoding, "pages": list(doc.pages) or None}


def _chunks_by_file(previous: StoredIndex | None, expected: dict) -> dict[tuple[str, str], tuple[list[Passage], dict]]:
    """(source, sha256) -> the passages and summary ``previous`` made of that file, if made the way this build would."""
    # everything but the corpus and the vector index must match: those do not change a file's passages
    if previous is None or stale_reasons({**previous.manifest, "corpus": expected["corpus"], "exact_up_to": expected["exact_up_to"]}, expected):
        return {}
    files = previous.manifest["corpus"]["files"]
    by_source: dict[str, list[Passage]] = {}
    for passage in previous.passages:
        by_source.setdefault(passage.source, []).append(passage)
    return {(d["source"], files[d["source"]]): (by_source.get(d["source"], []), d) for d in previous.manifest["documents"]}


def build_index(config: IndexConfig, embedder: Embedder, progress: bool = False) -> StoredIndex:
    """Build and publish; text the live build already embedded with this model is not encoded again.

    Holds the index folder's lock throughout, so two builds never interleave and the leftovers
    of a killed one are removed by the next. A file-system error is an IndexIOError naming the file.
    """
    with index_lock(config.index_dir), io_errors(config.index_dir, "cannot build the index"):  # one writer: a second build stops here at once, naming this one
        step("locked")
        return _build(config, embedder, progress)


def _build(config: IndexConfig, embedder: Embedder, progress: bool) -> StoredIndex:
    started = time.perf_counter()
    milvus = _milvus_writer(config)  # connected before the slow part: an unreachable Milvus fails at once
    corpus = read_corpus(config.corpus_dir, config.files)
    step("corpus-read")
    live = _live(config, embedder)
    known = known_vectors(live, config.chunk.sentence_vectors)
    passages, documents = passages_for(corpus, config, embedder, live)
    texts = [embedding_input(p.title, p.heading, p.text, config.chunk.embed_context) for p in passages]
    sentences, members = sentence_spans(passages)
    embed = embed_pooled if config.chunk.sentence_vectors == POOLED else embed_apart
    with _engine(config, embedder) as encoder:
        embedded = embed(encoder, passages, texts, sentences, members, known, config.batch_size, progress)
    step("embedded")
    manifest = new_manifest(
        expected_inputs(embedder.info, config.chunk, corpus.files, config.exact_up_to),
        corpus_stat=corpus.stat,
        skipped=[asdict(s) for s in corpus.skipped],
        documents=documents,
        passages=len(passages),
        reuse=embedded.counts,
        sentence_vectors={"method": config.chunk.sentence_vectors, "encoded_apart": embedded.encoded_apart},
        build_seconds=round(time.perf_counter() - started, 3),
        engine=config.engine,
    )
    extras = _components(passages, texts, sentences, members, embedded, config.exact_up_to)
    extras[TEXTS] = write_texts(corpus.documents)  # what citations slice, served without re-reading the corpus
    hooks = {} if milvus is None else {
        "before_publish": lambda build: milvus.write(build, passages, embedded.passages, texts, BM25Index.analyser().terms),  # before CURRENT names it
        "removed": lambda build: milvus.drop([build]),
    }
    write_index(config.index_dir, manifest, passages, embedded.passages, extras, exact_up_to=config.exact_up_to, **hooks)
    log.info(
        "built index: %d documents, %d passages (%d reused, %d embedded) in %.1fs",
        len(documents), len(passages), embedded.counts["passages_reused"], embedded.counts["passages_embedded"], time.perf_counter() - started,
    )
    return read_index(config.index_dir, load_vectors=config.store.kind == "faiss")


def _milvus_writer(config: IndexConfig):
    """With store=milvus, the writer of this build's collection (index.milvus_store); else None."""
    if config.store.kind != "milvus":
        return None
    from index.milvus_store import MilvusWriter

    return MilvusWriter(config.store.uri(config.index_dir), config.store.milvus_token)


def _collection_dropper(config: IndexConfig):
    """With store=milvus, what drops the collection of a build folder tidying removes (a killed
    build's, written before it could publish); connects only if there is one. Else None."""
    if config.store.kind != "milvus":
        return None

    def drop(build: str) -> None:
        with suppress(CitedError):  # best effort, as tidying is
            _milvus_writer(config).drop([build])

    return drop


def _store_missing(config: IndexConfig, stored: StoredIndex) -> list[str]:
    """Why the store ``config`` names cannot serve ``stored`` ([] if it can): a build made with
    store=faiss has no Milvus collection, and a rebuild (reusing every vector) writes one."""
    if config.store.kind != "milvus":
        return []
    from index.milvus_store import MilvusWriter, collection_name

    name = collection_name(stored.path.name)
    writer = MilvusWriter(config.store.uri(config.index_dir), config.store.milvus_token)
    return [] if writer.client.has_collection(name) else [f"Milvus has no collection {name} for this build"]


def _engine(config: IndexConfig, embedder: Embedder) -> AbstractContextManager:
    """What runs the forward passes: this process's model, or Ray Data actors (index/ray_embed.py),
    which compute the same vectors for the texts this build must encode."""
    if config.engine == "local":
        return nullcontext(embedder)
    from index.ray_embed import RayEmbedder  # Ray is an optional extra

    return RayEmbedder(embedder, config.ray_address)


def _live(config: IndexConfig, embedder: Embedder) -> StoredIndex | None:
    """The published build, if it is readable and made with this model; else nothing to reuse."""
    try:
        stored = read_index(config.index_dir)
    except CitedError:
        return None
    return stored if stored.manifest.get("model", {}).get("fingerprint") == embedder.info.fingerprint else None


def _components(passages: list[Passage], texts: list[str], sentences: list[Sentence], members: list[list[int]], embedded: Embedded,
                exact_up_to: int):
    """Writers for the lexical index, duplicate pairs and sentence table of this build."""
    lexical = BM25Index.build(texts)  # same text the model embeds: title and heading help names match
    pairs = find_duplicates([p.text for p in passages], [p.doc_id for p in passages])
    starts, ends = [s.start for s in sentences], [s.end for s in sentences]
    return {
        LEXICAL: lexical.save,
        DUPLICATES: write_duplicates(pairs),
        SENTENCES: write_sentences(starts, ends, members, embedded.sentences, embedded.origins, exact_up_to),
    }


def stale_because(config: IndexConfig, model: ModelInfo, stored: StoredIndex) -> list[str]:
    """Why ``stored`` is not what a build from the corpus and settings now would give; [] if it is.

    The one staleness test: :func:`open_index` rebuilds on it, and a server reports it as drift.
    Reads only corpus files whose size or mtime changed.
    """
    with io_errors(config.corpus_dir, "cannot check the corpus"):
        digest = corpus_digest(config.corpus_dir, stored.manifest, config.files)
    return stale_reasons(stored.manifest, expected_inputs(model, config.chunk, digest.files, config.exact_up_to))


def open_serving(config: IndexConfig, embedder: Embedder, progress: bool = False) -> StoredIndex:
    """:func:`open_index` for a server: if the build it needs fails, the published build serves on.

    Yesterday's index answering (its staleness reported by the server) is better than a service
    that stays down because one new file broke today's build. A corrupt index is still refused,
    and so is a missing one: there is nothing to fall back to.
    """
    try:
        return open_index(config, embedder, rebuild=True, progress=progress)
    except IndexCorrupt:
        raise
    except Exception as exc:
        try:
            stored = read_index(config.index_dir, load_vectors=config.store.kind == "faiss")
        except CitedError:
            raise exc from None
        if stored.manifest.get("model", {}).get("fingerprint") != embedder.info.fingerprint:
            raise exc from None
        log.error("the build failed (%s): serving the published build %s, which is stale", exc, stored.path.name,
                  exc_info=not isinstance(exc, (CitedError, OSError)))
        return stored


def open_index(config: IndexConfig, embedder: Embedder, rebuild: bool = True, progress: bool = False) -> StoredIndex:
    """The live index, rebuilt first if it is missing or stale (and ``rebuild`` allows it).

    A corrupt index raises IndexCorrupt and is never rebuilt silently: a damaged file may
    point at a disk or deployment fault the operator must see.
    """
    with suppress(CitedError, OSError), index_lock(config.index_dir):  # busy or read-only: the writer tidies
        tidy(config.index_dir, _collection_dropper(config))  # what a killed build left behind
    try:
        stored = read_index(config.index_dir, load_vectors=config.store.kind == "faiss")
    except IndexMissing:
        if not rebuild:
            raise
        log.info("building the index at %s (none there yet)", config.index_dir)
        return build_index(config, embedder, progress)
    if reasons := stale_because(config, embedder.info, stored) or _store_missing(config, stored):
        if not rebuild:
            raise IndexStale(f"index at {config.index_dir} is stale ({'; '.join(reasons)}): rebuild it with `cited index` and the same settings")
        log.warning("rebuilding index: %s", "; ".join(reasons))
        return build_index(config, embedder, progress)
    return stored
