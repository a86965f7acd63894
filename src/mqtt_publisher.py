"""The MQTT publisher: a bounded queue per process, emptied by one background thread (paho-mqtt).

Ingest code calls `submit(build, *args)` after it committed: that puts a small tuple on the queue and
returns (a full queue drops the event and counts it). The thread builds the messages (`build(prefix,
*args)` returns a domain.mqtt.Publication), sends Home Assistant discovery for every sensor it has not
announced on this connection, then the values. While the broker is away paho reconnects with backoff
(1 s doubling up to 30 s) and events are dropped and counted, never queued for later: their retained
topics would then hold stale values. So publishing never slows or fails a request.

Off unless MQTT_URL is set (mqtt://[user:password@]host[:1883] or mqtts://... for TLS).
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import os
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

import paho.mqtt.client as mqtt

import metrics
from config import Config
from domain.mqtt import Publication, discovery_message

log = logging.getLogger("joi.mqtt")

_STOP = object()
# Coalesced events (today's DSMR consumption: ~25 indexed reads per meter) are built at most this often.
COALESCE_SECONDS = 10.0
# Sensors announced per connection are remembered up to this many, then announced again.
MAX_ANNOUNCED = 100_000


@dataclass(frozen=True)
class BrokerSettings:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None
    topic_prefix: str
    discovery: bool
    discovery_prefix: str
    queue_size: int

    @classmethod
    def of(cls, config: Config) -> BrokerSettings:
        url = urlparse(config.mqtt_url or "")
        tls = url.scheme == "mqtts"
        return cls(
            host=url.hostname or "127.0.0.1",
            port=url.port or (8883 if tls else 1883),
            tls=tls,
            username=unquote(url.username) if url.username else None,
            password=unquote(url.password) if url.password else None,
            topic_prefix=config.mqtt_topic_prefix,
            discovery=config.mqtt_discovery,
            discovery_prefix=config.mqtt_discovery_prefix,
            queue_size=config.mqtt_queue_size,
        )

    def where(self) -> str:
        """The broker, for log lines: never the credentials."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


class MqttPublisher:
    def __init__(self, settings: BrokerSettings, *, min_reconnect_delay: int = 1, max_reconnect_delay: int = 30):
        self.settings = settings
        self._queue: queue.Queue = queue.Queue(maxsize=settings.queue_size)
        self._connected = threading.Event()
        self._announced: set[str] = set()
        self._generations: dict[str, int] = {}
        self._counter = itertools.count(1)
        self._stopping = False
        # coalesced events that ran less than their interval ago wait here: key -> (build, args)
        self._deferred: dict[str, tuple[Callable[..., Publication], tuple]] = {}
        self._last_run: dict[str, float] = {}
        self._client = self._make_client(min_reconnect_delay, max_reconnect_delay)
        self._thread = threading.Thread(target=self._run, name="mqtt-publisher", daemon=True)

    def _make_client(self, min_delay: int, max_delay: int) -> mqtt.Client:
        client_id = f"joi-{socket.gethostname()}-{os.getpid()}-{id(self):x}"[:64]
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        if self.settings.username is not None:
            client.username_pw_set(self.settings.username, self.settings.password)
        if self.settings.tls:
            client.tls_set_context(ssl.create_default_context())
        client.reconnect_delay_set(min_delay=min_delay, max_delay=max_delay)
        client.max_queued_messages_set(10_000)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    # --- lifecycle ---

    def start(self) -> None:
        self._client.connect_async(self.settings.host, self.settings.port, keepalive=30)
        self._client.loop_start()
        self._thread.start()
        log.info("publishing to MQTT at %s", self.settings.where())

    def stop(self, timeout: float = 2.0) -> None:
        """Publish what is queued (for up to `timeout` seconds), then disconnect."""
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=timeout)
        self._thread.join(timeout)
        self._stopping = True
        self._client.disconnect()
        self._client.loop_stop()
        metrics.MQTT_CONNECTED.set(0)

    def queue_depth(self) -> int:
        return self._queue.qsize()

    def is_connected(self) -> bool:
        return self._connected.is_set()

    # --- the request side ---

    def submit(self, build: Callable[..., Publication], args: tuple, coalesce: str | None = None) -> None:
        """Queue an event; never blocks. With `coalesce`, only the newest queued event of that key is built,
        and at most once per COALESCE_SECONDS (a later one waits for the interval to end)."""
        generation = 0
        if coalesce is not None:
            generation = next(self._counter)
            self._generations[coalesce] = generation
        try:
            self._queue.put_nowait((build, args, coalesce, generation))
        except queue.Full:
            metrics.MQTT_DROPPED.labels(reason="queue_full").inc()

    # --- the publisher thread ---

    def _run(self) -> None:
        while True:
            try:
                event = self._queue.get(timeout=0.5 if self._deferred else None)
            except queue.Empty:
                event = None
            if event is _STOP:
                return
            if event is not None:
                build, args, coalesce, generation = event
                if coalesce is None:
                    self._deliver(build, args)
                elif self._generations.get(coalesce) == generation:  # else a newer one of the key is queued
                    self._deferred[coalesce] = (build, args)
            self._run_due_deferred()

    def _run_due_deferred(self) -> None:
        now = time.monotonic()
        for key in [
            key for key in self._deferred if now - self._last_run.get(key, -COALESCE_SECONDS) >= COALESCE_SECONDS
        ]:
            build, args = self._deferred.pop(key)
            self._last_run[key] = now
            self._deliver(build, args)

    def _deliver(self, build: Callable[..., Publication], args: tuple) -> None:
        if not self._connected.is_set():
            metrics.MQTT_DROPPED.labels(reason="disconnected").inc()
            return
        self._publish_event(build, args)

    def _publish_event(self, build: Callable[..., Publication], args: tuple) -> None:
        try:
            publication = build(self.settings.topic_prefix, *args)
        except Exception:
            log.warning("an MQTT message could not be built", exc_info=True)
            metrics.MQTT_DROPPED.labels(reason="error").inc()
            return
        messages = []
        if self.settings.discovery:
            new = [sensor for sensor in publication.sensors if sensor.unique_id not in self._announced]
            messages += [discovery_message(self.settings.discovery_prefix, sensor) for sensor in new]
        messages += publication.messages
        for message in messages:
            info = self._client.publish(message.topic, message.payload, qos=0, retain=message.retain)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                metrics.MQTT_DROPPED.labels(reason="disconnected").inc()
                return
            metrics.MQTT_PUBLISHED.inc()
        if self.settings.discovery:
            if len(self._announced) > MAX_ANNOUNCED:
                self._announced.clear()
            self._announced.update(sensor.unique_id for sensor in publication.sensors)

    # --- paho callbacks (paho's network thread) ---

    def _on_connect(self, client, _userdata, _flags, reason_code, _properties=None) -> None:
        if reason_code.is_failure:
            log.warning("the MQTT broker at %s refused the connection: %s", self.settings.where(), reason_code)
            return
        # A broker that restarted may have lost the retained discovery configs: announce everything again,
        # and again whenever Home Assistant says it came back online.
        self._announced.clear()
        if self.settings.discovery:
            client.subscribe(f"{self.settings.discovery_prefix}/status")
        self._connected.set()
        metrics.MQTT_CONNECTED.set(1)
        log.info("connected to the MQTT broker at %s", self.settings.where())

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties=None) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        metrics.MQTT_CONNECTED.set(0)
        if was_connected and not self._stopping:
            log.warning("lost the MQTT broker at %s (%s); reconnecting", self.settings.where(), reason_code)

    def _on_message(self, _client, _userdata, message) -> None:
        if message.topic == f"{self.settings.discovery_prefix}/status" and message.payload == b"online":
            self._announced.clear()


# --- the process's publisher --------------------------------------------------------------------------------

_publisher: MqttPublisher | None = None
_lock = threading.Lock()


def configure(config: Config, **publisher_options) -> MqttPublisher | None:
    """Start this process's publisher when MQTT_URL is set (stopping one with other settings), or stop it."""
    global _publisher
    settings = BrokerSettings.of(config) if config.mqtt_url else None
    with _lock:
        if _publisher is not None and settings == _publisher.settings and not publisher_options:
            return _publisher
        if _publisher is not None:
            _publisher.stop()
            _publisher = None
        if settings is not None:
            _publisher = MqttPublisher(settings, **publisher_options)
            _publisher.start()
        return _publisher


def submit(build: Callable[..., Publication], *args, coalesce: str | None = None) -> None:
    """Publish what `build(topic_prefix, *args)` makes, in the background; nothing when MQTT is off."""
    publisher = _publisher
    if publisher is not None:
        publisher.submit(build, args, coalesce)


def enabled() -> bool:
    return _publisher is not None


def _sample_queue() -> None:
    publisher = _publisher
    metrics.MQTT_QUEUE.set(publisher.queue_depth() if publisher is not None else 0)


def _stop_at_exit() -> None:
    with _lock:
        if _publisher is not None:
            _publisher.stop(timeout=1.0)


metrics.add_sampler(_sample_queue)
atexit.register(_stop_at_exit)
