"""Expensive things once per session: the real model, and a real index built from the real seeds."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import uvicorn
from fastapi.testclient import TestClient

from index import Embedder, Retriever, build_index
from service.app import create_app
from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder("all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(corpus_dir=SEEDS, index_dir=tmp_path_factory.mktemp("seed-index"))


@pytest.fixture(scope="session")
def seed_retriever(seed_settings: Settings, embedder: Embedder) -> Retriever:
    stored = build_index(seed_settings.index_config(), embedder)
    return Retriever(embedder, stored)


@pytest.fixture(scope="session")
def retriever(seed_retriever: Retriever) -> Retriever:
    """The seed build on the default store; a module whose tests run on both stores overrides this with ``store_retriever``."""
    return seed_retriever


def _milvus_absent() -> str | None:
    """Why the Milvus tests cannot run here (None if they can)."""
    import importlib.util

    missing = [m for m in ("pymilvus", "milvus_lite") if importlib.util.find_spec(m) is None]
    return f"{' and '.join(missing)} not installed: pip install -e '.[milvus]'" if missing else None


# The retrieval tests that run on both stores take ``store_retriever`` (or override ``retriever`` with it).
STORES = [
    pytest.param("faiss", id="faiss"),
    pytest.param("milvus", id="milvus", marks=[pytest.mark.milvus, pytest.mark.skipif(_milvus_absent() is not None, reason=str(_milvus_absent()))]),
]


@pytest.fixture(scope="session")
def milvus_retriever(seed_retriever: Retriever, tmp_path_factory: pytest.TempPathFactory) -> Retriever:
    """The session's seed build served by Milvus Lite: its collection written from the build's own
    passages, vectors and BM25 text, as `cited index --store milvus` writes it before publishing."""
    from index.chunk import embedding_input
    from index.config import StoreConfig
    from index.milvus_store import MilvusWriter

    retriever = seed_retriever
    stored = retriever.stored
    config = StoreConfig("milvus", str(tmp_path_factory.mktemp("milvus") / "milvus.db"))
    context = bool(stored.manifest["chunking"]["embed_context"])
    texts = [embedding_input(p.title, p.heading, p.text, context) for p in stored.passages]
    vectors = stored.vector_index.reconstruct_n(0, stored.vector_index.ntotal)
    MilvusWriter(config.uri(stored.path.parent)).write(stored.path.name, stored.passages, vectors, texts, retriever.components.lexical.terms)
    return Retriever(retriever.embedder, stored, retriever.ranking, config)


@pytest.fixture(scope="session", params=STORES)
def store_retriever(request: pytest.FixtureRequest) -> Retriever:
    """The seed retriever on each store in turn: FAISS + bm25s, then Milvus (marked milvus)."""
    return request.getfixturevalue("seed_retriever" if request.param == "faiss" else "milvus_retriever")


@contextmanager
def serving(settings: Settings, retriever: Retriever) -> Iterator[str]:
    """A real uvicorn server on a free loopback port, in a background thread; yields its base URL."""
    config = uvicorn.Config(create_app(settings, retriever), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not (server.started and server.servers):
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(seed_settings: Settings, retriever: Retriever) -> Iterator[str]:
    with serving(seed_settings, retriever) as url:
        yield url


@pytest.fixture(scope="session")
def client(seed_settings: Settings, retriever: Retriever) -> Iterator[TestClient]:
    with TestClient(create_app(seed_settings, retriever)) as c:
        yield c


SMALL_DOCS = {
    "harbour.txt": (
        "Harbour Authority Approves New Breakwater\n\n"
        "The harbour authority approved a new breakwater on Tuesday. It will protect the fishing fleet "
        "from winter storms. Construction is expected to take two years.\n\n"
        "Funding\n\n"
        "The project costs 14 million euros. Half of the money comes from a regional fund, and the rest "
        "from harbour fees. Critics say the fees will rise for small boat owners.\n\n"
        "ALSO READ | Ten harbours to visit this summer\n"
    ),
    "orchard.txt": (
        "Orchard Growers Report Record Apple Harvest\n\n"
        "Growers in the valley picked a record 52,000 tonnes of apples this autumn. A warm spring and "
        "late rain helped the fruit set. Prices fell because supply was high.\n\n"
        "Cold storage operators said their warehouses were full by October.\n"
    ),
}


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    """A tiny hand-made corpus, for tests that rebuild or damage an index (fast to embed)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in SMALL_DOCS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    return corpus


class _GatedEmbedder:
    """The real embedder, but a forward pass starts only once the gate is open: lets a test hold
    the lane busy for exactly as long as it needs."""

    def __init__(self, embedder, gate: threading.Event) -> None:
        self._embedder, self._gate = embedder, gate
        self.model, self.info = embedder.model, embedder.info
        self.calls: list[int] = []
        self.entered = threading.Event()  # a forward pass is waiting at the gate

    def encode(self, texts, **kwargs):
        self.entered.set()
        self._gate.wait(30)
        self.calls.append(len(texts))
        return self._embedder.encode(texts, **kwargs)


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # never leave a lane thread waiting


def gated(retriever: Retriever, gate: threading.Event) -> Retriever:
    clone = copy.copy(retriever)
    clone.embedder = _GatedEmbedder(retriever.embedder, gate)
    return clone


def source_text(source: str, corpus: Path = SEEDS) -> str:
    return (corpus / source).read_bytes().decode("utf-8")


def assert_top_k_up_to_ties(rows: list[int], scores: list[float], expected: np.ndarray, k: int, atol: float = 1e-5) -> None:
    """``rows`` (with reported ``scores``) are a best-first top ``k`` of ``expected`` (a brute-force
    score per row), up to ties: rows whose expected scores lie within ``atol`` may come in either
    order, and either of two rows tied at the cut may be the one returned (as FAISS's own tests
    compare results). ``atol`` is far above float noise between machines (about 1e-7) and far
    below the gaps between different passages' scores.
    """
    expected = np.asarray(expected, dtype=np.float64)
    assert len(rows) == min(k, len(expected)) and len(set(rows)) == len(rows)
    assert np.allclose(scores, expected[rows], atol=atol), "reported scores differ from brute force"
    got = expected[rows]
    assert np.all(np.diff(got) <= atol), f"not best first: {got}"
    left_out = np.setdiff1d(np.arange(len(expected)), rows)
    if len(left_out):
        assert expected[left_out].max() <= got.min() + atol, "a better row was left out of the top k"


def table_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row in ``text`` (header rows included, rule rows left out)."""
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("|") and set(line.strip()) - set("|-: ")]
    return [[cell.strip() for cell in line[1:-1].split(" | ")] for line in lines]
