"""The load benchmark drives a real server over HTTP and reports what the clients saw (not a timing test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.load import bare_encode, run_level
from service.cli import main
from tests.conftest import table_rows


def test_a_level_counts_every_request_and_reads_the_lane(live_server: str) -> None:
    questions = ["Who is Chen Wenqing?", "What is ETIM?", "Where is the Wakhan corridor?"]
    level = run_level(live_server, questions, clients=3, requests=7)
    assert level.ok == 7 and level.refused == 0 and level.errors == {}
    assert 0 < level.p50_ms <= level.p95_ms <= level.p99_ms and level.qps > 0
    assert level.lane["questions"] == 7 and level.lane["batches"] >= 1 and level.lane["rejected"] == 0
    assert level.livez_failed == 0 and (level.livez_p50_ms is None or level.livez_p50_ms <= level.livez_p99_ms)


def test_bare_encode_reports_the_single_and_batched_speed(embedder) -> None:
    speed = bare_encode(embedder, ["a question"] * 4, rounds=1, batch=2)
    assert speed["single_p50_ms"] > 0 and speed["batch2_qps"] > 0


def test_the_command_writes_json_and_markdown_against_a_running_server(live_server: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["bench", "load", "--url", live_server, "--levels", "1,2", "--requests", "4", "--out", str(tmp_path)])
    assert code == 0
    report = json.loads((tmp_path / "load.json").read_text(encoding="utf-8"))
    assert [level["clients"] for level in report["levels"]] == [1, 2]
    assert all(level["ok"] == 4 for level in report["levels"])
    assert report["ratios"]["one_client_p50_over_bare_encode_p50"] > 0
    markdown = (tmp_path / "load.md").read_text(encoding="utf-8")
    header, *levels = table_rows(markdown)
    assert header[:5] == ["clients", "requests", "ok", "503", "other errors"]
    assert [row[:5] for row in levels] == [["1", "4", "4", "0", "0"], ["2", "4", "4", "0", "0"]]
    assert header[-2:] == ["/livez p50 ms", "/livez p99 ms"]
    assert markdown in capsys.readouterr().out


@pytest.mark.parametrize("flags, message", [(["--levels", "0"], "between 1 and 1024"), (["--requests", "x"], "whole number")])
def test_bad_flags_are_one_line_errors(flags: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "load", *flags])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_an_unreachable_url_is_a_one_line_error(capsys: pytest.CaptureFixture) -> None:
    assert main(["bench", "load", "--url", "http://127.0.0.1:9"]) == 1
    assert "no cited server answers" in capsys.readouterr().err


def test_the_started_server_runs_the_settings_given_and_has_its_cache_off(seed_settings, retriever) -> None:
    from service.bench_cli import _cpu_seconds, _free_port, _rss_mb, _server

    settings = seed_settings.model_copy(update={"port": _free_port(), "cache_size": 0, "max_batch": 4, "log_level": "warning"})
    with _server(settings) as (url, pid):
        level = run_level(url, ["What is ETIM?", "Who is Chen Wenqing?"], clients=2, requests=4,
                          rss_mb=lambda: _rss_mb(pid), cpu_seconds=lambda: _cpu_seconds(pid))
    assert level.ok == 4 and level.rss_mb_start > 100  # a loaded model and index, measured from /proc
    assert level.server_cpu_ms > 0 and level.client_cpu_ms > 0
    assert level.lane["encoded"] == level.lane["questions"] == 4  # no cache: every request paid for the model
    # (two clients alternate two questions, so a batch never holds one question twice)
