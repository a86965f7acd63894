import pytest

from config import Config


def test_mailing_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("SEND_API_URL", "https://probe.fbrq.cloud/v1")
    monkeypatch.setenv("SEND_TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("SEND_CONCURRENCY", "50")
    monkeypatch.setenv("MAILING_REPORT_AT", "07:30")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/4")
    config = Config.from_env()
    assert (config.send_api_url, config.send_timeout_seconds, config.send_concurrency) == (
        "https://probe.fbrq.cloud/v1",
        2.5,
        50,
    )
    assert config.mailing_report_at == "07:30" and config.redis_url == "redis://127.0.0.1:6379/4"


def test_the_defaults_are_the_documented_ones(monkeypatch):
    for name in (
        "SEND_API_URL",
        "SEND_TIMEOUT_SECONDS",
        "SEND_RETRY_BASE_SECONDS",
        "SEND_RETRY_MAX_SECONDS",
        "SEND_CONCURRENCY",
        "MAILING_REPORT_AT",
        "SMTP_URL",
        "REDIS_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    config = Config.from_env()
    assert config.send_api_url is None and config.smtp_url is None and config.redis_url is None
    assert (config.send_timeout_seconds, config.send_retry_base_seconds, config.send_retry_max_seconds) == (10, 5, 600)
    assert (config.send_concurrency, config.mailing_report_at) == (20, "08:00")


def test_the_queue_file_sits_beside_the_sqlite_database():
    assert Config(database_url="sqlite:////srv/joi/joi.sqlite3").queue_path == "/srv/joi/huey.sqlite3"
    assert Config(database_url="postgresql://joi@db/joi").queue_path.endswith("/var/huey.sqlite3")
    assert Config(queue_sqlite_path="/tmp/q.sqlite3").queue_path == "/tmp/q.sqlite3"


@pytest.mark.parametrize(
    "overrides",
    [
        {"send_api_url": "ftp://x"},
        {"send_timeout_seconds": 0},
        {"send_concurrency": 0},
        {"send_retry_base_seconds": 10, "send_retry_max_seconds": 5},
        {"mailing_report_at": "8:00"},
        {"mailing_report_at": "24:00"},
        {"smtp_url": "http://mail"},
        {"worker_threads": 0},
    ],
)
def test_a_mailing_setting_that_cannot_work_fails_at_start_up(overrides):
    with pytest.raises(ValueError):
        Config(**overrides)
