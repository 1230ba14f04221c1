"""Chaos: the real `cited` command killed (SIGKILL) in the middle of a build, two builds at once,
links out of the corpus and bad files, damaged pointers and failing disks.

A killed build is a real ``cited index`` process (``service.cli.main``) that kills itself at a
named step of the build (``index.store.STEPS``, set through ``index.store.on_step`` in that
process only) or that this test kills after a random delay. Afterwards the index must be
served by the previous build or by the complete new one, never a mix, with citations that
slice the files exactly; and the next start must leave no debris.

The default run kills at 3 points (mid-embedding, between the fsync and the CURRENT rename,
after the rename) and runs 2 concurrent-build trials; ``-m slow -k chaos`` runs 20 kill points
and 10 trials.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from index import IndexConfig, IndexStale, Retriever, build_index, open_index
from index.search import SearchOptions
from index.store import POINTER, PREVIOUS, STEPS, StoredIndex, pointed, read_index
from service.cli import main
from tests.conftest import ROOT  # the working directory of every child: `python -c`/`-m` import from it

# Runs the real CLI in a fresh interpreter; argv: kill_at steps_log hold_file cli-args...
#   kill_at    a step of index.store.STEPS, or "embedding" (the build's second forward pass:
#              passage vectors made, sentence vectors not), or "" for none
#   steps_log  every step reached is appended here first, so the parent sees how far it got
#   hold_file  if not "", the build waits at "locked" (holding the lock) until this file exists
RUNNER = r"""
import os, signal, sys, time
from pathlib import Path

import index.store

kill_at, steps_log, hold = sys.argv[1], Path(sys.argv[2]), sys.argv[3]


def reached(name):
    with steps_log.open("a") as fh:
        fh.write(name + "\n")
    if name == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    if name == "locked" and hold:
        deadline = time.monotonic() + 120
        while not os.path.exists(hold) and time.monotonic() < deadline:
            time.sleep(0.02)


index.store.on_step = reached
if kill_at == "embedding":
    from index.embed import Embedder

    encode, calls = Embedder.encode, []

    def counted(self, *args, **kwargs):
        calls.append(1)
        reached(f"encode-{len(calls)}")
        if len(calls) == 2:
            reached("embedding")
        return encode(self, *args, **kwargs)

    Embedder.encode = counted

from service.cli import main

raise SystemExit(main(sys.argv[4:]))
"""

NAMED_KILLS = ("embedding", *STEPS)
# which build serves after a kill at each named step: CURRENT is replaced in one rename
SERVES = {step: "previous" for step in NAMED_KILLS} | {"current-published": "new", "tidied": "new"}
# what a kill at these steps leaves for the next start to remove: proof the kill landed mid-write
LEAVES = {"files-written": ".tmp-", "synced": ".tmp-", "renamed": "build-", "previous-written": "PREVIOUS.tmp", "current-written": "CURRENT.tmp"}


PLACES = (
    "Arvik", "Belmora", "Caskell", "Dunmere", "Elstow", "Farrowby", "Glenvoe", "Hollin", "Inverkip", "Jorvale",
    "Kestrel Point", "Lorne", "Maddock", "Nethercott", "Orford", "Pennock", "Quarrell", "Ravensby", "Saltcote", "Tarbet",
    "Ulverston", "Vexley", "Wrenfield", "Yarrow", "Zennor", "Ashcombe", "Brackley", "Corrie", "Drumlin", "Eskdale",
)


def note(n: int) -> tuple[str, str, str]:
    """A new corpus file (name, text) whose text no earlier build embedded, and a question it answers (a substring of it)."""
    place = PLACES[n % len(PLACES)]
    question = f"the lighthouse keeper at {place} logged storm {n}"
    text = (
        f"{place} Lighthouse Notice\n\n"
        f"Last night {question} of the season. Waves of {n % 7 + 3} metres reached the lamp room windows at {place}, "
        f"and the relief boat was delayed for {n % 5 + 2} days.\n"
    )
    return f"note-{n:02d}.txt", text, question


@dataclass
class Chaos:
    config: IndexConfig
    embedder: object
    work: Path
    notes: int = 0
    outcomes: list[str] = field(default_factory=list)

    def flags(self) -> list[str]:
        return ["--corpus-dir", str(self.config.corpus_dir), "--index-dir", str(self.config.index_dir)]

    def start(self, kill_at: str = "", hold: Path | None = None, command: tuple[str, ...] = ("index",)) -> tuple[subprocess.Popen, Path]:
        log = self.work / f"steps-{time.monotonic_ns()}.log"
        log.touch()
        argv = [sys.executable, "-c", RUNNER, kill_at, str(log), str(hold or ""), *command, *self.flags()]
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return proc, log

    def add_note(self) -> str:
        self.notes += 1
        name, text, question = note(self.notes)
        (self.config.corpus_dir / name).write_text(text, encoding="utf-8")
        return question


def corpus_hashes(corpus: Path) -> dict[str, str]:
    return {p.relative_to(corpus).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(corpus.rglob("*.txt"))}


def assert_cites_exactly(corpus: Path, passages) -> None:
    for p in passages:
        assert (corpus / p.source).read_bytes().decode("utf-8")[p.start:p.end] == p.text, f"{p.source}:{p.start}-{p.end} does not slice"


def debris(index_dir: Path) -> list[str]:
    """What no reader needs: temporary folders and pointers, builds neither pointer names."""
    live = {pointed(index_dir, POINTER), pointed(index_dir, PREVIOUS)}
    return sorted(
        p.name for p in index_dir.iterdir()
        if p.name.startswith(".tmp-") or p.name.endswith(".tmp") or (p.name.startswith("build-") and p.name not in live)
    )


def served(chaos: Chaos, before: StoredIndex, question: str) -> tuple[str, StoredIndex]:
    """Which build a server starting now would load ("previous" or "new"), checked whole: every file
    matches its manifest (read_index), a new build is of the whole current corpus, and the
    answers to ``question`` slice the files on disk exactly."""
    stored = read_index(chaos.config.index_dir)
    if stored.path == before.path:
        outcome = "previous"
        assert stored.passages == before.passages
    else:
        outcome = "new"
        assert stored.manifest["corpus"]["files"] == corpus_hashes(chaos.config.corpus_dir), "a build of another corpus"
        assert {d["source"] for d in stored.manifest["documents"]} == set(corpus_hashes(chaos.config.corpus_dir))
    result = Retriever(chaos.embedder, stored).search(question, SearchOptions(top_k=5))
    assert result.hits
    assert_cites_exactly(chaos.config.corpus_dir, [h.passage for h in result.hits] + [p for h in result.hits for p in h.also_in])
    if result.answer:
        text = (chaos.config.corpus_dir / result.answer.passage.source).read_bytes().decode("utf-8")
        assert text[result.answer.span.start:result.answer.span.end] == result.answer.text
    found = any(question in h.passage.text for h in result.hits)
    assert found == (outcome == "new"), f"the {outcome} build {'lacks' if outcome == 'new' else 'has'} the new note"
    return outcome, stored


def kill_trial(chaos: Chaos, kill_at: str = "", delay: float | None = None) -> tuple[str, str]:
    """Change the corpus, rebuild with `cited index` and kill it (at a named step, or ``delay``
    seconds after it took the lock); check what serves and that the next start tidies.
    Returns (outcome, last step reached)."""
    before = read_index(chaos.config.index_dir)
    previous_before = pointed(chaos.config.index_dir, PREVIOUS)
    question = chaos.add_note()
    proc, log = chaos.start(kill_at)
    if delay is not None:
        deadline = time.monotonic() + 120
        while "locked" not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    steps = log.read_text().split()
    where = f"kill at {kill_at or f'{delay:.3f}s after locked'}, steps {steps}"
    if delay is None:
        assert proc.returncode == -signal.SIGKILL and steps[-1] == kill_at, f"{where}: exit {proc.returncode}\n{err}"
    else:
        assert proc.returncode in (0, -signal.SIGKILL), f"{where}: exit {proc.returncode}\n{err}"
    left = debris(chaos.config.index_dir)
    if kill_at in LEAVES:
        assert any(name.startswith(LEAVES[kill_at]) for name in left), f"{where}: expected debris, found {left}"

    outcome, stored = served(chaos, before, question)  # what a running server would swap to now
    if kill_at:
        assert outcome == SERVES[kill_at], where
    if proc.returncode == 0:
        assert outcome == "new", where

    try:  # the next start: tidies under the lock, then finds the index fresh or (previous build) stale
        assert open_index(chaos.config, chaos.embedder, rebuild=False).path == stored.path
        assert outcome == "new", where
    except IndexStale:
        assert outcome == "previous", where
    index_dir = chaos.config.index_dir
    assert debris(index_dir) == [], f"{where}: debris after the next start"
    current, previous = pointed(index_dir, POINTER), pointed(index_dir, PREVIOUS)
    assert current == stored.path.name
    if outcome == "new":
        assert previous == before.path.name, f"{where}: a rollback would not go to the build this one replaced"
    else:
        assert previous in (previous_before, before.path.name), where
    assert {p.name for p in index_dir.iterdir()} <= {".lock", POINTER, PREVIOUS, current, previous}, where
    chaos.outcomes.append(outcome)
    return outcome, steps[-1] if steps else "(none)"


@pytest.fixture
def chaos(small_corpus: Path, tmp_path: Path, embedder) -> Chaos:
    config = IndexConfig(corpus_dir=small_corpus, index_dir=tmp_path / "index")
    build_index(config, embedder)  # the previous index
    return Chaos(config, embedder, tmp_path)


@pytest.mark.parametrize("kill_at", ["embedding", "current-written", "current-published"])
def test_a_build_killed_mid_embedding_or_mid_publish_leaves_a_whole_index_and_no_debris(chaos: Chaos, kill_at: str) -> None:
    outcome, _ = kill_trial(chaos, kill_at)
    assert outcome == SERVES[kill_at]


@pytest.mark.slow
def test_twenty_kill_points_previous_or_new_index_served_no_debris(chaos: Chaos, capsys) -> None:
    # calibrate: how long a rebuild takes from the lock to its last step, to spread random kills over it
    question = chaos.add_note()
    proc, log = chaos.start()
    while "locked" not in log.read_text() and proc.poll() is None:
        time.sleep(0.002)
    started = time.monotonic()
    while "tidied" not in log.read_text() and proc.poll() is None:
        time.sleep(0.002)
    span = time.monotonic() - started
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert any(question in p.text for p in read_index(chaos.config.index_dir).passages)

    seed = time.time_ns() % 10**6
    rng = random.Random(seed)
    plan = [(step, None) for step in NAMED_KILLS] + [("", rng.uniform(0, 1.25 * span)) for _ in range(20 - len(NAMED_KILLS))]
    rows = []
    for kill_at, delay in plan:
        outcome, last = kill_trial(chaos, kill_at, delay)
        rows.append(f"{kill_at or f'random {delay:.3f}s':>20}  last step {last:>20}  served {outcome}")
    # the killed builds left nothing behind that stops the next full build, and the real CLI serves it
    question = chaos.add_note()
    done = subprocess.run([sys.executable, "-m", "service.cli", "index", *chaos.flags()], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with capsys.disabled():
        print(f"\nkill points (seed {seed}; a build runs {span:.2f}s from locked to tidied):\n" + "\n".join(rows))
        print(f"{len(rows)}/20 kill points: previous or new index served whole, no debris after the next start "
              f"({chaos.outcomes.count('previous')} previous, {chaos.outcomes.count('new')} new)")
    assert len(rows) == 20
    assert main(["query", question, "--json", *chaos.flags()]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert any(question in r["text"] for r in answer["results"])
    for r in answer["results"]:
        c = r["citation"]
        assert (chaos.config.corpus_dir / c["source"]).read_bytes().decode("utf-8")[c["start"]:c["end"]] == r["text"]


def test_a_rollback_killed_between_its_two_pointers_serves_the_build_rolled_back_to(chaos: Chaos) -> None:
    older = read_index(chaos.config.index_dir)
    chaos.add_note()
    newer = build_index(chaos.config, chaos.embedder)
    proc, log = chaos.start("current-published", command=("index", "--rollback"))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL and log.read_text().split()[-1] == "current-published", err
    assert read_index(chaos.config.index_dir).path == older.path  # CURRENT moved first: the rollback happened
    with pytest.raises(IndexStale):  # the next start (the corpus has the note the older build lacks)
        open_index(chaos.config, chaos.embedder, rebuild=False)
    index_dir = chaos.config.index_dir
    assert pointed(index_dir, POINTER) == pointed(index_dir, PREVIOUS) == older.path.name
    assert debris(index_dir) == [] and not newer.path.exists()
    assert main(["index", "--rollback", *chaos.flags()]) == 1  # nothing left to roll back to, said in one line


def concurrent_trial(chaos: Chaos) -> None:
    """Two `cited index --rebuild` started together: the one that takes the lock holds it (waiting
    at "locked" until the other has exited, so they overlap however the machine schedules their
    start-up); the other must exit 1 at once, naming the holder."""
    question = chaos.add_note()
    hold = chaos.work / f"go-{time.monotonic_ns()}"
    procs = [chaos.start(hold=hold, command=("index", "--rebuild"))[0] for _ in range(2)]
    try:
        deadline = time.monotonic() + 120
        while all(p.poll() is None for p in procs):
            assert time.monotonic() < deadline, "neither build finished"
            time.sleep(0.02)
        refused = next(p for p in procs if p.poll() is not None)
        holder = next(p for p in procs if p is not refused)
        assert holder.poll() is None, "the build holding the lock finished before the other was refused"
        _, err = refused.communicate()
    finally:
        hold.touch()
    _, holder_err = holder.communicate(timeout=120)
    assert holder.returncode == 0, holder_err
    assert refused.returncode == 1 and "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("cited: error:")]
    assert errors == [f"cited: error: another build (pid {holder.pid}) is writing the index at {chaos.config.index_dir}; wait for it to finish"]
    assert err.strip().splitlines()[-1] == errors[0]
    stored = read_index(chaos.config.index_dir)  # valid, and the holder's complete build
    assert stored.manifest["corpus"]["files"] == corpus_hashes(chaos.config.corpus_dir)
    assert any(question in p.text for p in stored.passages)
    assert_cites_exactly(chaos.config.corpus_dir, stored.passages)
    assert debris(chaos.config.index_dir) == []


@pytest.mark.parametrize("left_behind", ["", "dead"], ids=["empty", "a-killed-holder's-pid"])
def test_a_writer_refused_the_instant_the_lock_is_taken_still_names_the_holder(tmp_path: Path, left_behind: str) -> None:
    """The race a concurrent trial hit (1 in 12): refused between the holder's flock and its pid write,
    the message said "pid unknown" (or would name a killed holder)."""
    import fcntl
    import threading

    from index.lock import LOCK, IndexBusy, index_lock

    tmp_path.joinpath(LOCK).write_text(f"{_dead_pid()}\n" if left_behind else "")
    fd = os.open(tmp_path / LOCK, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # taken; the pid not yet written
    record = f"{os.getpid()}\n".encode()  # the holder must be a live process: this one, writing its pid 50 ms late
    writer = threading.Timer(0.05, lambda: (os.pwrite(fd, record, 0), os.ftruncate(fd, len(record))))
    writer.start()
    try:
        with pytest.raises(IndexBusy, match=rf"another build \(pid {os.getpid()}\) is writing"), index_lock(tmp_path):
            pass
    finally:
        writer.join()
        os.close(fd)


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_two_builds_at_once_one_builds_the_other_refuses(chaos: Chaos) -> None:
    for _ in range(2):
        concurrent_trial(chaos)


@pytest.mark.slow
def test_two_builds_at_once_ten_trials(chaos: Chaos, capsys) -> None:
    for trial in range(10):
        concurrent_trial(chaos)
    with capsys.disabled():
        print(f"\n{trial + 1}/10 concurrent trials: one built, the other refused naming it, index valid")


def test_links_out_and_bad_files_are_skipped_and_never_served(small_corpus: Path, tmp_path: Path, capsys) -> None:
    outside = tmp_path / "outside"
    (outside / "folder").mkdir(parents=True)
    (outside / "secret.txt").write_text("Vault Memo\n\nThe vault code is ZEBRA-4471. Nobody outside the treasury may read it.\n", encoding="utf-8")
    (outside / "folder" / "more.txt").write_text("Vault Annex\n\nThe spare vault code is OKAPI-9902.\n", encoding="utf-8")
    (small_corpus / "leak.txt").symlink_to(outside / "secret.txt")
    (small_corpus / "annex").symlink_to(outside / "folder", target_is_directory=True)
    (small_corpus / "latin1.txt").write_bytes("Caf\xe9 Notes\n\nThe caf\xe9 on the quay serves cr\xe8me br\xfbl\xe9e.\n".encode("latin-1"))
    (small_corpus / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    with open(os.fsencode(small_corpus) + b"/caf\xe9-vault.txt", "wb") as fh:
        fh.write(b"Vault Copy\n\nThe vault code is ZEBRA-4471, copied under a latin-1 name.\n")
    index_dir = tmp_path / "index"
    flags = ["--corpus-dir", str(small_corpus), "--index-dir", str(index_dir)]

    done = subprocess.run([sys.executable, "-m", "service.cli", "index", *flags], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    manifest = read_index(index_dir).manifest
    assert {s["source"]: s["reason"] for s in manifest["skipped"]} == {
        "leak.txt": "a link to a file outside the corpus folder (set follow_links to index it)",
        "annex": "a link to a folder; links to folders are not followed",
        "image.txt": "is not valid UTF-8 (byte 0) and no other encoding fits it; convert it to UTF-8",
        "caf\\udce9-vault.txt": "the file name is not valid UTF-8; rename it",
    }
    # latin-1 text is read in the encoding detected for it, which the manifest records
    assert sorted((d["source"], d["encoding"]) for d in manifest["documents"]) == [
        ("harbour.txt", "utf-8"), ("latin1.txt", "cp1252"), ("orchard.txt", "utf-8")]

    assert main(["query", "What is the vault code?", "--top-k", "50", "--json", *flags]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    served_sources = {r["citation"]["source"] for r in results} | {a["source"] for r in results for a in r["also_in"]}
    assert served_sources <= {"harbour.txt", "orchard.txt", "latin1.txt"}  # 0 files from outside the folder, 0 bad files
    assert not any(word in r["text"] for r in results for word in ("ZEBRA", "OKAPI", "vault"))
    for r in results:
        c = r["citation"]
        assert (small_corpus / c["source"]).read_bytes().decode(c["encoding"])[c["start"]:c["end"]] == r["text"]


def test_a_folder_that_cannot_be_listed_is_skipped_by_name(small_corpus: Path, monkeypatch) -> None:
    from index.ingest import read_corpus

    (small_corpus / "locked").mkdir()
    (small_corpus / "locked" / "inside.txt").write_text("Hidden\n\nText nobody can list.\n", encoding="utf-8")
    scandir = os.scandir

    def denied(path):  # as for a folder without read permission (chmod cannot show it when the tests run as root)
        if Path(path).name == "locked":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", denied)
    corpus = read_corpus(small_corpus)
    assert [d.source for d in corpus.documents] == ["harbour.txt", "orchard.txt"]
    assert [(s.source, s.reason) for s in corpus.skipped] == [("locked", "a folder that cannot be listed (Permission denied)")]


def _too_long(path: Path) -> None:
    path.write_text("b" * 300 + "\n")  # was: OSError: File name too long


def _binary(path: Path) -> None:
    path.write_bytes(b"\x00\xff\xfebuild\x01")  # was: UnicodeDecodeError, naming no file


def _folder(path: Path) -> None:
    path.unlink()
    path.mkdir()  # was: "no index", then IsADirectoryError when the rebuild published


@pytest.mark.parametrize("damage", [_too_long, _binary, _folder], ids=["300-characters", "binary", "folder"])
def test_a_damaged_current_is_one_line_naming_it_and_no_build_is_deleted(small_corpus: Path, tmp_path: Path, embedder, damage, capsys) -> None:
    config = IndexConfig(corpus_dir=small_corpus, index_dir=tmp_path / "index")
    live = build_index(config, embedder).path
    pointer = config.index_dir / POINTER
    damage(pointer)
    flags = ["--corpus-dir", str(small_corpus), "--index-dir", str(config.index_dir)]

    def one_line(argv: list[str]) -> str:
        capsys.readouterr()
        assert main(argv) == 1
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("cited: error:")]
        assert len(errors) == 1 and "Traceback" not in err and err.strip().splitlines()[-1] == errors[0], err
        return errors[0]

    for argv in (["query", "apples", *flags], ["query", "apples", *flags], ["index", *flags]):
        line = one_line(argv)  # refused even when rebuilding is allowed: a damaged index is never silently replaced
        assert line.startswith(f"cited: error: index at {pointer} is corrupt: ")
    assert live.is_dir()  # the next start's tidy no longer deletes the build a damaged CURRENT hid

    if damage is _folder:
        assert one_line(["index", "--rebuild", *flags]) == (
            f"cited: error: cannot write the index: {pointer} is a folder, not the file naming the live build; remove it"
        )
        assert live.is_dir() and debris_free(config.index_dir, keep={live.name, POINTER})
    else:
        assert main(["index", "--rebuild", *flags]) == 0  # --rebuild repairs it
        assert read_index(config.index_dir).passages


def debris_free(index_dir: Path, keep: set[str]) -> bool:
    return {p.name for p in index_dir.iterdir()} <= keep | {".lock"}


def test_a_damaged_previous_stops_a_rollback_with_one_line(small_corpus: Path, tmp_path: Path, embedder, capsys) -> None:
    config = IndexConfig(corpus_dir=small_corpus, index_dir=tmp_path / "index")
    build_index(config, embedder)
    (small_corpus / "extra.txt").write_text("Extra\n\nThe ferry runs late on Sundays.\n", encoding="utf-8")
    live = build_index(config, embedder).path
    (config.index_dir / PREVIOUS).write_bytes(b"\xff" * 10)
    capsys.readouterr()  # the builds' own log lines, if an earlier command left logging on
    assert main(["index", "--rollback", "--corpus-dir", str(small_corpus), "--index-dir", str(config.index_dir)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"cited: error: index at {config.index_dir / PREVIOUS} is corrupt: it is not UTF-8 text (10 bytes), so it names no build. "
                   "Refusing to serve it; rebuild it with `cited index --rebuild` (or delete the folder)."]
    assert read_index(config.index_dir).path == live


def test_a_full_disk_during_a_build_is_one_line_naming_the_file_and_the_index_still_serves(chaos: Chaos, monkeypatch, capsys) -> None:
    before = read_index(chaos.config.index_dir)
    chaos.add_note()
    real_fsync = os.fsync

    def full(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith("passages.jsonl"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full)
    assert main(["index", *chaos.flags()]) == 1
    monkeypatch.undo()
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("cited: error: cannot write the index: ") and err[-1].endswith("/passages.jsonl: No space left on device")
    assert "Traceback" not in "\n".join(err)
    assert read_index(chaos.config.index_dir).path == before.path and debris(chaos.config.index_dir) == []
