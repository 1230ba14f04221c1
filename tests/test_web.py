"""The web page and the API docs pages in a real browser: Debian's chromium, headless, driven by Playwright, against a real uvicorn.

Skipped, with the install step in the message, when the playwright package or the chromium
binary is missing (Playwright's own browser download is never used: nothing is fetched at run time).
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.settings import Settings
from tests.conftest import serving

QUESTION = "What did Beijing ask Mullah Omar in 2000?"
KEY = "s3cret-key-for-the-browser"
# Without the background-networking flags Chromium's own connections get refused en masse on
# this kind of machine; a fresh profile per launch keeps runs independent.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_path() -> str | None:
    found = os.environ.get("CITED_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    return found if found and Path(found).is_file() else None


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser tests need the playwright package: pip install -e '.[test]' (or pip install playwright)")
    executable = chromium_path()
    if executable is None:
        pytest.skip("browser tests need Debian's chromium: apt-get install -y chromium (or set CITED_CHROMIUM to a chromium binary)")
    with tempfile.TemporaryDirectory(prefix="cited-chromium-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=executable, headless=True, args=CHROMIUM_ARGS, viewport={"width": 1000, "height": 900},
        )
        context.set_default_timeout(20_000)
        yield context
        context.close()


class Watch:
    """Every request a page makes, and every console error: nothing may come from another origin."""

    def __init__(self, page, base: str) -> None:
        self.base, self.foreign, self.failed, self.errors = base, [], {}, []
        page.on("request", lambda r: None if r.url.startswith((base, "data:", "blob:" + base)) else self.foreign.append(r.url))
        page.on("requestfailed", lambda r: self.failed.__setitem__(r.url, r.failure))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)


@pytest.fixture
def page(browser, live_server: str):
    page = browser.new_page()
    yield page
    page.close()


def png_facts(path: Path) -> tuple[int, int, int]:
    """(width, height, distinct colours) of a PNG; colours counted with Pillow if it is installed,
    else estimated as distinct byte values of the decompressed image data (a blank page has very few)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    try:
        from PIL import Image
    except ImportError:
        chunks, at = [], 8
        while at < len(data):
            length, kind = struct.unpack(">I4s", data[at : at + 8])
            if kind == b"IDAT":
                chunks.append(data[at + 8 : at + 8 + length])
            at += 12 + length
        return width, height, len(set(zlib.decompress(b"".join(chunks))))
    with Image.open(path) as image:
        return width, height, len(image.convert("RGB").getcolors(maxcolors=1 << 24) or ())


def ask(page, question: str) -> None:
    """Type the question and submit it with the keyboard, as a person would."""
    page.locator("#question").click()
    page.keyboard.type(question)
    page.keyboard.press("Enter")
    page.wait_for_selector("#results > li")


def test_ask_from_the_page_and_open_the_cited_span(page, live_server: str, tmp_path: Path) -> None:
    watch = Watch(page, live_server)
    page.goto(live_server + "/")
    ask(page, QUESTION)
    expected = httpx.post(live_server + "/query", json={"question": QUESTION, "top_k": 5}, timeout=30).json()
    top = expected["results"][0]
    c = top["citation"]

    # the ranked results are the API's, each with its citation, highlights and also_in
    items = page.locator("#results > li")
    assert items.count() == len(expected["results"])
    first = items.nth(0)
    button = first.locator(".result-head button.cite")
    assert button.inner_text() == f"{c['source']}:{c['start']}-{c['end']}"
    assert button.get_attribute("data-doc-id") == c["doc_id"]
    assert first.locator(".passage").inner_text() == top["text"]
    marks = first.locator(".passage mark").all_inner_texts()
    assert marks and marks == [top["text"][h["start"] - c["start"] : h["end"] - c["start"]] for h in top["highlights"]]
    assert first.locator(".also button.cite").all_inner_texts() == [f"{o['source']}:{o['start']}-{o['end']}" for o in top["also_in"]]
    answer = expected["answer"]
    assert page.locator("#answer-text").inner_text() == answer["text"]
    assert page.locator("#answer-cite button.cite").inner_text().endswith(f":{answer['citation']['start']}-{answer['citation']['end']}")

    # open the citation with the keyboard: the source view shows the cited span, highlighted and in view
    button.focus()
    page.keyboard.press("Enter")
    cited = page.locator("#source[open] mark#cited")
    cited.wait_for()
    document = httpx.get(f"{live_server}/documents/{c['doc_id']}/text", timeout=30).json()
    assert cited.inner_text() == document["text"][c["start"] : c["end"]] == top["text"]
    assert page.locator("#source-title").inner_text() == c["title"]
    in_view = page.evaluate("""() => {
        const mark = document.getElementById('cited').getBoundingClientRect();
        const box = document.getElementById('source-text').getBoundingClientRect();
        return mark.top >= box.top - 1 && mark.top < box.bottom && mark.height > 0;
    }""")
    assert in_view, "the cited span was not scrolled into view"

    shot = tmp_path / "source.png"
    page.screenshot(path=str(shot))
    width, height, colours = png_facts(shot)
    assert (width, height) == (1000, 900) and colours >= 8, f"{width}x{height}, {colours} colours: a blank page?"

    page.keyboard.press("Escape")  # closes the source view and gives focus back to the citation
    assert not page.locator("#source").evaluate("d => d.open")
    assert page.evaluate("document.activeElement.dataset.docId") == c["doc_id"]
    assert watch.foreign == [] and watch.errors == [], (watch.foreign, watch.errors)


def test_the_docs_pages_render_every_operation_from_local_assets(page, live_server: str) -> None:
    watch = Watch(page, live_server)
    operations = sorted(httpx.get(live_server + "/openapi.json", timeout=30).json()["paths"])
    assert {"/query", "/health", "/livez", "/readyz", "/documents", "/documents/{doc_id}/text"} <= set(operations)
    page.goto(live_server + "/docs")
    page.wait_for_selector(".opblock-summary-path")
    assert sorted(page.locator(".opblock-summary-path").all_inner_texts()) == operations
    page.goto(live_server + "/redoc")
    page.wait_for_selector("[data-section-id^='operation/']")
    text = page.locator("body").inner_text()
    assert all(path in text for path in operations), text[:2000]
    assert page.locator("[data-section-id^='operation/']").count() >= len(operations)
    # ReDoc's sidebar shows a logo from its CDN: the page's policy blocks it, and nothing else leaves
    assert all(watch.failed.get(url) == "csp" for url in watch.foreign), (watch.foreign, watch.failed)


def test_the_page_fits_a_phone(browser, live_server: str) -> None:
    page = browser.new_page()
    try:
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{live_server}/?q=" + QUESTION.replace(" ", "+"))  # a shared link asks at once
        page.wait_for_selector("#results > li")
        fits = "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        assert page.evaluate(fits), page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert float(page.evaluate("getComputedStyle(document.querySelector('.passage')).fontSize").removesuffix("px")) >= 14
        page.locator("#results > li .result-head button.cite").first.click()
        page.locator("#source[open] mark#cited").wait_for()
        box = page.locator("#source").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
        assert page.evaluate(fits)
    finally:
        page.close()


def test_with_an_api_key_the_page_asks_for_it_and_keeps_it_in_the_tab(browser, seed_settings: Settings, retriever) -> None:
    settings = Settings(**{**seed_settings.model_dump(), "api_key": KEY})
    page = browser.new_page()
    with serving(settings, retriever) as url:
        try:
            page.goto(url + "/")
            page.locator("#question").fill(QUESTION)
            page.keyboard.press("Enter")
            page.wait_for_selector("#status.error")
            assert "API key" in page.locator("#status").inner_text()
            assert page.locator("#key-box").evaluate("d => d.open")
            assert page.evaluate("document.activeElement.id") == "api-key"  # the key field has focus
            page.keyboard.type(KEY)
            page.locator("#question").press("Enter")
            page.wait_for_selector("#results > li")
            assert page.evaluate("sessionStorage.getItem('cited.api_key')") == KEY
            page.locator("#results > li .result-head button.cite").first.click()
            page.locator("#source[open] mark#cited").wait_for()  # the text route got the key too
        finally:
            page.close()
