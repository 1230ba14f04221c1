"""The `cited` command: index, serve, query and eval, all driven by the one Settings object.

Problems the user can fix are :class:`index.CitedError` and print as one line with exit status 1;
anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args, get_origin

from pydantic import ValidationError

from index.errors import CitedError, UsageError
from service.arguments import whole_number
from service.bench_cli import add_bench_commands
from service.eval_cli import Loader, add_eval_commands
from service.settings import ALL_SETTINGS, ASKING_SETTINGS, BUILDING_SETTINGS, LLM_SETTINGS, Settings, load_settings

if TYPE_CHECKING:
    from index import Retriever
    from service.schemas import QueryRequest, QueryResponse

log = logging.getLogger("cited")


def _settings_flags(names: Sequence[str]) -> argparse.ArgumentParser:
    """One flag per setting a command reads, generated from Settings so flags, env vars and the
    README never drift apart; the others stay reachable as CITED_* variables."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("settings (also CITED_<NAME> environment variables, or NAME = value in cited.toml)")
    group.add_argument("--config", type=Path, default=None, metavar="FILE",
                       help="TOML file of settings (default: cited.toml in this folder, if present; or CITED_CONFIG). Paths in it are relative to it.")
    for name in names:
        field = Settings.model_fields[name]
        flag = "--" + name.replace("_", "-")
        help_text = f"{field.description} Default: {'unset' if field.default in (None, []) else field.default}."
        if field.annotation is bool:
            group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_text)
        elif get_origin(field.annotation) is Literal:
            choices = get_args(field.annotation)
            group.add_argument(flag, dest=name, default=argparse.SUPPRESS, choices=choices, metavar="{" + ",".join(choices) + "}", help=help_text)
        else:
            group.add_argument(flag, dest=name, default=argparse.SUPPRESS, metavar=name.upper(), help=help_text)
    return parent


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {name: getattr(args, name) for name in Settings.model_fields if hasattr(args, name)}
    try:
        return load_settings(overrides, getattr(args, "config", None))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise UsageError(f"invalid settings: {problems}") from None


def _configure_logging(settings: Settings) -> None:
    from service.logs import configure

    configure(settings.log_level, settings.log_format)


def cmd_index(args: argparse.Namespace, settings: Settings, load: Loader) -> int:
    from index import Embedder, build_index, open_index

    config = settings.index_config()
    if args.rollback:
        from index.lock import index_lock
        from index.store import rollback

        with index_lock(config.index_dir):
            restored = rollback(config.index_dir)
        print(f"index {restored}: serving the previous build again (running servers switch within reload_interval_s)")
        return 0
    embedder = Embedder(config.model)
    started = time.perf_counter()
    if args.force:
        stored = build_index(config, embedder, progress=True)
    else:
        stored = open_index(config, embedder, rebuild=True, progress=True)
    manifest = stored.manifest
    print(
        f"index {stored.path}: {len(manifest['documents'])} documents, {len(stored.passages)} passages, "
        f"{_skipped_summary(manifest.get('skipped') or [])}built {manifest['built_at']} ({time.perf_counter() - started:.1f}s)"
    )
    return 0


def _skipped_summary(skipped: list[dict]) -> str:
    """'3 files skipped (2 empty; listed in the manifest and GET /health), ' or nothing."""
    if not skipped:
        return ""
    empty = sum(1 for s in skipped if s.get("reason") == "is empty")
    kinds = f"{empty} empty; " if empty else ""
    return f"{len(skipped)} file{'s' if len(skipped) != 1 else ''} skipped ({kinds}listed in the manifest and GET /health), "


def cmd_serve(args: argparse.Namespace, settings: Settings, load: Loader) -> int:
    from service.app import create_app
    from service.http_server import serve

    # Load (and if needed build) before binding the port, so a corrupt index stops the
    # server with a one-line message instead of a traceback from inside the lifespan.
    retriever = load(settings, progress=True, serving=True)  # a failed build leaves the published one serving
    app = create_app(settings, retriever)
    serve(app, settings)
    return 0


def cmd_query(args: argparse.Namespace, settings: Settings, load: Loader) -> int:
    from service.render import render
    from service.schemas import QueryRequest

    try:
        request = QueryRequest(question=args.question, top_k=args.top_k, token_budget=args.token_budget)
    except ValidationError as exc:
        from service.errors import describe_error

        raise UsageError("; ".join(describe_error(e) for e in exc.errors())) from None
    if args.url:
        response = _ask_server(args.url, request, settings)
    else:
        from service.query import run_query

        response = run_query(load(settings), request)
    if args.json:
        print(response.model_dump_json(indent=2))
    else:
        print(render(response, color=sys.stdout.isatty()), end="")
    return 0


def _ask_server(url: str, request: QueryRequest, settings: Settings) -> QueryResponse:
    """The same question through a running server's API (with the api_key setting as its bearer key)."""
    import httpx

    from service.schemas import QueryResponse

    headers = {"Authorization": f"Bearer {settings.api_key.get_secret_value()}"} if settings.api_key else {}
    try:
        answer = httpx.post(url.rstrip("/") + "/query", json=request.model_dump(exclude_none=True), headers=headers, timeout=60)
    except httpx.HTTPError as exc:
        raise UsageError(f"no cited server answers at {url} ({exc.__class__.__name__})") from None
    if answer.status_code != 200:
        try:
            message = answer.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = answer.text[:200]
        raise CitedError(f"the server at {url} answered {answer.status_code}: {message}")
    return QueryResponse.model_validate(answer.json())


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cited")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cited", description="Retrieval with character-exact citations.")
    parser.add_argument("--version", action="version", version=f"cited {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("index", parents=[_settings_flags(BUILDING_SETTINGS)], help="build the index, or rebuild it if stale")
    p.add_argument("--rebuild", dest="force", action="store_true", help="rebuild even if the index is fresh (also repairs a corrupt one)")
    p.add_argument("--rollback", action="store_true", help="publish the previous build again instead of building")
    p.set_defaults(handler=cmd_index)

    p = sub.add_parser("serve", parents=[_settings_flags(ALL_SETTINGS)], help="serve the HTTP API (building the index first if needed)")
    p.set_defaults(handler=cmd_serve)

    p = sub.add_parser("query", parents=[_settings_flags((*ASKING_SETTINGS, "api_key"))], help="ask one question in-process (or a server with --url), as the API would answer it")
    p.add_argument("question")
    p.add_argument("--top-k", type=whole_number, default=5, help="passages to return (1-50, default 5)")
    p.add_argument("--token-budget", type=whole_number, default=None, help="cl100k tokens the passages may add up to")
    p.add_argument("--json", action="store_true", help="print the API's JSON response")
    p.add_argument("--url", help="ask the cited server at this base URL (e.g. http://127.0.0.1:8000) instead of loading the index here")
    p.set_defaults(handler=cmd_query)

    add_eval_commands(sub, _settings_flags(ASKING_SETTINGS), _settings_flags((*ASKING_SETTINGS, *LLM_SETTINGS)))
    add_bench_commands(sub, _settings_flags(ALL_SETTINGS))  # the benchmarks start servers and builds
    return parser


def load_retriever(settings: Settings, progress: bool = False, serving: bool = False) -> Retriever:
    from service.app import load_retriever as load  # imports the model libraries: only when a command needs them

    return load(settings, progress=progress, serving=serving)


def main(argv: Sequence[str] | None = None, load: Loader = load_retriever) -> int:
    """Run one command; ``load`` turns settings into a loaded retriever (tests pass one already loaded)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace, Settings, Loader], int] = args.handler
    try:
        settings = _settings(args)
        _configure_logging(settings)
        return handler(args, settings, load)
    except CitedError as exc:
        print(f"cited: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
