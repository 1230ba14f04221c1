"""Document texts stored in the build (index/texts.py) and served by GET /documents/{doc_id}/text; the page's open files."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from index.errors import IndexCorrupt
from index.texts import DOCUMENTS, OFFSETS, TEXT_FILE, DocumentTexts, write_texts
from index.types import Document
from service.app import create_app
from service.settings import Settings
from tests.conftest import source_text

QUESTIONS = (
    "What did Beijing ask Mullah Omar in 2000?",
    "Who is Chen Wenqing?",
    "ETIM fighters",
    "Islamic State Khorasan attacks on Chinese citizens",
)
KEY = "s3cret-key-for-tests"


def text_path(doc_id: str) -> str:
    return f"/documents/{doc_id}/text"


def test_the_build_stores_every_document_as_the_build_read_it(retriever) -> None:
    texts = retriever.components.texts
    assert texts is not None and len(texts) == len(retriever.manifest["documents"])
    for doc in retriever.manifest["documents"]:
        assert texts.text(doc["doc_id"]) == source_text(doc["source"])
    with pytest.raises(KeyError):
        texts.text("nope")


@pytest.mark.parametrize("question", QUESTIONS)
def test_every_citation_slices_the_served_text(client: TestClient, question: str) -> None:
    body = client.post("/query", json={"question": question, "top_k": 10}).json()
    assert body["results"]
    whole: dict[str, dict] = {}

    def check(citation: dict, expected: str) -> None:
        doc_id = citation["doc_id"]
        if doc_id not in whole:
            response = client.get(text_path(doc_id))
            assert response.status_code == 200
            whole[doc_id] = response.json()
            got = whole[doc_id]
            assert got["offset"] == 0 and got["span"] is None and got["length"] == len(got["text"])
            assert got["source"] == citation["source"] and got["title"] == citation["title"]
            assert got["sha256"] == citation["sha256"] and got["index_build"] == body["index_build"]
        assert whole[doc_id]["text"][citation["start"] : citation["end"]] == expected  # the slice rule
        span = client.get(text_path(doc_id), params={"start": citation["start"], "end": citation["end"], "context": 40}).json()
        assert span["span"] == {"start": citation["start"], "end": citation["end"]}
        assert span["offset"] == max(0, citation["start"] - 40)
        assert span["text"] == whole[doc_id]["text"][span["offset"] : min(span["length"], citation["end"] + 40)]
        assert span["text"][citation["start"] - span["offset"] : citation["end"] - span["offset"]] == expected

    for result in body["results"]:
        check(result["citation"], result["text"])
        for other in result["also_in"]:  # near-duplicate text in another file: slices as that file does
            check(other, source_text(other["source"])[other["start"] : other["end"]])
        for highlight in result["highlights"]:
            start, end = highlight["start"] - result["citation"]["start"], highlight["end"] - result["citation"]["start"]
            check({**result["citation"], **highlight}, result["text"][start:end])
    check(body["answer"]["citation"], body["answer"]["text"])


def test_a_span_without_context_is_exactly_the_passage(client: TestClient, retriever) -> None:
    for passage in retriever.passages[:20]:
        got = client.get(text_path(passage.doc_id), params={"start": passage.start, "end": passage.end}).json()
        assert got["text"] == passage.text and got["offset"] == passage.start


@pytest.mark.parametrize("doc_id", ["nope", "004_bbbee28aa1debc71.txt", "..%2Fseeds%2F004_bbbee28aa1debc71", "seeds/004_bbbee28aa1debc71"])
def test_unknown_documents_get_404_in_the_error_shape(client: TestClient, doc_id: str) -> None:
    response = client.get(text_path(doc_id))
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["status"] == 404 and "no document" in error["message"]


def test_out_of_range_offsets_get_422(client: TestClient) -> None:
    doc_id = "004_bbbee28aa1debc71"
    length = client.get(text_path(doc_id)).json()["length"]
    for params, words in (
        ({"start": 0, "end": length + 1}, "past the end"),
        ({"start": length + 5}, "after end"),
        ({"start": 20, "end": 10}, "after end"),
        ({"start": -1, "end": 10}, "start"),
        ({"end": -3}, "end"),
        ({"start": "x"}, "start"),
        ({"start": 0, "end": 5, "context": 10**9}, "context"),
    ):
        response = client.get(text_path(doc_id), params=params)
        assert response.status_code == 422, params
        error = response.json()["error"]
        assert error["status"] == 422 and words in error["message"] and error["details"], (params, error)
    # the edges are inside: an empty span at the very end, the whole text as a span
    assert client.get(text_path(doc_id), params={"start": length, "end": length}).json()["text"] == ""
    assert client.get(text_path(doc_id), params={"start": 0}).json()["text"] == client.get(text_path(doc_id)).json()["text"]


def test_a_build_without_texts_says_to_rebuild(seed_settings: Settings, retriever) -> None:
    old = dataclasses.replace(retriever.components, texts=None)  # as a format-4 build served after a failed rebuild
    clone = retriever.with_ranking(retriever.ranking)
    clone.components = old
    with TestClient(create_app(seed_settings, clone)) as client:
        response = client.get(text_path("004_bbbee28aa1debc71"))
    assert response.status_code == 404 and "rebuild" in response.json()["error"]["message"]


def test_texts_round_trip_any_unicode_and_empty_documents(tmp_path: Path) -> None:
    docs = [Document("a", "a.txt", "caf\u00e9 \U0001f600\r\nline"), Document("empty", "empty.txt", ""), Document("sub/b", "sub/b.txt", "\ufeffBOM kept")]
    write_texts(docs)(tmp_path)
    texts = DocumentTexts(tmp_path)
    assert [texts.text(d.doc_id) for d in docs] == [d.text for d in docs] and "sub/b" in texts and len(texts) == 3
    empty = tmp_path / "none"
    empty.mkdir()
    write_texts([])(empty)
    assert len(DocumentTexts(empty)) == 0


def test_texts_that_do_not_fit_their_offsets_are_corrupt(tmp_path: Path) -> None:
    write_texts([Document("a", "a.txt", "one"), Document("b", "b.txt", "two")])(tmp_path)
    np.save(tmp_path / OFFSETS, np.asarray([0, 3, 7], dtype=np.int64))
    with pytest.raises(IndexCorrupt, match="does not fit"):
        DocumentTexts(tmp_path)
    (tmp_path / DOCUMENTS).write_text(json.dumps(["a"]), encoding="utf-8")
    with pytest.raises(IndexCorrupt):
        DocumentTexts(tmp_path)
    (tmp_path / TEXT_FILE).unlink()
    with pytest.raises(IndexCorrupt, match="cannot be read"):
        DocumentTexts(tmp_path)


# -- the page and the docs pages, without a browser (tests/test_web.py drives one) -------------------------


def test_the_page_and_its_files_are_served_with_a_local_only_policy(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self';" in policy and "unsafe" not in policy
    assert "http" not in page.text  # no asset from another origin
    for asset, kind in (("/ui/app.js", "javascript"), ("/ui/app.css", "text/css"), ("/ui/favicon.svg", "image/svg")):
        assert f'"{asset}"' in page.text
        response = client.get(asset)
        assert response.status_code == 200 and kind in response.headers["content-type"], asset
    assert client.get("/ui/missing.js").json()["error"]["status"] == 404


def test_the_docs_pages_load_their_assets_from_the_app(client: TestClient) -> None:
    for path in ("/docs", "/redoc"):
        page = client.get(path)
        assert page.status_code == 200 and "cdn" not in page.text and "https://" not in page.text, path
        assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css", "/docs-assets/redoc.standalone.js"):
        assert asset in client.get("/docs").text + client.get("/redoc").text
        assert client.get(asset).status_code == 200


def test_with_a_key_the_page_is_open_and_the_texts_are_not(seed_settings: Settings, retriever) -> None:
    settings = Settings(**{**seed_settings.model_dump(), "api_key": KEY})
    with TestClient(create_app(settings, retriever)) as client:
        for path in ("/", "/ui/app.js", "/ui/app.css", "/ui/favicon.svg"):
            assert client.get(path).status_code == 200, path
        refused = client.get(text_path("004_bbbee28aa1debc71"))
        assert refused.status_code == 401 and refused.json()["error"]["status"] == 401
        assert client.get("/ui/missing.js").status_code == 401  # only the page's own files are open
        assert client.get(text_path("004_bbbee28aa1debc71"), headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


def test_without_api_docs_the_docs_assets_are_gone_too(seed_settings: Settings, retriever) -> None:
    settings = Settings(**{**seed_settings.model_dump(), "api_docs": False})
    with TestClient(create_app(settings, retriever)) as client:
        for path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect", "/docs-assets/swagger-ui.css"):
            assert client.get(path).status_code == 404, path
        assert client.get("/").status_code == 200
