"""Settings: environment variables and flags land in one object, and the README documents all of it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.settings import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_environment_variables_override_defaults(monkeypatch) -> None:
    monkeypatch.setenv("CITED_PORT", "9001")
    monkeypatch.setenv("CITED_CHUNK_TOKENS", "200")
    settings = Settings()
    assert settings.port == 9001 and settings.index_config().chunk.chunk_tokens == 200


def test_invalid_values_name_the_setting(monkeypatch) -> None:
    monkeypatch.setenv("CITED_PORT", "70000")
    with pytest.raises(ValidationError, match="port"):
        Settings()


def test_overlap_must_be_smaller_than_chunk() -> None:
    with pytest.raises(ValidationError, match="overlap_tokens"):
        Settings(chunk_tokens=64, overlap_tokens=64)


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_readme_documents_every_setting_with_its_default(name: str) -> None:
    field = Settings.model_fields[name]
    row = f"| `{name}` | `CITED_{name.upper()}` | `{field.default}` | {field.description} |"
    assert row in README, f"README settings table is out of date for {name}"
