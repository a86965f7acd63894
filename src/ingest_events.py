"""What ingest tells the outside world once data is committed: the metrics count it, a debug line names
it, and MQTT publishes it (in the background, see mqtt_publisher.py). Every function here is cheap and
never raises into the request: the controllers call one of them right after the store.

For the Modbus poller: `publish_modbus_sample(host_id, measurement, value, unit, time)` for each stored
sample (and metrics.modbus_poll_finished / modbus_round_finished for its polls).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from decimal import Decimal

import metrics
import mqtt_publisher
from domain import mqtt
from domain.dsmr import DsmrReading, Installation
from domain.oms import OmsMessage
from domain.usage import SampleColumns
from repository import db
from repository import dsmr as dsmr_repo

log = logging.getLogger("joi.ingest")


def _never_raises(hook: Callable[..., None]) -> Callable[..., None]:
    """The data is committed when a hook runs: a failure here must not turn the answer into an error."""

    @functools.wraps(hook)
    def guarded(*args, **kwargs) -> None:
        try:
            hook(*args, **kwargs)
        except Exception:
            log.exception("%s failed (the data is stored)", hook.__name__)

    return guarded


# --- JOI --------------------------------------------------------------------------------------------------------


@_never_raises
def joi_readings_stored(meter_id: str, stored: SampleColumns) -> None:
    metrics.READINGS_STORED.inc(len(stored.times))
    if log.isEnabledFor(logging.DEBUG):
        log.debug("stored %d readings", len(stored.times), extra={"meter": meter_id})
    if stored.times:
        mqtt_publisher.submit(mqtt.joi_power, meter_id, stored.times[-1], stored.values[-1])


# --- DSMR -------------------------------------------------------------------------------------------------------


@_never_raises
def dsmr_telegram_rejected() -> None:
    metrics.DSMR_TELEGRAMS.labels(outcome="rejected").inc()


@_never_raises
def dsmr_telegram_stored(installation: Installation, stored: dsmr_repo.Stored, tz: tzinfo) -> None:
    """A v1 telegram's reading was stored (or was stored before: a duplicate)."""
    metrics.DSMR_TELEGRAMS.labels(outcome="accepted" if stored.created else "duplicate").inc()
    _dsmr_stored(installation, stored, tz)


@_never_raises
def dsmr_reading_stored(installation: Installation, stored: dsmr_repo.Stored, tz: tzinfo) -> None:
    """A v2 reading answered 201: created, or sent again with the values already stored."""
    metrics.DSMR_READINGS.labels(outcome="created" if stored.created else "duplicate").inc()
    _dsmr_stored(installation, stored, tz)


@_never_raises
def dsmr_reading_conflict() -> None:
    """A v2 reading with other values for an instant already stored (answered 409)."""
    metrics.DSMR_READINGS.labels(outcome="conflict").inc()


def _dsmr_stored(installation: Installation, stored: dsmr_repo.Stored, tz: tzinfo) -> None:
    reading: DsmrReading = stored.reading.value
    meter = installation.joi_meter_id
    if log.isEnabledFor(logging.DEBUG):
        log.debug("stored a DSMR reading" if stored.created else "DSMR reading known", extra={"meter": meter})
    if stored.created:
        mqtt_publisher.submit(_dsmr_reading_publication, stored.reading.id, meter, reading)
        mqtt_publisher.submit(
            _day_consumption_publication, installation, tz, coalesce=f"dsmr-day-consumption:{installation.name}"
        )


def _dsmr_reading_publication(prefix: str, reading_id: int, meter: str, reading: DsmrReading) -> mqtt.Publication:
    values = {name: getattr(reading, name, None) for name in mqtt.DSMR_READING_FIELDS}
    return mqtt.dsmr_reading(prefix, reading_id, meter, values)


def _day_consumption_publication(prefix: str, installation: Installation, tz: tzinfo) -> mqtt.Publication:
    """Today's consumption of the installation, as GET /api/v2/consumption/today (in the publisher thread)."""
    day = datetime.now(tz).date()
    db.connect()
    try:
        statistic = dsmr_repo.today(installation.meter, day, tz)
    finally:
        db.close()
    if statistic is None:
        return mqtt.Publication([])
    values = {name: getattr(statistic, name) for name in mqtt.DSMR_DAY_FIELDS}
    return mqtt.dsmr_day_consumption(prefix, values, installation.name)


# --- OMS --------------------------------------------------------------------------------------------------------


@_never_raises
def oms_message_stored(message: OmsMessage, *, new: bool) -> None:
    metrics.OMS_MESSAGES.labels(outcome="new" if new else "duplicate").inc()
    if log.isEnabledFor(logging.DEBUG):
        log.debug("stored an OMS message" if new else "OMS message known", extra={"device": message.device.identnr})
    if new:
        mqtt_publisher.submit(_oms_publication, message)


# Per process: the newest message time published per device, so that a late older message does not
# overwrite the retained current values (the export makes the same choice, domain.oms.is_newer).
_oms_published: dict[int, datetime] = {}


def _oms_publication(prefix: str, message: OmsMessage) -> mqtt.Publication:
    identnr = message.device.identnr
    moment = message.message_time
    if moment is not None:
        newest = _oms_published.get(identnr)
        if newest is not None and moment < newest:
            return mqtt.Publication([])
        _oms_published[identnr] = moment
    values = [
        mqtt.OmsValue(record.dimension, record.tariff, record.subunit, record.value)
        for record in message.records
        if record.storagenr == 0 and isinstance(record.value, Decimal | int) and not isinstance(record.value, bool)
    ]
    return mqtt.oms_values(prefix, identnr, message.device.type, values)


@_never_raises
def oms_export_started() -> None:
    metrics.OMS_EXPORTS.inc()


# --- Modbus (SilesiaSolar) --------------------------------------------------------------------------------------


@_never_raises
def publish_modbus_sample(
    host_id: str | int, measurement: str, value: float | Decimal | int, unit: str | None, time: datetime | None = None
) -> None:
    """A Modbus sample was stored: `silesia/<host>/<measurement>` gets its value (retained), and Home Assistant
    a sensor whose device_class and state_class follow from `unit` (kWh -> energy, total_increasing; W ->
    power; V, A, Hz ...). `time` is when it was measured (only for the debug line)."""
    if log.isEnabledFor(logging.DEBUG):
        moment = (time or datetime.now(UTC)).isoformat()
        log.debug("stored a Modbus sample %s=%s at %s", measurement, value, moment, extra={"host": str(host_id)})
    mqtt_publisher.submit(mqtt.modbus_sample, str(host_id), measurement, value, unit)
