"""MQTT against a real broker: the machine's Mosquitto (127.0.0.1:1883) for what a subscriber sees, and a
private mosquitto on a free port for a broker that goes away mid-test (the shared one is never stopped).

Every test publishes under a random topic prefix and discovery prefix, so that it sees only its own messages
and never touches anyone's `homeassistant/` tree; the retained messages it leaves are cleared afterwards.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest

import ingest_events
import metrics
import mqtt_publisher
import tasks
from app import create_app
from config import Config
from repository import db
from tests.api.test_oms_api import SEED as OMS_SEED
from tests.support import modbus_simulator, silesia_sites
from tests.support.observed import value
from tests.support.telegrams import SEED_TELEGRAM

SYSTEM_BROKER = ("127.0.0.1", 1883)
KEY = "mqtt-test-key"


def broker_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


class Subscriber:
    """A real MQTT client that records every message under the given filters."""

    def __init__(self, port: int, *filters: str):
        self.messages: dict[str, list[tuple[bytes, bool]]] = {}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"joi-test-sub-{os.urandom(4).hex()}")
        self.client.on_connect = lambda client, *_: [client.subscribe(f) for f in filters] and self._ready.set()
        self.client.on_subscribe = lambda *_: self._ready.set()
        self.client.on_message = self._record
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._ready.wait(5), "the subscriber could not subscribe"

    def _record(self, _client, _userdata, message) -> None:
        with self._lock:
            self.messages.setdefault(message.topic, []).append((message.payload, message.retain))

    def wait_for(self, topic: str, seconds: float = 10) -> bytes:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self._lock:
                if topic in self.messages:
                    return self.messages[topic][-1][0]
            time.sleep(0.02)
        raise AssertionError(f"nothing arrived on {topic}; seen: {sorted(self.messages)}")

    def clear_retained(self) -> None:
        for topic in list(self.messages):
            self.client.publish(topic, b"", retain=True).wait_for_publish(2)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def wait_until(condition, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


@pytest.fixture
def prefixes():
    tag = os.urandom(4).hex()
    return f"joi-test-{tag}", f"joi-test-ha-{tag}"


@pytest.fixture
def mqtt_config(database_url, prefixes):
    if not broker_answers(*SYSTEM_BROKER):
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("the MQTT broker at 127.0.0.1:1883 is required in CI")
        pytest.skip("no MQTT broker at 127.0.0.1:1883 (.ci/run starts it)")
    topic_prefix, discovery_prefix = prefixes
    return Config(
        database_url=database_url,
        validate_responses=True,
        dsmr_api_enabled=True,
        dsmr_api_key=KEY,
        dsmr_verify_crc=False,
        mqtt_url="mqtt://127.0.0.1:1883",
        mqtt_topic_prefix=topic_prefix,
        mqtt_discovery_prefix=discovery_prefix,
    )


@pytest.fixture
def subscriber(prefixes):
    topic_prefix, discovery_prefix = prefixes
    listener = Subscriber(SYSTEM_BROKER[1], f"{topic_prefix}/#", f"{discovery_prefix}/#")
    yield listener
    listener.clear_retained()
    listener.close()


@pytest.fixture
def mqtt_client(mqtt_config):
    application = create_app(mqtt_config)
    publisher = mqtt_publisher._publisher
    deadline = time.monotonic() + 10
    while not publisher.is_connected() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert publisher.is_connected()
    with application.test_client() as client:
        yield client
    mqtt_publisher.configure(Config(database_url=mqtt_config.database_url))
    db.close_all()


def test_joi_readings_publish_the_newest_power_and_its_discovery(mqtt_client, subscriber, prefixes):
    topic_prefix, discovery_prefix = prefixes
    body = {
        "smartMeterId": "mqtt-meter-1",
        "electricityReadings": [{"time": 1606636860, "reading": 0.0621}, {"time": 1606636800, "reading": 0.0503}],
    }
    assert mqtt_client.post("/readings/store", json=body).status_code == 200
    assert subscriber.wait_for(f"{topic_prefix}/joi/mqtt-meter-1/power") == b"0.0621"
    config = json.loads(subscriber.wait_for(f"{discovery_prefix}/sensor/joi_mqtt-meter-1_power/config"))
    assert config["state_topic"] == f"{topic_prefix}/joi/mqtt-meter-1/power"
    assert (config["device_class"], config["unit_of_measurement"]) == ("power", "kW")
    late = Subscriber(SYSTEM_BROKER[1], f"{topic_prefix}/joi/#")  # subscribes after: gets the retained value
    try:
        assert late.wait_for(f"{topic_prefix}/joi/mqtt-meter-1/power") == b"0.0621"
        assert late.messages[f"{topic_prefix}/joi/mqtt-meter-1/power"][0][1] is True
    finally:
        late.close()


def test_a_dsmr_telegram_publishes_its_fields_its_json_todays_consumption_and_discovery(
    mqtt_client, subscriber, prefixes
):
    topic_prefix, discovery_prefix = prefixes
    response = mqtt_client.post(
        "/api/v1/datalogger/dsmrreading", headers={"X-AUTHKEY": KEY}, data={"telegram": SEED_TELEGRAM}
    )
    assert response.status_code == 201
    reading = json.loads(subscriber.wait_for(f"{topic_prefix}/dsmr/json"))
    meter = reading["meter"]
    delivered = subscriber.wait_for(f"{topic_prefix}/dsmr/reading/electricity_delivered_1")
    assert float(delivered) == reading["electricity_delivered_1"]
    assert json.loads(subscriber.wait_for(f"{topic_prefix}/dsmr/meter/{meter}/json")) == reading
    sensor = json.loads(
        subscriber.wait_for(f"{discovery_prefix}/sensor/joi_dsmr_{meter}_electricity_delivered_1/config")
    )
    assert (sensor["device_class"], sensor["state_class"], sensor["unit_of_measurement"]) == (
        "energy",
        "total_increasing",
        "kWh",
    )


def test_todays_dsmr_consumption_is_published_per_field(mqtt_client, subscriber, prefixes, monkeypatch):
    topic_prefix, discovery_prefix = prefixes
    monkeypatch.setattr(mqtt_publisher, "COALESCE_SECONDS", 1.0)
    now = datetime.now(UTC).replace(microsecond=0)
    for minutes, delivered in ((30, 1000), (1, 1001.5)):
        moment = datetime.fromtimestamp(now.timestamp() - minutes * 60, UTC)
        body = {
            "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "electricity_currently_delivered": 1.5,
            "electricity_currently_returned": 0,
            "electricity_delivered_1": delivered,
            "electricity_delivered_2": 0,
            "electricity_returned_1": 0,
            "electricity_returned_2": 0,
        }
        assert (
            mqtt_client.post("/api/v2/datalogger/dsmrreading", headers={"X-AUTHKEY": KEY}, json=body).status_code == 201
        )
    today = mqtt_client.get("/api/v2/consumption/today", headers={"X-AUTHKEY": KEY})
    if today.status_code != 200:
        pytest.skip("both readings fell on different local days (a test run at midnight)")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        published = subscriber.wait_for(f"{topic_prefix}/dsmr/day-consumption/electricity1")
        if float(published) == float(today.json()["electricity1"]):
            break
        time.sleep(0.05)
    assert float(published) == float(today.json()["electricity1"]) == 1.5
    config = json.loads(
        subscriber.wait_for(f"{discovery_prefix}/sensor/joi_dsmr_installation_today_electricity1/config")
    )
    assert config["state_class"] == "total_increasing"


def test_an_oms_message_publishes_each_current_value(mqtt_client, subscriber, prefixes):
    topic_prefix, discovery_prefix = prefixes
    assert mqtt_client.post("/commit", json=OMS_SEED).status_code == 200
    assert subscriber.wait_for(f"{topic_prefix}/oms/83251076/energy_kwh") == b"29690"
    config = json.loads(subscriber.wait_for(f"{discovery_prefix}/sensor/joi_oms_83251076_energy_kwh/config"))
    assert (config["device_class"], config["state_class"], config["unit_of_measurement"]) == (
        "energy",
        "total_increasing",
        "kWh",
    )


def test_a_modbus_sample_is_published_under_its_host(mqtt_client, subscriber, prefixes):
    topic_prefix, discovery_prefix = prefixes
    ingest_events.publish_modbus_sample(17, "total_import", 1234.5, "kWh", datetime.now(UTC))
    assert subscriber.wait_for(f"{topic_prefix}/silesia/17/total_import") == b"1234.5"
    config = json.loads(subscriber.wait_for(f"{discovery_prefix}/sensor/joi_silesia_17_total_import/config"))
    assert config["state_class"] == "total_increasing" and config["device_class"] == "energy"


def test_a_modbus_poll_round_publishes_each_sample_and_its_discovery(mqtt_client, subscriber, prefixes, monkeypatch):
    topic_prefix, discovery_prefix = prefixes
    monkeypatch.setattr(
        tasks, "settings", dataclasses.replace(tasks.settings, modbus_poll_seconds=2, modbus_timeout_seconds=1)
    )
    published_before = value(metrics.render().decode(), "joi_mqtt_published_total")
    db.connect()
    try:
        owner = silesia_sites.account()
        with modbus_simulator.sdm630_gateway() as gateway:
            host = silesia_sites.host(owner, gateway.port, measurements=["voltage_ac", "active_energy_consumed"])
            tasks.poll_round.call_local()
    finally:
        db.close()
    assert subscriber.wait_for(f"{topic_prefix}/silesia/{host}/voltage_ac") == b"230.1"
    assert subscriber.wait_for(f"{topic_prefix}/silesia/{host}/active_energy_consumed") == b"12345.625"
    energy = json.loads(
        subscriber.wait_for(f"{discovery_prefix}/sensor/joi_silesia_{host}_active_energy_consumed/config")
    )
    assert (energy["device_class"], energy["state_class"], energy["unit_of_measurement"]) == (
        "energy",
        "total_increasing",
        "kWh",
    )
    assert energy["state_topic"] == f"{topic_prefix}/silesia/{host}/active_energy_consumed"
    voltage = json.loads(subscriber.wait_for(f"{discovery_prefix}/sensor/joi_silesia_{host}_voltage_ac/config"))
    assert (voltage["device_class"], voltage["state_class"]) == ("voltage", "measurement")
    wait_until(lambda: value(metrics.render().decode(), "joi_mqtt_published_total") - published_before >= 4)


def test_mqtt_off_publishes_nothing_and_costs_nothing(client):
    assert not mqtt_publisher.enabled()
    body = {"smartMeterId": "quiet-meter", "electricityReadings": [{"time": 1606636800, "reading": 1.0}]}
    assert client.post("/readings/store", json=body).status_code == 200


# --- a broker that goes away ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_private_broker(tmp_path, port: int) -> subprocess.Popen:
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.path.exists(mosquitto):
        pytest.skip("mosquitto is not installed")
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    broker = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not broker_answers("127.0.0.1", port):
        if time.monotonic() > deadline or broker.poll() is not None:
            broker.kill()
            pytest.fail("the private mosquitto did not start")
        time.sleep(0.05)
    return broker


def stop_broker(broker: subprocess.Popen) -> None:
    broker.kill()
    broker.wait(5)


def test_a_broker_that_goes_away_changes_nothing_for_the_api(database_url, tmp_path):
    port = free_port()
    broker = start_private_broker(tmp_path, port)
    config = Config(database_url=database_url, validate_responses=True, mqtt_url=f"mqtt://127.0.0.1:{port}")
    try:
        application = create_app(config)
        publisher = mqtt_publisher.configure(config, min_reconnect_delay=1, max_reconnect_delay=1)
        deadline = time.monotonic() + 10
        while not publisher.is_connected() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert publisher.is_connected()
        with application.test_client() as client:
            listener = Subscriber(port, "joi/#")
            first = {"smartMeterId": "away-meter", "electricityReadings": [{"time": 1606636800, "reading": 1.0}]}
            assert client.post("/readings/store", json=first).status_code == 200
            assert listener.wait_for("joi/away-meter/power") == b"1.0"
            listener.close()
            before = client.get("/metrics").text

            stop_broker(broker)
            deadline = time.monotonic() + 10
            while publisher.is_connected() and time.monotonic() < deadline:
                time.sleep(0.02)
            assert not publisher.is_connected()
            started = time.perf_counter()
            for second in range(1, 51):
                body = {
                    "smartMeterId": "away-meter",
                    "electricityReadings": [{"time": 1606636800 + second, "reading": 2.0}],
                }
                assert client.post("/readings/store", json=body).status_code == 200
            elapsed = time.perf_counter() - started
            stored = client.get("/readings/read/away-meter").json()
            assert len(stored) == 51
            deadline = time.monotonic() + 5
            while publisher.queue_depth() and time.monotonic() < deadline:
                time.sleep(0.02)
            after = client.get("/metrics").text
            dropped = value(after, "joi_mqtt_dropped_total", reason="disconnected") - value(
                before, "joi_mqtt_dropped_total", reason="disconnected"
            )
            assert dropped == 50
            assert value(after, "joi_mqtt_connected") == 0
            assert elapsed < 30  # a sanity bound only: no request waited for the broker

            # The broker comes back: the publisher reconnects by itself and publishes again.
            broker = start_private_broker(tmp_path, port)
            deadline = time.monotonic() + 15
            while not publisher.is_connected() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert publisher.is_connected()
            listener = Subscriber(port, "joi/#", "homeassistant/#")
            last = {"smartMeterId": "away-meter", "electricityReadings": [{"time": 1606637000, "reading": 3.5}]}
            assert client.post("/readings/store", json=last).status_code == 200
            assert listener.wait_for("joi/away-meter/power") == b"3.5"
            # announced again after the reconnect (this broker kept nothing)
            listener.wait_for("homeassistant/sensor/joi_away-meter_power/config")
            listener.close()
    finally:
        mqtt_publisher.configure(Config(database_url=database_url))
        db.close_all()
        stop_broker(broker)


def test_a_full_queue_drops_and_counts_instead_of_waiting(database_url, tmp_path):
    config = Config(database_url=database_url, mqtt_url=f"mqtt://127.0.0.1:{free_port()}", mqtt_queue_size=2)
    try:
        publisher = mqtt_publisher.configure(config)  # nobody listens there: never connected
        block = threading.Event()

        def slow(prefix):
            block.wait(5)
            from domain.mqtt import Publication

            return Publication([])

        publisher._connected.set()  # pretend, so that the thread takes the first event and blocks in it
        before = publisher_dropped("queue_full")
        publisher.submit(slow, ())
        time.sleep(0.2)
        started = time.perf_counter()
        for _ in range(5):
            mqtt_publisher.submit(slow)
        assert time.perf_counter() - started < 0.5
        assert publisher_dropped("queue_full") - before == 3
        assert value(metrics.render().decode(), "joi_mqtt_queue_depth") == 2  # what waits behind the slow one
        block.set()
    finally:
        mqtt_publisher.configure(Config(database_url=database_url))


def publisher_dropped(reason: str) -> float:
    return value(metrics.render().decode(), "joi_mqtt_dropped_total", reason=reason)
