"""`cited index --engine ray`: a real local Ray (loopback, no dashboard) builds the same index as
the local engine. Run with `pytest -m ray` (the ray extra: pip install -e '.[test,ray]')."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from eval.questions import load_questions
from eval.relevance import Corpus, gold_spans
from eval.runner import InProcess, run_eval
from index import Embedder, Retriever, build_index
from index.build import stale_because
from index.components import read_sentence_origins, read_sentences
from index.errors import ModelError
from index.ray_embed import EmbedBatch, RayEmbedder, ray_session
from index.store import StoredIndex
from service.cli import main
from service.settings import Settings

from .conftest import SEEDS

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 1e-5  # the target; the two engines batch the same texts alike, so measured differences are ~1e-7


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[object]:
    """One local Ray for the module, started as `cited index --engine ray` starts its own; builds
    inside it use it and leave it running."""
    pytest.importorskip("ray", reason="the ray extra is not installed: pip install -e '.[test,ray]'")
    with ray_session(None) as ray:
        yield ray


def _build(corpus: Path, index_dir: Path, embedder: Embedder, **settings: object) -> StoredIndex:
    config = Settings(corpus_dir=corpus, index_dir=index_dir, **settings).index_config()
    return build_index(config, embedder)


def assert_same_index(ray_built: StoredIndex, local: StoredIndex, same_reuse: bool = True) -> None:
    """Same passages and sentences; every passage and sentence vector within TOLERANCE."""
    assert ray_built.passages == local.passages
    a = ray_built.vector_index.reconstruct_n(0, ray_built.vector_index.ntotal)
    b = local.vector_index.reconstruct_n(0, local.vector_index.ntotal)
    assert a.shape == b.shape and float(np.abs(a - b).max()) < TOLERANCE
    sa, sb = read_sentences(ray_built.path), read_sentences(local.path)
    assert np.array_equal(sa.starts, sb.starts) and np.array_equal(sa.ends, sb.ends)
    assert all(np.array_equal(x, y) for x, y in zip(sa.members, sb.members, strict=True))
    assert np.array_equal(read_sentence_origins(ray_built.path), read_sentence_origins(local.path))
    assert sa.vectors.shape == sb.vectors.shape and float(np.abs(sa.vectors - sb.vectors).max()) < TOLERANCE
    for key in ("passages", "documents", "chunking", "model", *(("reuse", "sentence_vectors") if same_reuse else ())):
        assert ray_built.manifest[key] == local.manifest[key], key
    assert (ray_built.manifest["engine"], local.manifest["engine"]) == ("ray", "local")


@pytest.fixture(scope="module")
def ray_seed_index(ray_cluster: object, tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> StoredIndex:
    return _build(SEEDS, tmp_path_factory.mktemp("ray-index"), embedder, engine="ray")


@pytest.mark.ray
def test_ray_builds_the_seed_index_the_local_build_does(ray_seed_index: StoredIndex, retriever: Retriever) -> None:
    assert ray_seed_index.manifest["reuse"]["passages_embedded"] == len(ray_seed_index.passages)
    assert_same_index(ray_seed_index, retriever.stored)


@pytest.mark.ray
def test_the_ray_built_index_answers_the_eval_the_local_one_does(ray_seed_index: StoredIndex, retriever: Retriever, embedder: Embedder) -> None:
    questions = load_questions(ROOT / "eval" / "questions.jsonl", SEEDS)
    spans = gold_spans(questions, Corpus.read(SEEDS))
    on_ray = run_eval(questions, spans, InProcess(Retriever(embedder, ray_seed_index)))
    local = run_eval(questions, spans, InProcess(retriever))
    assert on_ray.aggregates["overall"] == local.aggregates["overall"]
    assert on_ray.aggregates["highlights"] == local.aggregates["highlights"]
    # per question: the same citations in the same order (ties are ordered by index/ties.py, not by float noise)
    for a, b in zip(on_ray.records, local.records, strict=True):
        assert a["id"] == b["id"] and a["metrics"] == b["metrics"]
        assert [(r["source"], r["start"], r["end"]) for r in a["results"]] == [(r["source"], r["start"], r["end"]) for r in b["results"]]
        assert np.allclose([r["score"] for r in a["results"]], [r["score"] for r in b["results"]], atol=1e-4)


@pytest.mark.ray
def test_an_index_built_on_ray_is_fresh_for_the_local_engine(ray_seed_index: StoredIndex, embedder: Embedder) -> None:
    """Both engines write the same index: switching engine must not make it stale (and rebuild)."""
    config = Settings(corpus_dir=SEEDS, index_dir=ray_seed_index.path.parent).index_config()
    assert config.engine == "local" and stale_because(config, embedder.info, ray_seed_index) == []


@pytest.mark.ray
def test_pooled_sentence_vectors_on_ray_equal_the_local_ones(ray_cluster: object, tmp_path: Path, embedder: Embedder) -> None:
    ray_built = _build(SEEDS, tmp_path / "ray", embedder, engine="ray", sentence_vectors="pooled")
    local = _build(SEEDS, tmp_path / "local", embedder, sentence_vectors="pooled")
    assert_same_index(ray_built, local)


@pytest.mark.ray
def test_a_ray_rebuild_sends_only_new_text_to_ray(ray_cluster: object, small_corpus: Path, tmp_path: Path, embedder: Embedder) -> None:
    first = _build(small_corpus, tmp_path / "ray", embedder, engine="ray")
    (small_corpus / "ferry.txt").write_text(
        "Ferry Timetable Changes\n\nThe island ferry will sail every two hours from May. The operator added a night crossing on Fridays.\n",
        encoding="utf-8",
    )
    second = _build(small_corpus, tmp_path / "ray", embedder, engine="ray")
    reuse = second.manifest["reuse"]
    assert reuse["passages_reused"] == len(first.passages) and reuse["passages_embedded"] == len(second.passages) - len(first.passages) > 0
    assert reuse["sentences_embedded"] > 0 and reuse["sentences_reused"] > 0
    assert_same_index(second, _build(small_corpus, tmp_path / "local", embedder), same_reuse=False)


@pytest.mark.ray
def test_a_worker_with_other_weights_fails_the_build_with_the_model_error(ray_cluster: object, embedder: Embedder) -> None:
    other = dataclasses.replace(embedder.info, fingerprint="sha256:" + "0" * 64)
    with RayEmbedder(_WithInfo(other)) as on_ray, pytest.raises(ModelError, match="fingerprints differ"):
        on_ray.encode(["A harbour authority approved a breakwater."])


class _WithInfo:
    def __init__(self, info: object) -> None:
        self.info = info


def test_an_actor_refuses_other_weights_than_the_driver_s() -> None:
    with pytest.raises(ModelError, match="fingerprints differ"):
        EmbedBatch("all-MiniLM-L6-v2", "sha256:not-these-weights", 32)


def test_without_the_extra_the_command_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, small_corpus: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as it does where the extra is not installed
    code = main(["index", "--engine", "ray", "--corpus-dir", str(small_corpus), "--index-dir", str(tmp_path / "index")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("cited: error:") == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == "cited: error: engine=ray needs the ray extra, which is not installed: pip install 'cited[ray]'"
    assert not (tmp_path / "index" / "CURRENT").exists()


@pytest.mark.ray
@pytest.mark.parametrize("address", ["127.0.0.1:{port}", "ray://127.0.0.1:10001", "no-port-here"])
def test_an_address_ray_data_cannot_use_is_one_line_in_seconds(address: str, small_corpus: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed: pip install -e '.[test,ray]'")
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-c", "import sys; from service.cli import main; sys.exit(main(sys.argv[1:]))", "index", "--engine", "ray",
               "--ray-address", address.format(port=port), "--corpus-dir", str(small_corpus), "--index-dir", str(tmp_path / "index")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1, done.stderr
    assert lines[-1].startswith("cited: error: ") and "Traceback" not in done.stderr
    expected = {"127.0.0.1:{port}": "no Ray cluster answers", "ray://127.0.0.1:10001": "does not run over Ray Client", "no-port-here": "is not an address"}
    assert expected[address] in lines[-1]


def test_engine_settings_show_only_where_a_build_runs(capsys: pytest.CaptureFixture[str]) -> None:
    for command, shown in (("index", True), ("serve", True), ("query", False), ("eval", False)):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = capsys.readouterr().out
        assert ("--engine {local,ray}" in out and "--ray-address" in out) == shown, command


@pytest.mark.ray
def test_a_cluster_started_with_ray_start_builds_the_index(small_corpus: Path, tmp_path: Path, embedder: Embedder) -> None:
    """`ray start --head` (loopback, token authentication) as an operator runs it, then `cited index
    --ray-address HOST:PORT` from another process: the cluster path, on one machine."""
    pytest.importorskip("ray", reason="the ray extra is not installed: pip install -e '.[test,ray]'")
    import os
    import secrets
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    ray_cli = Path(sys.executable).with_name("ray")
    head = subprocess.Popen([str(ray_cli), "start", "--head", "--block", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                             "--disable-usage-stats"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert head.poll() is None and time.monotonic() < deadline, "ray start --head did not come up"
                time.sleep(0.5)
        command = [sys.executable, "-c", "import sys; from service.cli import main; sys.exit(main(sys.argv[1:]))", "index", "--engine", "ray",
                   "--ray-address", f"127.0.0.1:{port}", "--corpus-dir", str(small_corpus), "--index-dir", str(tmp_path / "ray")]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
        assert done.returncode == 0, done.stderr[-2000:]
    finally:
        head.terminate()  # `ray start --block` stops the processes it started
        head.wait(timeout=60)
    from index.store import read_index

    assert_same_index(read_index(tmp_path / "ray"), _build(small_corpus, tmp_path / "local", embedder))
