"""`cited bench cli`: how long the commands a person types first take to answer, as fresh processes.

`--help` and `--version` must not wait for the model libraries (target ≤ 0.5 s); the time is a
median over fresh interpreter starts, beside the bare interpreter start measured in the same
run, so a slow machine shows as a slow baseline rather than as a slow CLI.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from eval.tables import table

COMMANDS: tuple[tuple[str, ...], ...] = (("--help",), ("--version",), ("query", "--help"), ("serve", "--help"), ("eval", "--help"))
BASELINE = ("python -c pass", [sys.executable, "-c", "pass"])


def _seconds(argv: Sequence[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def run_cli_bench(rounds: int = 5, commands: Sequence[Sequence[str]] = COMMANDS) -> dict[str, Any]:
    """Median seconds per command, rounds interleaved so a passing load spike hits every row alike."""
    rows: dict[str, list[float]] = {BASELINE[0]: []}
    argvs = {BASELINE[0]: BASELINE[1]}
    for command in commands:
        name = "cited " + " ".join(command)
        rows[name] = []
        argvs[name] = [sys.executable, "-m", "service.cli", *command]
    for _ in range(rounds):
        for name, argv in argvs.items():
            rows[name].append(_seconds(argv))
    base = statistics.median(rows[BASELINE[0]])
    return {
        "rounds": rounds,
        "target_s": 0.5,
        "rows": [{"command": name, "median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3),
                  "over_interpreter_s": round(statistics.median(times) - base, 3)} for name, times in rows.items()],
    }


def markdown(report: dict[str, Any]) -> str:
    head = f"Fresh processes, median of {report['rounds']} rounds (target ≤ {report['target_s']} s).\n\n"
    rows = [[r["command"], f"{r['median_s']:.3f}", f"{r['max_s']:.3f}", f"{r['over_interpreter_s']:+.3f}"] for r in report["rows"]]
    return head + table(["command", "median s", "max s", "over the bare interpreter s"], rows) + "\n"
