"""Settings from CODESUGGEST_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.locations import default_kb_dir, default_model_dir
from service.config import DEFAULT_DATABASE_URL, load_settings
from service.errors import ServiceConfigError


def test_config_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    settings = load_settings()
    assert settings.database_url == DEFAULT_DATABASE_URL == "sqlite:///var/codesuggest.sqlite3"
    assert settings.model_dir == default_model_dir()
    assert settings.kb_dir == default_kb_dir()
    assert (settings.max_text_chars, settings.batch_sync_limit, settings.job_max_notes) == (
        100_000,
        100,
        10_000,
    )
    assert settings.insecure_dev is False
    assert settings.feedback_store_text is False
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8000, 1)


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("CODESUGGEST_MAX_TEXT_CHARS", "500", "max_text_chars", 500),
        ("CODESUGGEST_INSECURE_DEV", "true", "insecure_dev", True),
        ("CODESUGGEST_FEEDBACK_STORE_TEXT", "1", "feedback_store_text", True),
        ("CODESUGGEST_LOG_LEVEL", "debug", "log_level", "DEBUG"),
        ("CODESUGGEST_MODEL_DIR", "/opt/model", "model_dir", Path("/opt/model")),
        (
            "CODESUGGEST_DATABASE_URL",
            "postgresql+psycopg://u@h/db",
            "database_url",
            "postgresql+psycopg://u@h/db",
        ),
        ("CODESUGGEST_IDEMPOTENCY_TTL_SECONDS", "60", "idempotency_ttl_seconds", 60),
    ],
)
def test_config_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    variable: str,
    value: str,
    field: str,
    expected: object,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(variable, value)
    assert getattr(load_settings(), field) == expected


def test_config_reads_a_dotenv_file_and_overrides_win(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("CODESUGGEST_PORT=9001\nCODESUGGEST_WORKERS=2\n")
    settings = load_settings(port=9100)
    assert (settings.port, settings.workers) == (9100, 2)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CODESUGGEST_PORT", "eighty"),
        ("CODESUGGEST_MAX_TEXT_CHARS", "0"),
        ("CODESUGGEST_LOG_LEVEL", "loud"),
        ("CODESUGGEST_WORKERS", "-1"),
    ],
)
def test_config_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, value: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(variable, value)
    with pytest.raises(ServiceConfigError, match=variable):
        load_settings()


def test_config_env_example_lists_every_setting_with_its_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pipeline.locations import PROJECT_ROOT
    from service.config import ENV_PREFIX, Settings

    example = (PROJECT_ROOT / ".env.example").read_text(encoding="utf-8")
    pairs = dict(line.split("=", 1) for line in example.splitlines() if line.startswith(ENV_PREFIX))
    assert set(pairs) == {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    monkeypatch.chdir(tmp_path)
    for name, value in pairs.items():
        monkeypatch.setenv(name, value)
    from_example = load_settings()
    for name, info in Settings.model_fields.items():
        default = info.get_default(call_default_factory=True)
        value = getattr(from_example, name)
        if isinstance(default, Path):  # the example's paths are relative to the project root
            value = PROJECT_ROOT / value
        assert value == default, name
