"""Markdown, HTML, PDF and .txt in any case or encoding: every citation slices the text its offsets name.

Text formats (.txt, .md) are sliced as the file decoded with the citation's ``encoding``; derived
formats (.html, .pdf) as the extracted text ``GET /documents/{doc_id}/text`` serves. The sample
files are written here by hand (the PDF too: :func:`make_pdf`), so no file format library is
needed to make them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from index import CorpusError, Retriever, build_index
from index.build import passages_for, stale_because
from index.formats import doc_ids, extract_pdf, extractor_versions
from index.ingest import read_corpus
from index.manifest import stale_reasons
from service.app import create_app
from service.cli import _skipped_summary
from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent

GUIDE_MD = """\
---
title: Lantern Field Guide
draft: false
---
# Lantern Field Guide

The lantern runs on **paraffin** and burns for *eleven hours* on one filling.
Trim the wick before every use, or the glass will blacken.

## Refilling

Let the lantern cool for ten minutes before you open the tank.
Pour slowly through the [brass funnel](https://example.org/funnel).

```bash
lantern refill --litres 0.5
```

- Keep spare wicks in a dry tin.
- Never refill near an open flame.

<!-- editor's note: check the wick sizes -->

Storage
-------

Store the lantern upright in a cool shed, away from children.
"""

PAGE_HTML = """\
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Night Trains Return to Europe | Rail Weekly</title></head>
<body>
<header><nav><ul><li><a href="/">Home</a></li><li><a href="/news">News</a></li><li><a href="/subscribe">Subscribe to our newsletter</a></li></ul></nav></header>
<main><article>
<h1>Night Trains Return to Europe</h1>
<p>Sleeper services are coming back across the continent. Operators in Austria and Sweden have ordered new carriages,
and the first routes open next spring.</p>
<h2>Why now</h2>
<p>Travellers who avoid short flights want an overnight option. A night train leaves the city centre in the evening and
arrives after breakfast, which saves a hotel room.</p>
<p>Rail companies say demand on the Vienna to Amsterdam route doubled within a year of its launch.</p>
<h2>What it costs</h2>
<p>A couchette berth costs about 80 euros, and a private sleeper compartment can reach 300 euros for two people.</p>
</article></main>
<footer><p>Copyright 2026 Rail Weekly. All rights reserved.</p><a href="/privacy">Privacy policy</a></footer>
</body></html>
"""

NO_CONTENT_HTML = (
    "<html><head><title>Menu</title></head><body><nav><ul><li><a href='/'>Home</a></li><li><a href='/b'>About</a></li>"
    "</ul></nav><footer>Copyright 2026</footer></body></html>"
)

PDF_PAGES = [
    ["Tidal Energy Report", "", "The first tidal turbine was installed in the strait in 2019.",
     "It produces enough power for two thousand homes."],
    ["Costs and Maintenance", "Divers inspect the turbine blades every spring.",
     "Repairs to the blades cost about forty thousand euros a year."],
    ["Outlook", "A second turbine is planned for 2028, further out in deeper water."],
]

LATIN1 = (
    "Le Café de la Gare\n\n"
    "Le café de la gare ouvre à sept heures. On y sert des crêpes, du thé et une crème brûlée très appréciée des voyageurs.\n"
)

FILES: dict[str, bytes] = {
    "guide.md": GUIDE_MD.encode(),
    "guide.txt": b"Plain Guide\n\nThe plain guide says the ferry timetable changes in October.\n",
    "page.html": PAGE_HTML.encode(),
    "report.pdf": b"",  # made by make_pdf in the fixture
    "SHOUTING.TXT": b"Shouting File\n\nThe lighthouse keeper rings the fog bell every ninety seconds.\n",
    "latin1.txt": LATIN1.encode("latin-1"),
    "empty.txt": b"",
    "blank.md": b"  \n\n",
    "broken.pdf": b"%PDF-1.4\nthis is not really a PDF\n",
    "menu.html": NO_CONTENT_HTML.encode(),
    "photo.png": b"\x89PNG\r\n\x1a\n",
}

# A question for each document, and the passage text the top result must contain.
QUESTIONS = {
    "guide.md": ("How long does the lantern burn on one filling of paraffin?", "eleven hours"),
    "guide.txt": ("When does the ferry timetable change?", "October"),
    "page.html": ("How much does a couchette berth on a night train cost?", "80 euros"),
    "report.pdf": ("How much do repairs to the turbine blades cost each year?", "forty thousand euros"),
    "SHOUTING.TXT": ("How often does the lighthouse keeper ring the fog bell?", "ninety seconds"),
    "latin1.txt": ("What desserts does the station café serve?", "crème brûlée"),
}


def make_pdf(pages: list[list[str]]) -> bytes:
    """A minimal PDF 1.4 (Helvetica, one text line per entry, WinAnsi text), its xref table computed."""
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    pages_id = len(objects) + 1 + 2 * len(pages)  # numbered after each page's content and page objects
    kids = []
    for lines in pages:
        ops = ["BT", "/F1 11 Tf", "14 TL", "72 720 Td"]
        ops += ["(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") Tj T*" for line in lines]
        stream = "\n".join([*ops, "ET"]).encode("cp1252")
        content = add(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        kids.append(add(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                        b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (pages_id, content, font)))
    assert add(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids))) == pages_id
    catalog = add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1) + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, catalog, xref)
    return bytes(out)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("formats") / "corpus"
    folder.mkdir()
    for name, data in FILES.items():
        (folder / name).write_bytes(make_pdf(PDF_PAGES) if name == "report.pdf" else data)
    return folder


@pytest.fixture(scope="module")
def settings(corpus: Path) -> Settings:
    return Settings(corpus_dir=corpus, index_dir=corpus.parent / "index")


@pytest.fixture(scope="module")
def formats_retriever(settings: Settings, embedder) -> Retriever:
    return Retriever(embedder, build_index(settings.index_config(), embedder))


@pytest.fixture(scope="module")
def formats_client(settings: Settings, formats_retriever: Retriever):
    with TestClient(create_app(settings, formats_retriever)) as c:
        yield c


def source_text(corpus: Path, citation: dict, client: TestClient) -> str:
    """The text a citation's offsets index, found the way the README tells a client to."""
    if citation["offsets"] == "file":
        with open(corpus / citation["source"], encoding=citation["encoding"], newline="") as fh:
            return fh.read()
    assert citation["encoding"] is None
    return client.get(f"/documents/{citation['doc_id']}/text").json()["text"]


def test_every_format_is_read_and_every_bad_file_is_skipped_with_its_reason(formats_retriever: Retriever) -> None:
    manifest = formats_retriever.manifest
    documents = {d["source"]: d for d in manifest["documents"]}
    assert {s: (d["doc_id"], d["format"], d["offsets"], d["encoding"]) for s, d in documents.items()} == {
        "SHOUTING.TXT": ("SHOUTING.TXT", "text", "file", "utf-8"),
        "guide.md": ("guide.md", "markdown", "file", "utf-8"),
        "guide.txt": ("guide", "text", "file", "utf-8"),  # no clash: only .txt loses its extension
        "latin1.txt": ("latin1", "text", "file", "cp1252"),
        "page.html": ("page.html", "html", "extracted", None),
        "report.pdf": ("report.pdf", "pdf", "extracted", None),
    }
    assert all(d["passages"] > 0 for d in documents.values())
    skipped = {s["source"]: s["reason"] for s in manifest["skipped"]}
    assert skipped.keys() == {"empty.txt", "blank.md", "broken.pdf", "menu.html", "photo.png"}
    assert skipped["empty.txt"] == skipped["blank.md"] == "is empty"
    assert skipped["broken.pdf"].startswith("cannot be read as a PDF (")
    assert skipped["menu.html"].startswith("has no main content")
    assert skipped["photo.png"].startswith("not a supported format (.txt, .md")
    assert {"empty.txt", "broken.pdf", "menu.html"} <= set(manifest["corpus"]["files"])  # hashed: fixing one makes the index stale
    assert _skipped_summary(manifest["skipped"]) == "5 files skipped (2 empty; listed in the manifest and GET /health), "


def test_a_fresh_build_of_every_format_is_not_stale(settings: Settings, embedder, formats_retriever: Retriever) -> None:
    """Files skipped for their content (empty, unparseable) are hashed by the build and by the check alike."""
    assert stale_because(settings.index_config(), embedder.info, formats_retriever.stored) == []


def test_query_output_marks_offsets_into_extracted_text(settings: Settings, formats_retriever: Retriever, capsys) -> None:
    from service.cli import main

    flags = ["--corpus-dir", str(settings.corpus_dir), "--index-dir", str(settings.index_dir)]
    assert main(["query", "When is the second turbine planned?", "--top-k", "1", *flags]) == 0
    cited = [line.strip() for line in capsys.readouterr().out.splitlines() if "report.pdf:" in line]
    assert cited and all("(extracted text, page " in line for line in cited)
    assert any("(extracted text, page 3)" in line for line in cited)  # the answer sentence, on the last page


@pytest.mark.parametrize("source", sorted(QUESTIONS))
def test_every_citation_slices_its_text_in_every_format(corpus: Path, formats_client: TestClient, source: str) -> None:
    question, expected = QUESTIONS[source]
    body = formats_client.post("/query", json={"question": question, "top_k": 10}).json()
    top = body["results"][0]
    assert top["citation"]["source"] == source and expected in top["text"], (source, top)
    for result in body["results"]:
        citation = result["citation"]
        text = source_text(corpus, citation, formats_client)
        assert text[citation["start"] : citation["end"]] == result["text"]  # the slice rule
        for highlight in result["highlights"]:
            assert citation["start"] <= highlight["start"] < highlight["end"] <= citation["end"]
        assert (citation["page"] is not None) == (citation["source"] == "report.pdf")
    answer = body["answer"]
    assert source_text(corpus, answer["citation"], formats_client)[answer["citation"]["start"] : answer["citation"]["end"]] == answer["text"]


def test_pdf_citations_carry_the_page_on_which_they_start(formats_retriever: Retriever, formats_client: TestClient) -> None:
    served = formats_client.get("/documents/report.pdf/text").json()
    text = served["text"]
    assert (served["format"], served["offsets"], served["encoding"]) == ("pdf", "extracted", None)
    assert served["pages"] == [0, text.index("Costs and Maintenance"), text.index("Outlook")]
    assert text.count("\f") == 2  # pages are separated by a form feed
    from index.response import citation

    for passage in (p for p in formats_retriever.passages if p.source == "report.pdf"):
        cited = citation(passage, formats_retriever.manifest["corpus"]["files"], documents=formats_retriever.documents)
        assert cited["page"] == 1 + text[: passage.start].count("\f")
    # the answer sentence is cited on its own page, whichever page its passage starts on
    body = formats_client.post("/query", json={"question": "When is the second turbine planned?", "top_k": 3}).json()
    assert "2028" in body["answer"]["text"] and body["answer"]["citation"]["page"] == 3


def test_markdown_passages_are_the_file_as_written_under_the_headings_markdown_it_found(corpus: Path, formats_retriever: Retriever) -> None:
    passages = [p for p in formats_retriever.passages if p.source == "guide.md"]
    assert {p.title for p in passages} == {"Lantern Field Guide"}
    joined = "\n".join(p.text for p in passages)
    assert "**paraffin**" in joined and "[brass funnel](https://example.org/funnel)" in joined  # syntax kept: offsets index the file
    assert "```bash\nlantern refill --litres 0.5\n```" in joined  # code kept as written
    assert "draft: false" not in joined and "editor's note" not in joined  # front matter and raw HTML dropped
    headings = {p.heading for p in passages}
    assert headings == {None, "Refilling", "Storage"}  # ATX and setext; the level-1 heading is the title
    assert next(p for p in passages if "upright" in p.text).heading == "Storage"
    text = (corpus / "guide.md").read_text(encoding="utf-8")
    assert all(text[p.start : p.end] == p.text for p in passages)


def test_html_is_its_main_content_without_the_page_furniture(formats_client: TestClient) -> None:
    served = formats_client.get("/documents/page.html/text").json()
    assert served["title"] == "Night Trains Return to Europe" and served["offsets"] == "extracted"
    assert "Sleeper services are coming back across the continent." in served["text"]
    for furniture in ("Subscribe", "Copyright", "Privacy", "Home"):
        assert furniture not in served["text"]
    body = formats_client.post("/query", json={"question": "Why are night trains coming back?", "top_k": 5}).json()
    assert {r["citation"]["heading"] for r in body["results"] if r["citation"]["source"] == "page.html"} <= {None, "Why now", "What it costs"}


def test_a_file_that_is_not_utf8_is_read_with_the_detected_encoding(corpus: Path, formats_client: TestClient) -> None:
    served = formats_client.get("/documents/latin1/text").json()
    assert served["encoding"] == "cp1252" and served["offsets"] == "file"
    assert served["text"] == LATIN1 == (corpus / "latin1.txt").read_bytes().decode(served["encoding"])


def test_bytes_no_encoding_fits_are_skipped_with_a_warning_naming_the_file(tmp_path: Path, caplog) -> None:
    (tmp_path / "noise.txt").write_bytes(b"\xff\xfe\x00" + bytes(range(32)) * 50)
    (tmp_path / "ok.md").write_text("# Fine\n\nA sentence.\n", encoding="utf-8")
    corpus = read_corpus(tmp_path)
    assert [d.source for d in corpus.documents] == ["ok.md"]
    assert {s.source: s.reason for s in corpus.skipped} == {
        "noise.txt": "is not valid UTF-8 (byte 0) and no other encoding fits it; convert it to UTF-8"}
    assert "skipped noise.txt: is not valid UTF-8" in caplog.text


def test_doc_ids_keep_every_extension_but_txt_and_never_clash() -> None:
    assert doc_ids(["guide.md", "guide.txt", "a/b.TXT", "page.html", "000_x.txt"]) == {
        "guide.md": "guide.md", "guide.txt": "guide", "a/b.TXT": "a/b.TXT", "page.html": "page.html", "000_x.txt": "000_x"}
    # guide.md.txt would become guide.md, another file's id: it keeps its whole name
    assert doc_ids(["guide.md", "guide.md.txt"]) == {"guide.md": "guide.md", "guide.md.txt": "guide.md.txt"}


def test_a_folder_of_only_empty_files_fails_with_one_clear_line(tmp_path: Path, embedder) -> None:
    folder = tmp_path / "corpus"
    (folder / ".git").mkdir(parents=True)
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n", encoding="utf-8")  # hidden: not even reported
    for name in ("a.txt", "b.md", "c.TXT"):
        (folder / name).write_bytes(b"\n" if name == "b.md" else b"")
    settings = Settings(corpus_dir=folder, index_dir=tmp_path / "index")
    with pytest.raises(CorpusError) as raised:
        build_index(settings.index_config(), embedder)
    message = str(raised.value)
    assert "holds no readable documents" in message and "3 skipped, e.g. a.txt: is empty" in message
    assert "\n" not in message and "BM25" not in message


def test_documents_without_article_text_fail_the_build_in_one_line(tmp_path: Path, embedder) -> None:
    (tmp_path / "nav.txt").write_text("Home\nSubscribe\n", encoding="utf-8")  # a title line and a UI string: no passage
    settings = Settings(corpus_dir=tmp_path, index_dir=tmp_path / ".index")
    corpus = read_corpus(tmp_path)
    with pytest.raises(CorpusError, match="no readable article text in its 1 document"):
        passages_for(corpus, settings.index_config(), embedder)


def test_a_new_extractor_version_makes_the_index_stale(formats_retriever: Retriever) -> None:
    manifest = formats_retriever.manifest
    assert manifest["extractors"] == extractor_versions() and manifest["format_version"] == 6
    older = {**manifest, "extractors": {**manifest["extractors"], "pypdf": "1.0"}}
    expected = {k: manifest[k] for k in ("format_version", "exact_up_to", "model", "chunking", "pipeline", "extractors", "corpus")}
    assert stale_reasons(manifest, expected) == []
    assert stale_reasons(older, expected) == [f"pypdf 1.0 → {extractor_versions()['pypdf']}"]


def test_an_encrypted_or_textless_pdf_is_unreadable() -> None:
    from index.formats import Unreadable

    with pytest.raises(Unreadable, match="no text layer"):
        extract_pdf(make_pdf([[], []]))


def test_reading_plain_text_imports_no_format_library(tmp_path: Path) -> None:
    """Each format's library is imported only when a file of that format is read."""
    (tmp_path / "a.txt").write_text("Alpha.\n", encoding="utf-8")
    libraries = ("trafilatura", "pypdf", "markdown_it", "charset_normalizer", "lxml")
    code = (f"import sys; from pathlib import Path; from index.ingest import read_corpus; read_corpus(Path({str(tmp_path)!r})); "
            f"print(sorted(m for m in {libraries!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
    assert out == "[]"
