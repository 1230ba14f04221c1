"""The `cited eval` commands: settings and arguments turned into calls of the eval library."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import logging
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from index import EXPERIMENTS, RankingConfig
from index.errors import UsageError
from service.arguments import count, positive
from service.settings import Settings

if TYPE_CHECKING:
    from index import Retriever

Loader = Callable[..., "Retriever"]  # (settings, progress=False, serving=False) -> the loaded retriever

__all__ = ["add_eval_commands", "cmd_ablation", "cmd_compare", "cmd_draft", "cmd_eval"]

log = logging.getLogger("cited.eval")

DEFAULT_QUESTIONS = Path("eval/questions.jsonl")
DEFAULT_OUT = Path("reports")
DEFAULT_CRANFIELD = Path("eval/cranfield")
DEFAULT_DRAFT = Path("questions-draft.jsonl")
DEFAULT_PARAPHRASES = Path("eval/support_paraphrases.jsonl")


def _top_k(text: str) -> int:
    from service.schemas import MAX_TOP_K

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= MAX_TOP_K:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_TOP_K}, got {value}")
    return value


def _fraction(text: str, below_one: bool = False) -> float:
    """A number in [0, 1], or in [0, 1) with ``below_one``."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (0 <= value < 1 if below_one else 0 <= value <= 1):
        bounds = "at least 0 and below 1 (1 switches MMR off)" if below_one else "between 0 and 1"
        raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
    return value


def _max_drop(text: str) -> float:
    return _fraction(text)




def _diversity_lambda(text: str) -> float:
    return _fraction(text, below_one=True)


def _experiment(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or name not in EXPERIMENTS:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE with NAME one of {', '.join(EXPERIMENTS)}, got {text!r}")
    return name, value.strip()


def _ranking(args: argparse.Namespace, settings: Settings) -> RankingConfig:
    """The served ranking with the ``--set`` experiments on top; a bad value is a one-line error."""
    try:
        return settings.ranking_config(**dict(args.experiments or ()))
    except ValidationError as exc:
        raise UsageError("--set: " + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None


def _report_settings(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """What a report records as its settings: the served ones plus every ranking experiment's value."""
    return {**settings.model_dump(mode="json"), **{n: getattr(_ranking(args, settings), n) for n in EXPERIMENTS}}


def add_eval_commands(sub: Any, settings_flags: argparse.ArgumentParser, eval_flags: argparse.ArgumentParser | None = None) -> None:
    """``eval_flags``: the settings of `cited eval` itself (``settings_flags`` plus the chat endpoint's), if they differ."""
    from eval.defaults import DEFAULT_K, DEFAULT_MMR_LAMBDA, DEFAULT_TOP_K, DRAFT_COUNT

    def with_experiments(parent: argparse.ArgumentParser) -> argparse.ArgumentParser:
        flags = argparse.ArgumentParser(add_help=False, parents=[parent])
        flags.add_argument(
            "--set", dest="experiments", type=_experiment, action="append", metavar="NAME=VALUE",
            help=f"rank with an experimental setting the service does not serve ({', '.join(EXPERIMENTS)}); repeatable",
        )
        return flags

    flags = with_experiments(settings_flags)

    p = sub.add_parser(
        "eval",
        parents=[with_experiments(eval_flags) if eval_flags is not None else flags],
        help="score retrieval on the hand-written question set (and gate against a baseline)",
        description="Ask every question of the question set, score the cited passages against the gold "
        "quotes, print the aggregate table and write report.json, report.md and its plots.",
    )
    p.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS, help=f"question set (default {DEFAULT_QUESTIONS})")
    p.add_argument("--url", default=None, help="evaluate a running server (e.g. http://127.0.0.1:8000) instead of in-process")
    p.add_argument("--top-k", type=_top_k, default=DEFAULT_TOP_K, help=f"passages asked for per question (default {DEFAULT_TOP_K})")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"folder for report.json and report.md (default {DEFAULT_OUT}/)")
    p.add_argument("--baseline", type=Path, default=None, help="baseline file to gate against: exit 1 if a gated metric drops too far")
    p.add_argument("--max-drop", type=_max_drop, default=None, help="largest allowed drop of a gated metric below the baseline (default 0.0)")
    p.add_argument("--allow-questions", type=count, default=None, metavar="N",
                   help="allow each gated metric to drop by as much as N questions can move it (N / answerable questions)")
    p.add_argument("--save-baseline", type=Path, default=None, metavar="FILE", help="write this run's gated aggregates as a baseline")
    p.add_argument("--no-plots", dest="plots", action="store_false",
                   help="leave out the hit@k / recall@k curves and per-kind bars (PNG files next to report.md)")
    p.set_defaults(handler=cmd_eval)

    nested = p.add_subparsers(dest="eval_command", required=False, metavar="EVAL_COMMAND")
    c = nested.add_parser("compare", help="compare two report.json files: aggregates and per-question ranks")
    c.add_argument("a", type=Path, metavar="A.json")
    c.add_argument("b", type=Path, metavar="B.json")
    c.set_defaults(handler=cmd_compare)

    b = nested.add_parser("beir", parents=[flags], help="evaluate on a BEIR-layout test collection")
    b.add_argument("folder", type=Path, metavar="FOLDER", help="collection folder (corpus.jsonl, queries.jsonl, qrels/)")
    b.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"folder for the reports (default {DEFAULT_OUT}/)")
    b.add_argument("--qrels", default="test.tsv", help="qrels file inside FOLDER/qrels (default test.tsv)")
    b.add_argument("--k", type=positive, default=DEFAULT_K, help=f"documents retrieved per query (default {DEFAULT_K})")
    b.set_defaults(handler=cmd_beir)

    t = nested.add_parser("bench", parents=[flags], help="query latency of each ranking configuration, side by side")
    t.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS, help=f"questions to time (default {DEFAULT_QUESTIONS})")
    t.add_argument("--collection", type=Path, metavar="FOLDER",
                   help="time a BEIR collection's queries on its own index instead (e.g. eval/cranfield; built if missing)")
    t.add_argument("--rounds", type=int, default=3, help="times each question is asked per configuration (default 3)")
    t.set_defaults(handler=cmd_bench)

    w = nested.add_parser(
        "answer-weights",
        parents=[flags],
        help="choose the answer sentence's weights on the question set, with halves and kinds held out",
        description="Ask every answerable question once, score the sentences of its top results as answers under "
        "each point of a coarse grid of weights (eval/answer_weights.py), and print the point chosen on all "
        "questions and the held-out table: weights chosen without half of the questions, or without one kind, "
        "scored on those questions.",
    )
    w.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS, help=f"question set (default {DEFAULT_QUESTIONS})")
    w.set_defaults(handler=cmd_answer_weights)

    s = nested.add_parser(
        "support-threshold",
        parents=[flags],
        help="choose the citation check's thresholds (index/support.py) on the question set",
        description="Score each gold quote (copied, and paraphrased where the paraphrase file has one) against its own "
        "passage, other questions' passages and the nearest other passages, and print the separation of the "
        "lexical and vector tests with the thresholds the rule picks (eval/support_threshold.py).",
    )
    s.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS, help=f"question set (default {DEFAULT_QUESTIONS})")
    s.add_argument("--paraphrases", type=Path, default=DEFAULT_PARAPHRASES,
                   help=f"hand-written paraphrases of gold quotes (default {DEFAULT_PARAPHRASES})")
    s.set_defaults(handler=cmd_support_threshold)

    d = nested.add_parser(
        "draft",
        parents=[settings_flags],
        help="write a question-set skeleton for the corpus: diverse passages, a gold quote each, questions left to write",
        description="Pick passages spread over the corpus's documents and topics (k-means over the index's passage "
        "vectors), take a whole sentence of each as the gold quote, and write a question file whose questions are "
        "empty, for a person to write. `cited eval` names the entries still to write. Builds the index if needed.",
    )
    d.add_argument("--out", type=Path, default=DEFAULT_DRAFT, metavar="FILE", help=f"the skeleton to write (default {DEFAULT_DRAFT})")
    d.add_argument("--count", type=positive, default=DRAFT_COUNT, metavar="N",
                   help=f"passages to quote, so questions to write (default {DRAFT_COUNT})")
    d.add_argument("--unanswerable", type=count, default=None, metavar="N",
                   help="empty unanswerable slots added at the end (default one per eight gold quotes, at least one)")
    d.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    d.set_defaults(handler=cmd_draft)

    a = nested.add_parser(
        "ablation",
        parents=[flags],
        help="the ranking ablation table: each stage on in turn, on the question set and on Cranfield",
        description="Score dense only, BM25 only, hybrid, +collapse, +diversity and the default configuration on "
        "the question set and on a BEIR collection, with one loaded index each; print a Markdown table and "
        "write ablation.json and ablation.md.",
    )
    a.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS, help=f"question set (default {DEFAULT_QUESTIONS})")
    a.add_argument("--top-k", type=_top_k, default=DEFAULT_TOP_K, help=f"passages asked for per question (default {DEFAULT_TOP_K})")
    a.add_argument("--cranfield", type=Path, default=DEFAULT_CRANFIELD, metavar="FOLDER",
                   help=f"BEIR-layout collection of the last column (default {DEFAULT_CRANFIELD})")
    a.add_argument("--no-cranfield", action="store_true",
                   help="leave out the collection column (its index takes minutes to build the first time)")
    a.add_argument("--diversity-lambda", type=_diversity_lambda, default=DEFAULT_MMR_LAMBDA, metavar="LAMBDA",
                   help=f"MMR λ of the +diversity row, 0 to below 1 (default {DEFAULT_MMR_LAMBDA}); the default row "
                   "keeps the ranking's own mmr_lambda (--set mmr_lambda=…)")
    a.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"folder for ablation.json and ablation.md (default {DEFAULT_OUT}/)")
    a.set_defaults(handler=cmd_ablation)


def cmd_answer_weights(args: argparse.Namespace, settings: Settings, load: Loader) -> int:
    from eval.answer_weights import collect, report
    from eval.questions import QuestionSetError, load_questions
    from eval.relevance import Corpus, gold_spans

    try:
        questions = load_questions(args.questions, settings.corpus_dir)
        spans = gold_spans(questions, Corpus.read(settings.corpus_dir))
    except QuestionSetError as exc:
        raise UsageError(f"question set: {exc}") from None
    retriever = load(settings, progress=True).with_ranking(_ranking(args, settings))
    print(report(collect(retriever, questions, spans)))
    return 0


def cmd_support_threshold(args: argparse.Namespace, settings: Settings, load: Loader) -> int:
    from eval.questions import QuestionSetError, load_questions
    from eval.relevance import Corpus, gold_spans
    from eval.support_threshold import collect, load_paraphrases, report

    try:
        questions = load_questions(args.questions, settings.corpus_dir)
        spans = gold_spans(questions, Corpus.read(settings.corpus_dir))
        paraphrases = load_paraphrases(args.paraphrases)
    except QuestionSetError as exc:
        raise UsageError(f"question set: {exc}") from None
    retriever = load(settings, progress=True).with_ranking(_ranking(args, settings))
    print(report(collect(retriever, questions, spans, paraphrases)))
    return 0


def cmd_draft(args: argparse.Namespace, settings: Settings, load: Loader) -> int:
    from eval.draft import draft_from_retriever, write_draft

    if args.out.exists() and not args.force:
        raise UsageError(f"{args.out} exists; it may hold questions someone wrote: pass --out NEW_FILE, or --force to overwrite it")
    if not Path(settings.corpus_dir).is_dir():
        raise UsageError(f"corpus folder {settings.corpus_dir} not found")
    draft = draft_from_retriever(load(settings, progress=True), settings.corpus_dir, args.count, args.unanswerable)
    if not draft.quotes:
        raise UsageError(f"no passage of {settings.corpus_dir} holds a whole sentence of 8 to 45 words to quote; nothing to draft")
    try:
        write_draft(args.out, draft.entries)
    except OSError as exc:
        raise UsageError(f"cannot write {args.out}: {exc}") from None
    short = f" (fewer than {args.count}: every usable sentence of its {draft.candidates} passages is used)" if draft.quotes < args.count else ""
    print(f"wrote {args.out}: {draft.quotes} gold quotes from {draft.documents} documents{short}, "
          f"and {len(draft.entries) - draft.quotes} unanswerable slots")
    flags = f"--corpus-dir {settings.corpus_dir}"
    if settings.index_dir != Settings.model_fields["index_dir"].default:
        flags += f" --index-dir {settings.index_dir}"
    print("next: write each empty \"question\" (and delete its TODO note; docs/writing-questions.md says how), then run")
    print(f"  cited eval {flags} --questions {args.out}")
    return 0


def cmd_bench(args: argparse.Namespace, settings: Settings, load: Loader) -> int:
    import json

    from eval.bench import run_bench, table
    from eval.questions import QuestionSetError, load_questions

    if args.collection is not None:
        from eval.beir import load_beir
        from eval.beir_index import prepare_index
        from index import Embedder

        collection = load_beir(args.collection)
        retriever = prepare_index(collection, settings.index_config(), Embedder(settings.model)).retriever
        questions = list(collection.queries.values())
    else:
        try:
            questions = [q.question for q in load_questions(args.questions, settings.corpus_dir)]
        except QuestionSetError as exc:
            raise UsageError(f"question set: {exc}") from None
        retriever = load(settings)
    report = run_bench(retriever.with_ranking(_ranking(args, settings)), questions, rounds=max(1, args.rounds))
    print(table(report))
    print(json.dumps(report))
    return 0


def cmd_beir(args: argparse.Namespace, settings: Settings, load: Loader) -> int:
    from eval.beir_eval import format_table, run_collection

    run = run_collection(args.folder, settings.index_config(), _ranking(args, settings), qrels_file=args.qrels, k=args.k, out=args.out)
    print(format_table(run.report))
    ix = run.report["index"]
    how = "built" if ix["rebuilt_this_run"] else "reused"
    print(f"index: {ix['passages']} passages from {ix['documents']} documents, {how} ({ix['build_seconds']} s build)")
    print(f"wrote {run.json_path} and {run.md_path}")
    return 0


def cmd_eval(args: argparse.Namespace, settings: Settings, load: Loader) -> int:
    from eval.gate import check, load_baseline, save_baseline
    from eval.questions import QuestionSetError, load_questions
    from eval.relevance import Corpus, gold_spans
    from eval.report import Report
    from eval.runner import InProcess, OverHttp, run_eval

    if (args.max_drop is not None or args.allow_questions is not None) and args.baseline is None:
        raise UsageError(f"{'--max-drop' if args.max_drop is not None else '--allow-questions'} needs --baseline FILE")
    # everything that can be refused is refused before the slow part
    baseline = load_baseline(args.baseline) if args.baseline is not None else None
    ranking = _ranking(args, settings)
    try:
        questions = load_questions(args.questions, settings.corpus_dir)
        spans = gold_spans(questions, Corpus.read(settings.corpus_dir))
    except QuestionSetError as exc:
        raise UsageError(f"question set: {exc}") from None

    generator = settings.generator_config()  # with llm_base_url, the generated answer is scored too
    if args.url:
        target: Any = OverHttp(args.url)
    else:
        from index.generate import ChatClient

        target = InProcess(load(settings, progress=True).with_ranking(ranking), ChatClient(generator) if generator else None)
    try:
        manifest = target.manifest()
        _warn_on_corpus_mismatch(manifest, settings)
        run = run_eval(questions, spans, target, args.top_k, generated=generator is not None)
    finally:
        if isinstance(target, OverHttp):
            target.close()

    report = Report(
        created_at=_now(),
        target=args.url or "in-process",
        settings=_report_settings(args, settings),
        manifest=manifest,
        questions=_question_info(args.questions, questions),
        top_k=args.top_k,
        records=run.records,
        aggregates=run.aggregates,
        timing=run.timing,
    )
    try:
        json_path, md_path = report.write(args.out, plots=args.plots)
    except OSError as exc:
        raise UsageError(f"cannot write the report to {args.out}: {exc}") from None
    print(report.table())
    print(f"wrote {json_path} and {md_path}")

    status = 0
    if baseline is not None:
        result = check(baseline, report, args.max_drop or 0.0, args.allow_questions or 0)
        print(f"gate against {args.baseline}:")
        print(result.text())
        status = 0 if result.passed else 1
    if args.save_baseline is not None:
        try:
            save_baseline(args.save_baseline, report)
        except OSError as exc:
            raise UsageError(f"cannot write the baseline {args.save_baseline}: {exc}") from None
        print(f"wrote baseline {args.save_baseline}")
    return status


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)


def _question_info(path: Path, questions: Sequence[Any]) -> dict[str, Any]:
    return {
        "path": str(path),
        "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
        "count": len(questions),
        "answerable": sum(1 for q in questions if q.answerable),
    }


def cmd_ablation(args: argparse.Namespace, settings: Settings, load: Loader) -> int:
    """Rows on one loaded seed retriever and one prepared collection index."""
    from eval.ablation import MULTI_SOURCE, Ablation, score_beir, score_seed
    from eval.beir import CollectionError, load_beir
    from eval.ladder import ablation_rows
    from eval.questions import QuestionSetError, load_questions
    from eval.relevance import Corpus, gold_spans

    started = time.perf_counter()
    rows = ablation_rows(_ranking(args, settings), args.diversity_lambda)
    try:  # every cheap check before the slow part
        questions = load_questions(args.questions, settings.corpus_dir)
        spans = gold_spans(questions, Corpus.read(settings.corpus_dir))
    except QuestionSetError as exc:
        raise UsageError(f"question set: {exc}") from None
    collection = None
    if not args.no_cranfield:
        try:
            collection = load_beir(args.cranfield)
        except CollectionError as exc:
            raise UsageError(f"cannot load collection: {exc}") from None
        if not collection.name:  # "." or a path ending in ".."
            collection = dataclasses.replace(collection, name=Path(args.cranfield).resolve().name)

    retriever = load(settings, progress=True)
    timing = {"load_seconds": _since(started)}
    seed_started = time.perf_counter()
    seed = score_seed(retriever, rows, questions, spans, args.top_k)
    timing["seed_seconds"] = _since(seed_started)
    beir = info = None
    if collection is not None:
        from eval.beir_index import prepare_index

        prepared = prepare_index(collection, settings.index_config(), retriever.embedder)  # the seed model, loaded once
        timing["beir_index_seconds"] = round(prepared.seconds, 3)
        beir_started = time.perf_counter()
        beir = score_beir(prepared, collection, rows)
        timing["beir_seconds"] = _since(beir_started)
        info = {
            "name": collection.name,
            "folder": str(args.cranfield),
            "documents": len(collection.docs),
            "queries": len(collection.queries),
            "index": prepared.summary(),
        }
    timing["total_seconds"] = _since(started)
    ablation = Ablation(
        created_at=_now(),
        settings=_report_settings(args, settings),
        rows=rows,
        questions={**_question_info(args.questions, questions), "multi_source": sum(1 for q in questions if q.kind == MULTI_SOURCE)},
        top_k=args.top_k,
        seed=seed,
        beir=beir,
        collection=info,
        timing=timing,
    )
    try:
        json_path, md_path = ablation.write(args.out)
    except OSError as exc:
        raise UsageError(f"cannot write the ablation to {args.out}: {exc}") from None
    print(ablation.table())
    print()
    print("\n".join(f"- {note}" for note in ablation.notes()))
    print(f"wrote {json_path} and {md_path}")
    return 0


def _warn_on_corpus_mismatch(manifest: dict[str, Any], settings: Settings) -> None:
    """Gold spans come from the local corpus folder; a server indexing other files scores wrongly."""
    files = (manifest.get("corpus") or {}).get("files")
    count = len(files) if isinstance(files, dict) else manifest.get("documents")
    if isinstance(count, list):
        count = len(count)
    from index.formats import format_of

    local = sum(1 for p in Path(settings.corpus_dir).rglob("*") if p.is_file() and format_of(p.name) is not None)
    if isinstance(count, int) and count != local:
        print(
            f"cited: warning: the index holds {count} documents but {settings.corpus_dir} has {local}; "
            "gold quotes are located in the local corpus folder",
            file=sys.stderr,
        )


def cmd_compare(args: argparse.Namespace, settings: Settings, load: Loader) -> int:
    from eval.report import Report, compare_reports

    a, b = Report.load(args.a), Report.load(args.b)
    print(compare_reports(a, b, str(args.a), str(args.b)))
    return 0
