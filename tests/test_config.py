from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from playnext.config import Settings, load_settings
from tests.e2e import env_for, playnext


def test_defaults_need_no_file(tmp_path: Path) -> None:
    settings = Settings()
    assert settings.data_dir == Path("playnext-data") and settings.port == 8000
    assert settings.log_dir == Path("playnext-data/log")


def test_environment_beats_config_file_beats_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "custom.toml"
    config.write_text('data_dir = "/srv/playnext"\nport = 9000\nmax_batch_events = 100\n')
    monkeypatch.setenv("PLAYNEXT_CONFIG", str(config))
    monkeypatch.setenv("PLAYNEXT_PORT", "9100")
    settings = load_settings()
    assert settings.data_dir == Path("/srv/playnext")
    assert settings.port == 9100
    assert settings.max_batch_events == 100
    assert load_settings(port=9200).port == 9200


def test_playnext_toml_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / "playnext.toml").write_text("port = 8123\n")
    assert Settings().port == 8123


@pytest.mark.parametrize(
    "bad", [{"port": 0}, {"max_body_bytes": 10}, {"unknown_setting": 1}, {"segment_max_age_s": -1}]
)
def test_bad_settings_are_refused(bad: dict) -> None:
    with pytest.raises(ValidationError):
        Settings(**bad)


def test_the_cli_names_a_bad_setting(tmp_path: Path) -> None:
    env = env_for(tmp_path / "data", port="not-a-port")
    result = playnext("sql", "SELECT 1", env=env, check=False)
    assert result.returncode == 2 and "port" in result.stderr


def test_a_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    env = env_for(tmp_path / "data", config=str(tmp_path / "nope.toml"))
    result = playnext("sql", "SELECT 1", env=env, check=False)
    assert result.returncode == 2 and "nope.toml" in result.stderr
