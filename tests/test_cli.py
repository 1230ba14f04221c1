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


def test_query_text_output_shows_rank_score_and_citation(seed_settings, capsys) -> None:
    assert main(["query", "Aynak copper mine", "--top-k", "1", *seed_flags(seed_settings)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1. [") and ".txt:" in out and "Aynak copper mine" in out


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
