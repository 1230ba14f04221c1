"""The `cited` command line: same answers as the API, one-line errors, non-zero exits."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from service.cli import main


def seed_flags(seed_settings) -> list[str]:
    return ["--corpus-dir", str(seed_settings.corpus_dir), "--index-dir", str(seed_settings.index_dir)]


def test_query_json_is_the_api_response(client, retriever, seed_settings, capsys) -> None:
    question = "Who is Chen Wenqing?"
    assert main(["query", question, "--top-k", "3", "--json", *seed_flags(seed_settings)]) == 0
    printed = json.loads(capsys.readouterr().out)
    served = client.post("/query", json={"question": question, "top_k": 3}).json()
    printed.pop("took_ms"), served.pop("took_ms")
    assert printed == served


def test_query_text_output_leads_with_the_answer_and_marks_highlights(seed_settings, retriever, capsys) -> None:
    question = "What did Beijing ask Mullah Omar in 2000?"
    assert main(["query", question, "--top-k", "2", *seed_flags(seed_settings)]) == 0
    out = capsys.readouterr().out
    found = retriever.search(question)
    answer, top = found.answer, found.hits[0]
    assert out.startswith(f"Answer: {answer.text}\n")
    assert f"{answer.passage.source}:{answer.span.start}-{answer.span.end}" in out.splitlines()[1]
    assert f"1. {top.passage.source}:{top.passage.start}-{top.passage.end}" in out
    first = top.highlights[0]
    assert "»" + top.passage.text[first.start - top.passage.start : first.end - top.passage.start].splitlines()[0] in out
    assert top.also_in, "the seeds hold this passage twice (001 and 004 are scrapes of one article)"
    assert "also in: " + ", ".join(f"{p.source}:{p.start}-{p.end}" for p in top.also_in) in out
    assert "[2.0" not in out and "score" not in out  # fused scores are not confidence: left to --json


def test_query_asks_a_running_server_with_url(live_server, seed_settings, capsys) -> None:
    question = "Who is Chen Wenqing?"
    assert main(["query", question, "--top-k", "2", "--json", *seed_flags(seed_settings)]) == 0
    local = json.loads(capsys.readouterr().out)
    assert main(["query", question, "--top-k", "2", "--json", "--url", live_server]) == 0
    remote = json.loads(capsys.readouterr().out)
    local.pop("took_ms"), remote.pop("took_ms")
    assert remote == local
    assert main(["query", question, "--url", "http://127.0.0.1:9"]) == 1
    assert capsys.readouterr().err.startswith("cited: error: no cited server answers at http://127.0.0.1:9")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["query", "   "], "cited: error: question must not be empty or only whitespace"),
        (["query", "ok", "--top-k", "0"], "cited: error: top_k: Input should be greater than or equal to 1"),
        (["query", "ok", "--chunk-tokens", "lots"], "cited: error: invalid settings: chunk_tokens: Input should be a valid integer"),
        (["query", "ok", "--chunk-tokens", "64", "--overlap-tokens", "64"], "cited: error: invalid settings:"),
        (["index", "--corpus-dir", "/no/such/folder", "--index-dir", "/tmp/cited-test-none"], "cited: error: corpus folder /no/such/folder does not exist"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_1(argv, message, capsys) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(message)
    assert not any("Traceback" in line for line in err)


def test_index_builds_and_reports_counts(small_corpus, tmp_path, capsys) -> None:
    argv = ["index", "--corpus-dir", str(small_corpus), "--index-dir", str(tmp_path / "idx")]
    assert main(argv) == 0
    assert "2 documents" in capsys.readouterr().out


def test_console_script_usage_errors_exit_2_without_traceback() -> None:
    done = subprocess.run([sys.executable, "-m", "service.cli", "query"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "required: question" in done.stderr and "Traceback" not in done.stderr


def test_query_with_other_chunking_refuses_instead_of_rebuilding_the_servers_index(seed_settings, capsys) -> None:
    current = (seed_settings.index_dir / "CURRENT").read_text()
    assert main(["query", "Aynak copper mine", "--chunk-tokens", "64", *seed_flags(seed_settings)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("cited: error: index at") and "chunk_tokens 128 → 64" in err and "`cited index`" in err and "\n" not in err
    assert (seed_settings.index_dir / "CURRENT").read_text() == current  # the index a server uses is untouched


def test_each_command_lists_only_the_settings_it_reads(capsys) -> None:
    def flags(*argv: str) -> str:
        with pytest.raises(SystemExit):
            main([*argv, "--help"])
        return capsys.readouterr().out

    index, query, serve = flags("index"), flags("query", "x"), flags("serve")
    assert "--chunk-tokens" in index and "--port" not in index and "--retrieval" not in index
    assert "--retrieval {dense,bm25,hybrid}" in query and "--port" not in query and "--auto-rebuild" not in query
    assert "--port" in serve and "--max-connections" in serve and "--sentence-vectors {encoded,pooled}" in serve
