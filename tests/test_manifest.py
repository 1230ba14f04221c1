"""The manifest's pipeline fingerprint covers every module the build runs, found by reading imports."""

from __future__ import annotations

from pathlib import Path

from index.manifest import pipeline_modules


def _package(root: Path, modules: dict[str, str]) -> Path:
    package = root / "pkg"
    package.mkdir()
    for name, source in modules.items():
        (package / f"{name}.py").write_text(source, encoding="utf-8")
    return package


def test_every_module_the_build_reaches_is_hashed_and_no_other(tmp_path: Path) -> None:
    package = _package(
        tmp_path,
        {
            "build": "from pkg.chunk import cut\nimport json\n",
            "chunk": "from pkg import rules, missing\n\ndef cut():\n    from pkg.new_stage import run\n",
            "rules": "import pkg.types\n",
            "types": "",
            "new_stage": "from pkg.chunk import cut\n",  # a cycle back is fine
            "serve": "from pkg.build import build\n",  # imports the build, is not imported by it
        },
    )
    assert pipeline_modules(package) == ["build", "chunk", "new_stage", "rules", "types"]


def test_the_real_build_covers_cleaning_chunking_and_the_components_but_not_search() -> None:
    modules = pipeline_modules(Path(__file__).parent.parent / "index")
    assert {"build", "clean", "rules", "sentences", "chunk", "tokens", "lexical", "dedup", "highlight"} <= set(modules)
    assert "search" not in modules and "response" not in modules
