import io
import json
import logging

import pytest
from huey import MemoryHuey

import logs


@pytest.fixture
def captured():
    """A logger whose lines go through the service's formatters into a buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("tests.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, handler, stream
    logger.removeHandler(handler)


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("Authorization: Bearer abcdef1234567890", "abcdef1234567890"),
        ("Authorization: Token dsmr-key-123", "dsmr-key-123"),
        ("authorization=Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ("X-AUTHKEY: s3cr3t-key", "s3cr3t-key"),
        ("X-API-Key: device-key-42", "device-key-42"),
        ("GET /metrics?token=scrape-me&x=1", "scrape-me"),
        ("password=hunter2", "hunter2"),
        ('{"password": "hunt\\"er2", "user": "ann"}', 'hunt\\"er2'),
        ("{'api_key': 'k-123456'}", "k-123456"),
        ("connecting to mqtt://joi:broker-pass@127.0.0.1:1883", "broker-pass"),
        ("sent with Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGciOiJIUzI1NiJ9"),
        ("DSMR_API_KEY=abc123 METRICS_TOKEN=xyz789", "abc123"),
    ],
)
def test_no_secret_survives_redaction(line, secret):
    redacted = logs.redact(line)
    assert secret not in redacted
    assert "[REDACTED]" in redacted


def test_redaction_leaves_ordinary_lines_alone():
    line = "POST /readings/store 200 1.9 ms meter=smart-meter-0 operation=controllers.readings.store"
    assert logs.redact(line) == line


@pytest.mark.parametrize("formatter", [logs.TextFormatter(), logs.JsonFormatter()])
def test_no_secret_reaches_a_log_line_in_either_format(captured, formatter):
    logger, handler, stream = captured
    handler.setFormatter(formatter)
    logger.info("headers %s", {"Authorization": "Bearer topsecret-token"}, extra={"api_key": "k-999", "meter": "m1"})
    try:
        raise ValueError("login failed for password=letmein")
    except ValueError:
        logger.exception("failed")
    text = stream.getvalue()
    for secret in ("topsecret-token", "k-999", "letmein"):
        assert secret not in text
    assert "m1" in text


def test_a_json_line_holds_time_level_logger_request_id_message_and_the_ids_it_is_about(captured):
    logger, handler, stream = captured
    handler.setFormatter(logs.JsonFormatter())
    with logs.request_id_scope("req-1"):
        logger.warning("stored %d", 3, extra={"meter": "m-7", "device": 83251076, "client": "c1"})
    (line,) = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["level"] == "WARNING" and entry["logger"] == "tests.logs" and entry["message"] == "stored 3"
    assert entry["request_id"] == "req-1"
    assert entry["meter"] == "m-7" and entry["device"] == 83251076 and entry["client"] == "c1"
    assert entry["time"].endswith("Z")


def test_a_text_line_names_the_request_and_the_ids(captured):
    logger, handler, stream = captured
    handler.setFormatter(logs.TextFormatter())
    with logs.request_id_scope("req-2"):
        logger.info("polled", extra={"host": "inverter-1", "mailing": 5})
    logger.info("outside")
    first, second = stream.getvalue().splitlines()
    assert "[req-2] polled host=inverter-1 mailing=5" in first
    assert "[-] outside" in second


@pytest.mark.parametrize("sent", ["abc-123", "a" * 128, "trace:1/2+3=4@x_y.z"])
def test_a_safe_request_id_is_kept(sent):
    assert logs.accepted_request_id(sent) == sent


@pytest.mark.parametrize("sent", [None, "", "a" * 129, "id\n", "id\r\nX-Injected: 1", "bad id", "é", "<script>"])
def test_an_unsafe_or_missing_request_id_is_replaced_by_a_new_one(sent):
    accepted = logs.accepted_request_id(sent)
    assert accepted != sent
    assert len(accepted) == 32 and accepted.isalnum()


def test_a_queued_task_runs_under_the_request_id_it_was_enqueued_with():
    huey = MemoryHuey(immediate=False)
    seen = []

    @huey.task()
    @logs.runs_with_request_id
    def work(value):
        seen.append((value, logs.current_request_id()))

    with logs.request_id_scope("req-from-http"):
        work(1, request_id=logs.current_request_id())
    work(2)  # enqueued outside a request
    assert logs.current_request_id() is None
    huey.execute(huey.dequeue())
    huey.execute(huey.dequeue())
    assert seen[0] == (1, "req-from-http")
    assert seen[1][0] == 2 and seen[1][1] not in (None, "req-from-http")
    assert logs.current_request_id() is None


def test_configuring_twice_keeps_one_handler_and_takes_the_new_format():
    root = logging.getLogger()
    logs.configure_logging("json", "INFO")
    handler = logs.configure_logging("text", "INFO")
    ours = [existing for existing in root.handlers if existing.get_name() == logs.HANDLER_NAME]
    assert ours == [handler]
    assert isinstance(handler.formatter, logs.TextFormatter)
