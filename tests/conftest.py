"""Expensive things once per session: the real model, and a real index built from the real seeds."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
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
def retriever(seed_settings: Settings, embedder: Embedder) -> Retriever:
    stored = build_index(seed_settings.index_config(), embedder)
    return Retriever(embedder, stored)


@pytest.fixture(scope="session")
def client(seed_settings: Settings, retriever: Retriever) -> Iterator[TestClient]:
    with TestClient(create_app(seed_settings, retriever)) as c:
        yield c


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    """Two seed files in a folder of their own, for tests that rebuild or damage an index."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("002_7665a072e7690f37.txt", "004_bbbee28aa1debc71.txt"):
        shutil.copy(SEEDS / name, corpus / name)
    return corpus


def source_text(source: str, corpus: Path = SEEDS) -> str:
    return (corpus / source).read_bytes().decode("utf-8")
