import pytest

from config import Config


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://joi@db:5432/joi")
    monkeypatch.setenv("MAX_READING_GAP_SECONDS", "900")
    monkeypatch.setenv("DSMR_API_ENABLED", "yes")
    config = Config.from_env()
    assert config.database_url == "postgresql://joi@db:5432/joi"
    assert config.max_reading_gap_seconds == 900
    assert config.dsmr_api_enabled is True


def test_the_embedded_default_is_a_sqlite_file_under_var(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert Config.from_env().database_url.endswith("/var/joi.sqlite3")


@pytest.mark.parametrize(
    "overrides",
    [{"dsmr_time_zone": "Europe/Atlantis"}, {"sqlite_synchronous": "SOMETIMES"}, {"max_reading_gap_seconds": 0}],
)
def test_a_setting_that_cannot_work_fails_at_start_up(overrides):
    with pytest.raises(ValueError):
        Config(**overrides)
