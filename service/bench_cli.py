"""The `cited bench load` command: start (or target) a real server and drive it over HTTP."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from index.errors import UsageError
from service.arguments import number_list, positive
from service.settings import Settings

DEFAULT_QUESTIONS = Path("eval/questions.jsonl")
DEFAULT_OUT = Path("reports")
DEFAULT_CRANFIELD = Path("eval/cranfield")
START_SECONDS = 600  # a first start may build the index


_levels = number_list(1, 1024, "clients")
_sizes = number_list(1000, 10_000_000, "passages")


_KINDS = {"auto": None, "flat": "IndexFlatIP", "ivf": "IndexIVFFlat", "hnsw": "IndexHNSWFlat"}


def _kinds(text: str) -> list[str | None]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names or set(names) - set(_KINDS):
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(_KINDS)}, got {text!r}")
    return [_KINDS[name] for name in names]


def _stores(text: str) -> list[str]:
    names = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not names or set(names) - {"faiss", "milvus"}:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of faiss, milvus, got {text!r}")
    return names


def add_bench_commands(sub: Any, settings_flags: argparse.ArgumentParser) -> None:
    from eval.defaults import LEVELS

    bench = sub.add_parser("bench", help="benchmarks (kept out of the test run)")
    nested = bench.add_subparsers(dest="bench_command", required=True, metavar="BENCH_COMMAND")
    p = nested.add_parser(
        "load",
        parents=[settings_flags],
        help="drive a real server with 1, 4, 16 and 64 concurrent clients; write load.json and load.md",
        description="Start `cited serve` with the given settings on a free loopback port (or use --url), measure "
        "the bare model in this process, then ask the questions with each number of concurrent clients. "
        "The started server runs with its question cache off, so every request pays for the model.",
    )
    p.add_argument("--url", default=None, help="drive this running server instead of starting one (memory is then not measured)")
    p.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS, help=f"question set whose questions are asked (default {DEFAULT_QUESTIONS})")
    p.add_argument("--levels", type=_levels, default=list(LEVELS), help="concurrent clients per level (default 1,4,16,64)")
    p.add_argument("--requests", type=positive, default=200, help="requests per level (default 200; at least the level's clients)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"folder for load.json and load.md (default {DEFAULT_OUT}/)")
    p.set_defaults(handler=cmd_load)
    p = nested.add_parser(
        "scale",
        parents=[settings_flags],
        help="the vector index and BM25 at 10k, 100k and 1M synthetic passages; write scale.json and scale.md",
        description="Encode the seed passages (and Cranfield's abstracts and queries) once, then for each size, in a fresh "
        "process: build the vector index chosen by --exact-up-to from synthetic vectors around those embeddings, and a BM25 "
        "index of passages made of seed sentences; report build time, peak RSS, size on disk, search p50/p99 per question "
        "(without encoding it) and recall@10 against exact search.",
    )
    p.add_argument("--sizes", type=_sizes, default=[10_000, 100_000, 1_000_000], help="passages per size (default 10000,100000,1000000)")
    p.add_argument("--queries", type=positive, default=200, help="questions searched per size, one at a time (default 200)")
    p.add_argument("--index", type=_kinds, default=[None], help="vector index per size: auto (by --exact-up-to), flat, ivf, hnsw, "
                   "or several comma-separated to compare them side by side (default auto)")
    p.add_argument("--anchors", choices=("seeds+cranfield", "seeds"), default="seeds+cranfield",
                   help="real text whose embeddings the synthetic vectors are drawn around (default seeds+cranfield)")
    p.add_argument("--cranfield", type=Path, default=DEFAULT_CRANFIELD, help=f"Cranfield collection folder (default {DEFAULT_CRANFIELD})")
    p.add_argument("--lexical-timeout", type=positive, default=1800, help="seconds one BM25 size may take before it is reported as not finished (default 1800)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"folder for scale.json and scale.md (default {DEFAULT_OUT}/)")
    p.set_defaults(handler=cmd_scale)

    w = nested.add_parser(
        "swap",
        parents=[settings_flags],
        help="publish new builds while concurrent clients ask; count failed requests and the delay to the switch",
        description="Copy the corpus into a scratch folder, build it, start `cited serve` on it, then publish a new "
        "build (one document added) every few seconds while the clients ask the question set. Write swap.json and swap.md.",
    )
    w.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS, help=f"question set whose questions are asked (default {DEFAULT_QUESTIONS})")
    w.add_argument("--clients", type=positive, default=16, help="concurrent clients (default 16)")
    w.add_argument("--rounds", type=positive, default=3, help="builds published (default 3)")
    w.add_argument("--work", type=Path, default=Path(".cited/bench-swap"), help="scratch folder, emptied first (default .cited/bench-swap)")
    w.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"folder for swap.json and swap.md (default {DEFAULT_OUT}/)")
    w.set_defaults(handler=cmd_swap)

    w = nested.add_parser(
        "rolling",
        parents=[settings_flags],
        help="a rolling update: replicas of one index folder, clients asking them in turn, `cited index` publishing; count failed requests and time each replica's switch",
        description="Copy the corpus into a scratch folder and build it; start --replicas `cited serve` processes with role=replica on "
        "that one index folder, each on its own free port; while the clients ask the replicas in turn, publish --rounds new builds "
        "(one document added each time) with a separate `cited index` process. Write rolling.json and rolling.md.",
    )
    w.add_argument("--replicas", type=positive, default=2, help="replica servers (default 2)")
    w.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS, help=f"question set whose questions are asked (default {DEFAULT_QUESTIONS})")
    w.add_argument("--clients", type=positive, default=8, help="concurrent clients, each sending to the replicas in turn (default 8)")
    w.add_argument("--rounds", type=positive, default=2, help="builds published (default 2)")
    w.add_argument("--work", type=Path, default=Path(".cited/bench-rolling"), help="scratch folder, emptied first (default .cited/bench-rolling)")
    w.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"folder for rolling.json and rolling.md (default {DEFAULT_OUT}/)")
    w.set_defaults(handler=cmd_rolling)

    k = nested.add_parser(
        "capacity",
        parents=[settings_flags],
        help="per-passage costs (embedding, build folder, FAISS, BM25, Milvus Lite) and their projection to 10M and 100M passages; write capacity.json and capacity.md",
        description="Build a real index of the first --docs documents of a BEIR collection and measure its bytes per passage and the "
        "memory it takes loaded; time the model on one core over its passages and sentences; then at each --sizes, FAISS (exact "
        "and IVF), BM25 and, if pymilvus and milvus-lite are installed, one Milvus Lite collection with the same fields and a BM25 "
        "function. The projection to 10M and 100M passages is computed from those numbers (docs/capacity.md).",
    )
    k.add_argument("--collection", type=Path, default=DEFAULT_CRANFIELD, help=f"BEIR collection whose documents are built (default {DEFAULT_CRANFIELD})")
    k.add_argument("--docs", type=positive, default=300, help="documents of it to build (default 300)")
    k.add_argument("--sizes", type=_sizes, default=[10_000, 100_000], help="synthetic passages per measured size (default 10000,100000)")
    k.add_argument("--queries", type=positive, default=100, help="questions searched per size and backend (default 100)")
    k.add_argument("--milvus", action=argparse.BooleanOptionalAction, default=True, help="measure Milvus Lite too (default on, if installed)")
    k.add_argument("--work", type=Path, default=Path(".cited/bench-capacity"), help="scratch folder, emptied first (default .cited/bench-capacity)")
    k.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"folder for capacity.json and capacity.md (default {DEFAULT_OUT}/)")
    k.set_defaults(handler=cmd_capacity)

    r = nested.add_parser(
        "rebuild",
        parents=[settings_flags],
        help="a full build beside one changed, added and deleted document, and memory across swaps; write rebuild.json and rebuild.md",
        description="Copy the corpus (corpus_dir, or a BEIR collection's documents) into a scratch folder, build it "
        "from scratch, then time what `cited index` does after one document is changed, added or deleted, and "
        "measure RSS while the index is swapped for newly published builds. The original corpus is never touched.",
    )
    r.add_argument("--collection", type=Path, metavar="FOLDER", help="use a BEIR collection's documents (e.g. eval/cranfield) instead of corpus_dir")
    r.add_argument("--rounds", type=positive, default=3, help="times each step is repeated (default 3; the median is reported)")
    r.add_argument("--work", type=Path, default=Path(".cited/bench-rebuild"), help="scratch folder, emptied first (default .cited/bench-rebuild)")
    r.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"folder for rebuild.json and rebuild.md (default {DEFAULT_OUT}/)")
    r.set_defaults(handler=cmd_rebuild)

    s = nested.add_parser(
        "store",
        parents=[settings_flags],
        help="the seed questions through each store (FAISS, Milvus) side by side: query p50/p95 and bytes per passage; write store.json and store.md",
        description="Build corpus_dir once into a scratch folder (with store=milvus when Milvus is compared: the build folder and "
        "its collection), then ask the question set through each store in turn, question by question, and measure the "
        "whole retrieval, the retrieval with the question vector given, and each store's bytes on disk per passage.",
    )
    s.add_argument("--stores", type=_stores, default=["faiss", "milvus"], help="stores compared, comma-separated (default faiss,milvus)")
    s.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS, help=f"question set whose questions are asked (default {DEFAULT_QUESTIONS})")
    s.add_argument("--rounds", type=positive, default=3, help="times each question is asked per store (default 3)")
    s.add_argument("--work", type=Path, default=Path(".cited/bench-store"), help="scratch folder, emptied first (default .cited/bench-store)")
    s.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"folder for store.json and store.md (default {DEFAULT_OUT}/)")
    s.set_defaults(handler=cmd_store)

    e = nested.add_parser(
        "engines",
        parents=[settings_flags],
        help="the local and the Ray build of one corpus side by side (passages/s, core-seconds per 1k passages); write engines.json and engines.md",
        description="Chunk the corpus (corpus_dir, or a BEIR collection's documents) once, then alternate the engines round by "
        "round: the embedding step alone (Ray already running), and the whole build into an empty scratch folder (the Ray "
        "build starts and stops its own local Ray, as `cited index --engine ray` does). Needs the ray extra.",
    )
    e.add_argument("--collection", type=Path, metavar="FOLDER", help="use a BEIR collection's documents (e.g. eval/cranfield) instead of corpus_dir")
    e.add_argument("--rounds", type=positive, default=3, help="rounds per engine (default 3; the median is reported)")
    e.add_argument("--engines", type=_engines, default=["local", "ray"], help="comma-separated engines to run (default local,ray)")
    e.add_argument("--no-builds", dest="builds", action="store_false", help="time the embedding step only (a large corpus: a whole build embeds it all again)")
    e.add_argument("--work", type=Path, default=Path(".cited/bench-engines"), help="scratch folder (default .cited/bench-engines)")
    e.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"folder for engines.json and engines.md (default {DEFAULT_OUT}/)")
    e.set_defaults(handler=cmd_engines)

    c = nested.add_parser(
        "cli",
        help="how long `cited --help`, `--version` and each command's help take as fresh processes; write cli.json and cli.md",
    )
    c.add_argument("--rounds", type=positive, default=5, help="fresh processes per command (default 5; the median is reported)")
    c.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"folder for cli.json and cli.md (default {DEFAULT_OUT}/)")
    c.set_defaults(handler=cmd_cli)


def _engines(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names or set(names) - {"local", "ray"}:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of local, ray; got {text!r}")
    return list(dict.fromkeys(names))


def cmd_engines(args: argparse.Namespace, settings: Settings, load: Any) -> int:
    import dataclasses

    from eval.engine_bench import markdown, run_engines, write
    from index import Embedder

    config = settings.index_config()
    if args.collection is not None:
        from eval.beir import load_beir
        from eval.beir_index import materialise

        corpus_dir = args.work / "corpus"
        materialise(load_beir(args.collection).docs.values(), corpus_dir)
        config = dataclasses.replace(config, corpus_dir=corpus_dir)
    report = run_engines(config, Embedder(settings.model), args.work, rounds=args.rounds, engines=args.engines, builds=args.builds,
                         progress=lambda line: print(line, file=sys.stderr))
    try:
        json_path, md_path = write(report, args.out)
    except OSError as exc:
        raise UsageError(f"cannot write the engines report to {args.out}: {exc}") from None
    print(markdown(report), end="")
    print(f"wrote {json_path} and {md_path}")
    return 0


def cmd_cli(args: argparse.Namespace, settings: Settings, load: Any) -> int:
    from eval.cli_bench import markdown, run_cli_bench
    from eval.tables import write_report

    report = run_cli_bench(args.rounds)
    text = markdown(report)
    print(text, end="")
    json_path, md_path = write_report(args.out, "cli", report, text)
    print(f"wrote {json_path} and {md_path}")
    return 0


def _questions(path: Path, corpus_dir: Path) -> list[str]:
    """The distinct questions of a question set, asked by the load and swap benchmarks."""
    from eval.questions import QuestionSetError, load_questions

    try:
        return list(dict.fromkeys(q.question for q in load_questions(path, corpus_dir)))
    except QuestionSetError as exc:
        raise UsageError(f"question set: {exc}") from None


def cmd_store(args: argparse.Namespace, settings: Settings, load: Any) -> int:
    import shutil

    from eval.store_bench import markdown, run_store_bench
    from eval.tables import write_report
    from index import Embedder, Retriever, build_index
    from index.config import StoreConfig
    from index.store import read_index

    questions = _questions(args.questions, settings.corpus_dir)
    shutil.rmtree(args.work, ignore_errors=True)
    kind = "milvus" if "milvus" in args.stores else "faiss"
    scratch = settings.model_copy(update={"index_dir": args.work / "index", "store": kind})
    config = scratch.index_config()
    embedder = Embedder(settings.model)
    build_index(config, embedder)  # one build: the folder (FAISS, bm25s) and, for milvus, its collection
    ranking = settings.ranking_config()
    retrievers = {
        name: Retriever(embedder, read_index(config.index_dir, load_vectors=name == "faiss"), ranking,
                        config.store if name == "milvus" else StoreConfig())
        for name in args.stores
    }
    report = run_store_bench(retrievers, questions, rounds=args.rounds)
    text = markdown(report)
    print(text, end="")
    json_path, md_path = write_report(args.out, "store", report, text)
    print(f"wrote {json_path} and {md_path}")
    return 0


def cmd_swap(args: argparse.Namespace, settings: Settings, load: Any) -> int:
    import shutil

    from eval.swap_bench import markdown, run_swap, write
    from index import Embedder, build_index
    from index.store import POINTER

    questions = _questions(args.questions, settings.corpus_dir)
    shutil.rmtree(args.work, ignore_errors=True)
    shutil.copytree(settings.corpus_dir, args.work / "corpus")
    scratch = settings.model_copy(update={"corpus_dir": args.work / "corpus", "index_dir": args.work / "index", "cache_size": 0,
                                          "host": "127.0.0.1", "port": _free_port(), "log_level": "warning"})
    embedder = Embedder(settings.model)
    config = scratch.index_config()
    build_index(config, embedder)

    def publish(n: int) -> float:
        (config.corpus_dir / f"published-{n}.txt").write_text(f"Publish {n}\n\nRound {n} of the swap benchmark added this file.\n", encoding="utf-8")
        build_index(config, embedder)
        return (config.index_dir / POINTER).stat().st_mtime  # when CURRENT was written, just before it was renamed into place

    with _server(scratch) as (url, _):
        report = run_swap(url, questions, publish, clients=args.clients, rounds=args.rounds)
    report["reload_interval_s"] = scratch.reload_interval_s
    json_path, md_path = write(report, args.out)
    print(markdown(report))
    print(f"wrote {json_path} and {md_path}")
    return 0


def cmd_rolling(args: argparse.Namespace, settings: Settings, load: Any) -> int:
    import shutil

    from eval.rolling import markdown, run_rolling, write

    questions = _questions(args.questions, settings.corpus_dir)
    shutil.rmtree(args.work, ignore_errors=True)
    shutil.copytree(settings.corpus_dir, args.work / "corpus")
    scratch = settings.model_copy(update={"corpus_dir": args.work / "corpus", "index_dir": args.work / "index", "cache_size": 0,
                                          "host": "127.0.0.1", "log_level": "warning", "watch": False})
    cited_index(scratch)

    def publish(n: int) -> tuple[str, float]:
        (scratch.corpus_dir / f"published-{n}.txt").write_text(f"Publish {n}\n\nRound {n} of the rolling update benchmark added this file.\n", encoding="utf-8")
        return cited_index(scratch)

    absent = args.work / "replicas-read-no-corpus"  # a replica serves what the writer published: it never looks at a corpus
    with replica_servers(scratch.model_copy(update={"corpus_dir": absent}), args.replicas) as urls:
        report = run_rolling(urls, questions, publish, clients=args.clients, rounds=args.rounds)
    report["reload_interval_s"] = scratch.reload_interval_s
    try:
        json_path, md_path = write(report, args.out)
    except OSError as exc:
        raise UsageError(f"cannot write the rolling report to {args.out}: {exc}") from None
    print(markdown(report))
    print(f"wrote {json_path} and {md_path}")
    return 0


@contextmanager
def replica_servers(settings: Settings, count: int) -> Iterator[list[str]]:
    """``count`` `cited serve` processes with role=replica on ``settings``' index folder, each on a free port; yields their URLs."""
    with _servers([settings.model_copy(update={"port": _free_port(), "role": "replica"}) for _ in range(count)]) as started:
        yield [url for url, _ in started]


def cited_index(settings: Settings) -> tuple[str, float]:
    """Run `cited index` in its own process, the one writer beside the replicas; returns the build CURRENT
    names afterwards and when CURRENT was written (``time.time()`` scale)."""
    from index.store import POINTER, pointed

    env = {**os.environ, **settings.environment()}
    done = subprocess.run([sys.executable, "-c", "import sys; from service.cli import main; sys.exit(main(['index']))"],
                          env=env, capture_output=True, text=True, timeout=START_SECONDS)
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()
        raise UsageError(f"cited index failed: {last[-1] if last else 'exit ' + str(done.returncode)}")
    build = pointed(settings.index_dir)
    if build is None:
        raise UsageError(f"cited index published nothing at {settings.index_dir}")
    return build, (settings.index_dir / POINTER).stat().st_mtime


def cmd_capacity(args: argparse.Namespace, settings: Settings, load: Any) -> int:
    import itertools
    import shutil

    import torch

    from eval.beir import load_beir
    from eval.beir_index import materialise
    from eval.capacity import markdown, measure_build, measure_embedding, measure_loaded, run_capacity, write
    from index import Embedder, build_index
    from index.chunk import embedding_input
    from index.highlight import sentence_spans

    collection = load_beir(args.collection)
    shutil.rmtree(args.work, ignore_errors=True)
    materialise(itertools.islice(collection.docs.values(), args.docs), args.work / "corpus")
    config = settings.model_copy(update={"corpus_dir": args.work / "corpus", "index_dir": args.work / "index"}).index_config()
    embedder = Embedder(settings.model)
    print(f"building {args.docs} documents of {args.collection}", file=sys.stderr)
    stored = build_index(config, embedder)
    passages = stored.passages
    build = measure_build(stored.path, len(passages), measure_loaded(config.index_dir, settings.model))
    texts = [embedding_input(p.title, p.heading, p.text, config.chunk.embed_context) for p in passages]
    sentences = [s.text for s in sentence_spans(passages)[0]]
    apart = stored.manifest.get("sentence_vectors", {}).get("encoded_apart", len(sentences))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        print(f"timing the model on one core: {min(len(texts), 200)} passages, {min(len(sentences), 400)} sentences", file=sys.stderr)
        embedding = measure_embedding(lambda batch: embedder.encode(batch, batch_size=settings.batch_size), texts[:200], sentences[:400],
                                      sentences_per_passage=apart / len(passages))
    finally:
        torch.set_num_threads(threads)
    anchors = stored.vector_index.reconstruct_n(0, stored.vector_index.ntotal)
    questions = list(collection.queries.values())
    report = run_capacity(embedding, build, anchors, sentences, questions, args.sizes, args.queries, args.work / "sizes",
                          milvus=args.milvus, progress=lambda line: print(line, file=sys.stderr))
    report["measured"]["collection"] = {"path": str(args.collection), "docs": args.docs, "passages": len(passages)}
    try:
        json_path, md_path = write(report, args.out)
    except OSError as exc:
        raise UsageError(f"cannot write the capacity report to {args.out}: {exc}") from None
    print(markdown(report))
    print(f"wrote {json_path} and {md_path}")
    return 0


def cmd_rebuild(args: argparse.Namespace, settings: Settings, load: Any) -> int:
    from eval.rebuild import markdown, run_rebuild, write
    from index import Embedder

    corpus_dir = settings.corpus_dir
    if args.collection is not None:
        from eval.beir import load_beir
        from eval.beir_index import materialise

        corpus_dir = args.work.with_name(args.work.name + "-source")
        materialise(load_beir(args.collection).docs.values(), corpus_dir)
    report = run_rebuild(corpus_dir, args.work, settings.index_config(), Embedder(settings.model), rounds=args.rounds)
    print(markdown(report))
    json_path, md_path = write(report, args.out)
    print(f"wrote {json_path} and {md_path}")
    return 0


def cmd_load(args: argparse.Namespace, settings: Settings, load: Any) -> int:
    from eval.load import markdown, run_load, write
    from index import Embedder
    from service.lane import torch_thread_count

    questions = _questions(args.questions, settings.corpus_dir)
    if args.url:
        server_info: dict[str, Any] = {"started_by_bench": False}
        url, pid = args.url.rstrip("/"), None
        context = _nothing(url)
    else:
        served = settings.model_copy(update={"cache_size": 0, "host": "127.0.0.1", "port": _free_port(), "log_level": "warning"})
        server_info = {"started_by_bench": True, **{k: getattr(served, k) for k in
                       ("max_batch", "batch_wait_ms", "max_queue", "request_timeout_ms", "cache_size", "torch_threads")}}
        context = _server(served)
    with context as (url, pid):
        embedder = Embedder(settings.model)
        import torch

        torch.set_num_threads(torch_thread_count(settings.torch_threads))  # the lane's own count
        report = run_load(
            url, questions, embedder, levels=args.levels, requests=args.requests,
            rss_mb=(lambda: _rss_mb(pid)) if pid else (lambda: None),
            cpu_seconds=(lambda: _cpu_seconds(pid)) if pid else (lambda: None), server=server_info,
            progress=lambda level: print(f"{level.clients} clients: {level.qps} q/s, p50 {level.p50_ms} ms, "
                                         f"p99 {level.p99_ms} ms, {level.refused} refused", file=sys.stderr),
        )
    try:
        json_path, md_path = write(report, args.out)
    except OSError as exc:
        raise UsageError(f"cannot write the load report to {args.out}: {exc}") from None
    print(markdown(report))
    print(f"wrote {json_path} and {md_path}")
    return 0


def cmd_scale(args: argparse.Namespace, settings: Settings, load: Any) -> int:
    from eval.scale import anchor_texts, markdown, run_scale, write
    from index import Embedder
    from index.build import passages_for
    from index.highlight import sentence_spans
    from index.ingest import read_corpus

    cranfield = args.cranfield if args.anchors == "seeds+cranfield" else None
    if cranfield is not None and not (cranfield / "corpus.jsonl").is_file():
        raise UsageError(f"no Cranfield collection at {cranfield} (or use --anchors seeds)")
    questions = _questions(DEFAULT_QUESTIONS, settings.corpus_dir)
    embedder = Embedder(settings.model)
    config = settings.index_config()
    passages, _ = passages_for(read_corpus(config.corpus_dir, config.files), config, embedder)
    sentences = [s.text for s in sentence_spans(passages)[0]]
    texts = anchor_texts([p.text for p in passages], cranfield)
    print(f"encoding {len(texts)} anchor texts ({args.anchors})", file=sys.stderr)
    anchors = embedder.encode(texts, batch_size=settings.batch_size)
    del embedder
    report = run_scale(
        anchors, sentences, questions, sizes=args.sizes, queries=args.queries, exact_up_to=settings.exact_up_to,
        kinds=args.index, lexical_timeout=args.lexical_timeout, anchors_from=args.anchors,
        progress=lambda line: print(line, file=sys.stderr),
    )
    try:
        json_path, md_path = write(report, args.out)
    except OSError as exc:
        raise UsageError(f"cannot write the scale report to {args.out}: {exc}") from None
    print(markdown(report))
    print(f"wrote {json_path} and {md_path}")
    return 0


@contextmanager
def _nothing(url: str) -> Iterator[tuple[str, int | None]]:
    import httpx

    try:
        httpx.get(url + "/health", timeout=10).raise_for_status()
    except httpx.HTTPError as exc:
        raise UsageError(f"no cited server answers at {url}/health ({exc.__class__.__name__})") from None
    yield url, None


@contextmanager
def _server(settings: Settings) -> Iterator[tuple[str, int | None]]:
    """`cited serve` in a child process, configured through the environment like any deployment."""
    with _servers([settings]) as started:
        yield started[0]


@contextmanager
def _servers(many: list[Settings]) -> Iterator[list[tuple[str, int | None]]]:
    """Several `cited serve` processes, started together (each loads its model meanwhile); yields (url, pid) of each once all answer."""
    import httpx

    command = [sys.executable, "-c", "import sys; from service.cli import main; sys.exit(main(['serve']))"]
    processes: list[subprocess.Popen] = []
    try:
        for settings in many:
            env = {**os.environ, **settings.environment()}
            processes.append(subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        urls = [f"http://{settings.host}:{settings.port}" for settings in many]
        deadline = time.monotonic() + START_SECONDS
        for process, url in zip(processes, urls, strict=True):
            while True:
                if process.poll() is not None:
                    last = (process.stderr.read() if process.stderr else "").strip().splitlines()
                    raise UsageError(f"the server did not start: {last[-1] if last else 'exit ' + str(process.returncode)}")
                try:
                    if httpx.get(url + "/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise UsageError(f"the server did not answer {url}/health within {START_SECONDS} s")
                time.sleep(0.25)
        yield [(url, process.pid) for url, process in zip(urls, processes, strict=True)]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process, all its threads, from /proc (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None
