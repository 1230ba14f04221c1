"""The manifest: what an index was built from, so staleness and corruption can be told apart."""

from __future__ import annotations

import ast
import hashlib
import platform
from dataclasses import asdict
from datetime import UTC, datetime
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from index.chunk import ChunkSpec
from index.embed import ModelInfo
from index.formats import extractor_versions
from index.tokens import COUNT_ENCODING

FORMAT_VERSION = 6  # 2: lexical index, duplicate pairs and sentence table; 3: no aliases component;
# 4: sentence vectors encoded or pooled from their passage, which passage (sentences/origins.npy);
# 5: every document's text (texts/), served by GET /documents/{doc_id}/text;
# 6: Markdown, HTML and PDF documents: each document's format, which text its offsets index (the
# file or the extracted text), the file's encoding and a PDF's page starts; the extractors' versions


def package_version() -> str:
    try:
        return metadata.version("cited")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def pipeline_modules(package: Path, root: str = "build") -> list[str]:
    """The package's modules ``root`` imports, directly or not: derived, so a new stage is never missed."""
    seen: set[str] = set()
    todo = [root]
    while todo:
        name = todo.pop()
        path = package / f"{name}.py"
        if name in seen or not path.is_file():
            continue
        seen.add(name)
        for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.module == package.name:  # from index import rules
                todo += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom | ast.Import):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                todo += [n.split(".")[1] for n in names if n.startswith(f"{package.name}.")]
    return sorted(seen)


@cache
def pipeline_fingerprint() -> str:
    """Hash of every module the build runs: editing any of them rebuilds the index."""
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for name in pipeline_modules(here):
        digest.update(name.encode())
        digest.update((here / f"{name}.py").read_bytes())
    return "sha256:" + digest.hexdigest()


def corpus_fingerprint(files: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for source in sorted(files):
        digest.update(f"{source}\0{files[source]}\n".encode())
    return "sha256:" + digest.hexdigest()


def expected_inputs(model: ModelInfo, chunk: ChunkSpec, corpus_files: dict[str, str], exact_up_to: int) -> dict[str, Any]:
    """The part of a manifest that must match the current configuration for the index to be fresh."""
    return {
        "format_version": FORMAT_VERSION,
        "exact_up_to": exact_up_to,
        "model": asdict(model),
        "chunking": {**asdict(chunk), "count_encoding": COUNT_ENCODING},
        "pipeline": pipeline_fingerprint(),
        "extractors": dict(extractor_versions()),
        "corpus": {"sha256": corpus_fingerprint(corpus_files), "files": dict(sorted(corpus_files.items()))},
    }


def new_manifest(inputs: dict[str, Any], **built: Any) -> dict[str, Any]:
    return {
        **inputs,
        "package_version": package_version(),
        "python": platform.python_version(),
        "built_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        **built,
    }


def stale_reasons(manifest: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Why an index no longer matches its inputs, one readable reason per difference; [] if fresh."""
    reasons: list[str] = []
    if manifest.get("format_version") != expected["format_version"]:
        reasons.append(f"index format {manifest.get('format_version')} → {expected['format_version']}")
        return reasons
    old_model, new_model = manifest.get("model", {}), expected["model"]
    if old_model.get("fingerprint") != new_model["fingerprint"]:
        reasons.append(f"model changed ({old_model.get('name')} → {new_model['name']}, weights differ)")
    for key, value in expected["chunking"].items():
        if manifest.get("chunking", {}).get(key) != value:
            reasons.append(f"{key} {manifest.get('chunking', {}).get(key)} → {value}")
    if manifest.get("exact_up_to") != expected["exact_up_to"]:
        reasons.append(f"exact_up_to {manifest.get('exact_up_to')} → {expected['exact_up_to']}")
    if manifest.get("pipeline") != expected["pipeline"]:
        reasons.append("cleaning/chunking code changed")
    for name, version in expected["extractors"].items():
        if manifest.get("extractors", {}).get(name) != version:
            reasons.append(f"{name} {manifest.get('extractors', {}).get(name)} → {version}")
    old_files = manifest.get("corpus", {}).get("files", {})
    new_files = expected["corpus"]["files"]
    added = sorted(set(new_files) - set(old_files))
    removed = sorted(set(old_files) - set(new_files))
    changed = sorted(s for s in set(new_files) & set(old_files) if new_files[s] != old_files[s])
    for label, names in (("added", added), ("removed", removed), ("changed", changed)):
        if names:
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            reasons.append(f"corpus files {label}: {shown}")
    return reasons
