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


def _readme_settings() -> dict[str, tuple[str, str]]:
    """setting → (env variable, default) as the README's settings table states them."""
    rows = {}
    for line in README.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] in Settings.model_fields:
            rows[cells[0]] = (cells[1], cells[2])
    return rows


def test_readme_states_every_setting_with_its_variable_and_default() -> None:
    documented = _readme_settings()
    assert set(documented) == set(Settings.model_fields), "README settings table lists other settings than Settings"
    for name, (env, default) in documented.items():
        assert env == f"CITED_{name.upper()}", name
        # the stated default, read back as the setting would read it from the environment, is the real default
        assert Settings(**{name: default}).model_dump()[name] == Settings.model_fields[name].default, name
