"""Reading the corpus: exact bytes, and knowing what changed without reading what did not."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from index.errors import CorpusError
from index.ingest import RACY_NS, FilePolicy, corpus_digest, corpus_stats, read_corpus


def _corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_bytes("Alpha line.\r\nSecond — line.\n".encode())
    (folder / "sub" / "b.txt").write_text("Beta.\n", encoding="utf-8")
    (folder / ".hidden.json").write_text("{}\n", encoding="utf-8")  # hidden and not a document: passed over
    return folder


def _age(folder: Path, seconds: float) -> None:
    """Move every file's mtime into the past, as for files that were not just written."""
    for path in folder.rglob("*.txt"):
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - int(seconds * 1e9)))


def _manifest(folder: Path) -> dict:
    corpus = read_corpus(folder)
    return {"corpus": {"files": corpus.files}, "corpus_stat": corpus.stat}


def test_documents_keep_their_bytes_and_the_digest_is_of_those_bytes(tmp_path: Path) -> None:
    folder = _corpus(tmp_path)
    corpus = read_corpus(folder)
    assert [d.source for d in corpus.documents] == ["a.txt", "sub/b.txt"]
    assert corpus.documents[0].text == "Alpha line.\r\nSecond — line.\n"  # no newline translation
    assert corpus.files["a.txt"] == hashlib.sha256((folder / "a.txt").read_bytes()).hexdigest()
    assert set(corpus.stat["files"]) == {"a.txt", "sub/b.txt"}


def test_unchanged_files_are_not_read_again(tmp_path: Path) -> None:
    folder = _corpus(tmp_path)
    _age(folder, 10)
    recorded = _manifest(folder)
    digest = corpus_digest(folder, recorded)
    assert digest.hashed == 0 and digest.files == recorded["corpus"]["files"]


def test_a_file_whose_stat_changed_is_hashed_again_and_only_it(tmp_path: Path) -> None:
    folder = _corpus(tmp_path)
    _age(folder, 10)
    recorded = _manifest(folder)
    (folder / "a.txt").write_text("Alpha line, edited.\n", encoding="utf-8")
    (folder / "c.txt").write_text("Gamma.\n", encoding="utf-8")
    digest = corpus_digest(folder, recorded)
    assert digest.hashed == 2  # the edited file and the new one
    assert digest.files["a.txt"] == hashlib.sha256(b"Alpha line, edited.\n").hexdigest()
    assert digest.files["sub/b.txt"] == recorded["corpus"]["files"]["sub/b.txt"]


def test_a_file_written_just_before_it_was_read_is_never_trusted_by_its_stat(tmp_path: Path) -> None:
    folder = _corpus(tmp_path)  # written now: within RACY_NS of the read
    recorded = _manifest(folder)
    assert all(mtime >= recorded["corpus_stat"]["taken_ns"] - RACY_NS for _, mtime in recorded["corpus_stat"]["files"].values())
    assert corpus_digest(folder, recorded).hashed == 2


def test_without_a_record_everything_is_hashed(tmp_path: Path) -> None:
    folder = _corpus(tmp_path)
    assert corpus_digest(folder).hashed == 2
    assert corpus_digest(folder, {"corpus": {"files": {}}}).hashed == 2  # a manifest from before stats were kept


def test_stats_list_every_document_file(tmp_path: Path) -> None:
    folder = _corpus(tmp_path)
    assert set(corpus_stats(folder)) == {"a.txt", "sub/b.txt"}


def _skipped(corpus) -> dict[str, str]:
    return {s.source: s.reason for s in corpus.skipped}


def test_a_file_that_is_not_utf8_is_read_in_the_encoding_detected_and_named(tmp_path: Path, caplog) -> None:
    folder = _corpus(tmp_path)
    text = "Le café ouvre à sept heures. On y sert des crêpes et une crème brûlée.\n"
    (folder / "latin1.txt").write_bytes(text.encode("latin-1"))
    corpus = read_corpus(folder)
    latin1 = next(d for d in corpus.documents if d.source == "latin1.txt")
    assert (latin1.text, latin1.encoding, latin1.doc_id) == (text, "cp1252", "latin1")
    assert "latin1.txt is not valid UTF-8: read as cp1252" in caplog.text


def test_a_file_no_encoding_fits_is_skipped_by_name_and_the_rest_is_read(tmp_path: Path, caplog) -> None:
    folder = _corpus(tmp_path)
    (folder / "noise.txt").write_bytes(b"\xff\xfe\x00" + bytes(range(32)) * 50)
    corpus = read_corpus(folder)
    assert [d.source for d in corpus.documents] == ["a.txt", "sub/b.txt"]
    assert _skipped(corpus) == {"noise.txt": "is not valid UTF-8 (byte 0) and no other encoding fits it; convert it to UTF-8"}
    assert "noise.txt" in corpus.files  # hashed all the same: fixing the file makes the index stale
    assert "skipped noise.txt: is not valid UTF-8" in caplog.text


def test_every_supported_suffix_in_any_case_is_read_and_other_files_are_reported(tmp_path: Path) -> None:
    folder = _corpus(tmp_path)
    (folder / "SHOUT.TXT").write_text("Loud.\n", encoding="utf-8")
    (folder / "notes.Md").write_text("# Notes\n\nQuiet.\n", encoding="utf-8")
    (folder / "table.csv").write_text("a,b\n", encoding="utf-8")
    corpus = read_corpus(folder)
    assert [(d.source, d.doc_id, d.format) for d in corpus.documents] == [
        ("SHOUT.TXT", "SHOUT.TXT", "text"), ("a.txt", "a", "text"), ("notes.Md", "notes.Md", "markdown"), ("sub/b.txt", "sub/b", "text")]
    assert _skipped(corpus) == {"table.csv": "not a supported format (.txt, .md, .markdown, .html, .htm, .pdf)"}


def test_links_out_of_the_folder_are_never_read_unless_allowed(tmp_path: Path) -> None:
    folder = _corpus(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET\n", encoding="utf-8")
    (folder / "leak.txt").symlink_to(secret)
    (folder / "inside.txt").symlink_to(folder / "a.txt")  # a link within the folder is fine
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "more.txt").write_text("More secrets.\n", encoding="utf-8")
    (folder / "linked-folder").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    corpus = read_corpus(folder)
    assert "TOP SECRET" not in "".join(d.text for d in corpus.documents)
    assert [d.source for d in corpus.documents] == ["a.txt", "inside.txt", "sub/b.txt"]
    assert _skipped(corpus) == {
        "leak.txt": "a link to a file outside the corpus folder (set follow_links to index it)",
        "linked-folder": "a link to a folder; links to folders are not followed",
    }
    allowed = read_corpus(folder, FilePolicy(follow_links=True))
    assert "leak.txt" in [d.source for d in allowed.documents] and "more.txt" not in str(allowed.files)


def test_special_large_and_badly_named_files_are_skipped(tmp_path: Path) -> None:
    folder = _corpus(tmp_path)
    os.mkfifo(folder / "pipe.txt")  # reading it would block the build forever
    (folder / "big.txt").write_text("x" * 2000, encoding="utf-8")
    os.symlink(folder / "gone.txt", folder / "dangling.txt")
    bad_name = os.fsencode(folder) + b"/caf\xe9.txt"
    with open(bad_name, "wb") as fh:
        fh.write(b"A file whose name is latin-1.\n")
    corpus = read_corpus(folder, FilePolicy(max_file_bytes=1000))
    skipped = _skipped(corpus)
    assert skipped["pipe.txt"] == "not a regular file"
    assert skipped["big.txt"] == "2000 bytes, over max_file_bytes (1000)"
    assert skipped["dangling.txt"].startswith("cannot be read")
    assert skipped["caf\\udce9.txt"] == "the file name is not valid UTF-8; rename it"
    assert [d.source for d in corpus.documents] == ["a.txt", "sub/b.txt"]


def test_a_folder_without_one_readable_file_is_an_error_that_says_why(tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "noise.txt").write_bytes(b"\xff\xfe\x00" + bytes(range(32)) * 50)
    with pytest.raises(CorpusError, match=r"holds no readable documents \(.txt, .md, .markdown, .html, .htm, .pdf\) \(1 skipped, e.g. noise.txt: is not valid UTF-8"):
        read_corpus(folder)
