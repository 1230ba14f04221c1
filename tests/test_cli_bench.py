"""`cited bench cli` runs and reports each command beside the bare interpreter (its numbers are not asserted)."""

from __future__ import annotations

import json
from pathlib import Path

from service.cli import main


def test_the_cli_benchmark_reports_every_command(tmp_path: Path, capsys) -> None:
    assert main(["bench", "cli", "--rounds", "1", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "cli.json").read_text())
    commands = [row["command"] for row in report["rows"]]
    assert commands[0] == "python -c pass" and "cited --help" in commands and "cited --version" in commands
    assert all(row["median_s"] > 0 for row in report["rows"])
    assert "| cited --help" in (tmp_path / "cli.md").read_text()
