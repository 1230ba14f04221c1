"""Settings: environment variables and flags land in one object, and the README documents all of it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from index import EXPERIMENTS, RankingConfig
from service.settings import SERVED_RANKING, Settings, table

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


def test_readme_settings_table_is_the_generated_one() -> None:
    assert table() in README, "README settings table is out of date: paste service.settings.table()"


def test_the_table_states_each_default_as_the_environment_would_give_it() -> None:
    rows = [line.split(" | ") for line in table().splitlines()[2:]]
    assert [r[0].strip("| `") for r in rows] == list(Settings.model_fields)
    for name, env, default, _ in ((r[0].strip("| `"), r[1].strip("`"), r[2].strip("`"), r[3]) for r in rows):
        assert env == f"CITED_{name.upper()}"
        if default == "(unset)":  # no value to give: leaving the variable out is the default
            assert Settings().model_dump()[name] in (None, []), name
            continue
        assert Settings(**{name: default}).model_dump()[name] == Settings.model_fields[name].default, name


def test_ranking_settings_are_the_library_fields_and_experiments_stay_off_the_serve_surface() -> None:
    for name in SERVED_RANKING:
        assert Settings.model_fields[name].description == RankingConfig.__pydantic_fields__[name].description
    assert not set(EXPERIMENTS) & set(Settings.model_fields)
    assert Settings(sentence_weight=0.25).ranking_config(mmr_lambda=0.5) == RankingConfig(sentence_weight=0.25, mmr_lambda=0.5)
    with pytest.raises(ValidationError, match="mmr_lambda"):
        Settings(mmr_lambda=0.5)


def test_the_environment_of_settings_gives_the_same_settings(monkeypatch) -> None:
    chosen = Settings(api_key="k3y", cors_origins=["https://a.example", "https://b.example"], chunk_tokens=96, watch=True)
    for name, value in chosen.environment().items():
        monkeypatch.setenv(name, value)
    again = Settings()
    assert again.model_dump() == chosen.model_dump() and again.api_key.get_secret_value() == "k3y"
    unset = Settings(api_key=None, cors_origins=[]).environment()
    assert "CITED_API_KEY" not in unset and unset["CITED_CORS_ORIGINS"] == ""  # an empty variable is ignored: the default


def test_a_config_file_sets_settings_below_env_and_flags_with_paths_relative_to_it(tmp_path, monkeypatch) -> None:
    from service.settings import load_settings

    folder = tmp_path / "deploy"
    folder.mkdir()
    (folder / "cited.toml").write_text('corpus_dir = "docs"\nindex_dir = "/srv/index"\nchunk_tokens = 96\nport = 9001\n', encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("CITED_PORT", raising=False)
    chosen = load_settings({}, folder / "cited.toml")
    assert chosen.corpus_dir == folder / "docs" and str(chosen.index_dir) == "/srv/index"
    assert chosen.chunk_tokens == 96 and chosen.port == 9001
    monkeypatch.setenv("CITED_PORT", "9002")
    assert load_settings({}, folder / "cited.toml").port == 9002  # the environment beats the file
    assert load_settings({"port": 9003}, folder / "cited.toml").port == 9003  # a flag beats both
    monkeypatch.chdir(folder)
    assert load_settings({}).chunk_tokens == 96  # ./cited.toml is read when present
    assert Settings().chunk_tokens == 128  # plain Settings() never reads a file


def test_a_bad_config_file_is_one_line(tmp_path, capsys) -> None:
    from service.cli import main

    bad = tmp_path / "bad.toml"
    for text, expected in (("chunk_tokens = [", "is not valid TOML"), ("chunk_tokenz = 96\n", "chunk_tokenz: Extra inputs are not permitted")):
        bad.write_text(text, encoding="utf-8")
        assert main(["index", "--config", str(bad)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("cited: error: ") and expected in err and err.count("\n") == 1
    assert main(["index", "--config", str(tmp_path / "none.toml")]) == 1
    assert "config file" in capsys.readouterr().err
