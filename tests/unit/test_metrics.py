import pytest

import metrics
from tests.support.observed import value


def page() -> str:
    return metrics.render().decode()


def test_modbus_polls_count_by_outcome_and_an_unknown_outcome_counts_as_other():
    before = page()
    for outcome in ("ok", "partial", "failed", "meter 17 exploded"):
        metrics.modbus_poll_finished(outcome)
    metrics.modbus_round_finished(1.5)
    after = page()
    for outcome in ("ok", "partial", "failed", "other"):
        assert (
            value(after, "joi_modbus_polls_total", outcome=outcome)
            == value(before, "joi_modbus_polls_total", outcome=outcome) + 1
        )
    assert value(after, "joi_modbus_round_seconds_count") == value(before, "joi_modbus_round_seconds_count") + 1
    assert (
        value(after, "joi_modbus_round_seconds_bucket", le="2.5")
        == value(before, "joi_modbus_round_seconds_bucket", le="2.5") + 1
    )


def test_mailing_messages_count_by_status_with_their_send_latency():
    before = page()
    metrics.mailing_message_finished("sent", 0.2)
    metrics.mailing_message_finished("failed")
    metrics.mailing_message_finished("expired", count=3)
    after = page()
    assert (
        value(after, "joi_mailing_messages_total", status="expired")
        == value(before, "joi_mailing_messages_total", status="expired") + 3
    )
    assert (
        value(after, "joi_mailing_messages_total", status="sent")
        == value(before, "joi_mailing_messages_total", status="sent") + 1
    )
    assert (
        value(after, "joi_mailing_messages_total", status="failed")
        == value(before, "joi_mailing_messages_total", status="failed") + 1
    )
    assert value(after, "joi_mailing_send_seconds_count") == value(before, "joi_mailing_send_seconds_count") + 1


def test_the_queue_depth_is_read_from_its_callback_when_scraped_and_a_failing_one_is_left_out():
    depth = {"value": 3}
    metrics.register_queue_depth(lambda: depth["value"], queue="test-mailings")
    assert value(page(), "joi_task_queue_depth", queue="test-mailings") == 3
    depth["value"] = 11
    assert value(page(), "joi_task_queue_depth", queue="test-mailings") == 11

    def broken():
        raise ConnectionError("redis is away")

    metrics.register_queue_depth(broken, queue="test-mailings")
    assert "test-mailings" not in page()
    metrics._queue_depths.pop("test-mailings")


def test_the_build_is_described_by_its_info_series():
    build = [line for line in page().splitlines() if line.startswith("joi_build_info{")]
    assert len(build) == 1 and 'version="0.1.0"' in build[0] and build[0].endswith(" 1.0")


def test_preparing_the_multiprocess_directory_empties_it_and_sets_the_variable(tmp_path, monkeypatch):
    # setenv first, so that the variable prepare_multiprocess_dir sets is removed after the test
    monkeypatch.setenv(metrics.MULTIPROC_ENV, "")
    monkeypatch.delenv(metrics.MULTIPROC_ENV)
    (tmp_path / "counter_123.db").write_bytes(b"old run")
    (tmp_path / "keep.txt").write_text("not ours")
    prepared = metrics.prepare_multiprocess_dir(tmp_path)
    assert prepared == str(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["keep.txt"]
    import os

    assert os.environ[metrics.MULTIPROC_ENV] == str(tmp_path)


def test_a_fresh_multiprocess_directory_is_made_when_none_is_given(monkeypatch):
    # setenv first, so that the variable prepare_multiprocess_dir sets is removed after the test
    monkeypatch.setenv(metrics.MULTIPROC_ENV, "")
    monkeypatch.delenv(metrics.MULTIPROC_ENV)
    prepared = metrics.prepare_multiprocess_dir()
    try:
        import os

        assert os.path.isdir(prepared) and not os.listdir(prepared)
    finally:
        metrics.remove_multiprocess_dir(prepared)


@pytest.mark.parametrize("state", ["in_use", "idle"])
def test_the_pool_gauges_follow_the_pool(state):
    class Pool:
        _in_use = {1: None, 2: None}
        _connections = [object()]
        _max_connections = 32

    metrics.sample_pool(Pool())
    expected = {"in_use": 2, "idle": 1}[state]
    assert value(metrics.generate_latest(metrics.REGISTRY).decode(), "joi_db_pool_connections", state=state) == expected
