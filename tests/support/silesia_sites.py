"""SilesiaSolar users, sites and Modbus hosts made straight through the repositories (for tests and the
bench): a user with a token, a location, a host on a meter model, measurements assigned."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

from domain.accounts import issue_token, new_user
from domain.silesia import Host, Location, Measurement, Meter, Register
from repository import silesia as silesia_repo
from repository import users as users_repo
from repository.db import write_transaction

_numbers = itertools.count(1)
PASSWORD = "correct horse battery staple 42"


@dataclass(frozen=True)
class Account:
    id: int
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}


def account(*, admin: bool = False) -> Account:
    number = next(_numbers)
    user = users_repo.create_user_with_token(
        new_user(f"installer{number}", f"installer{number}@example.com", PASSWORD, is_admin=admin),
        token := issue_token(int(time.time()), 10),
    )
    if admin:
        users_repo.make_admin(user.id)
    return Account(user.id, token.token)


def meter_id(name: str = "sdm630") -> int:
    meters, _ = silesia_repo.meters()
    return next(meter.id for meter in meters if meter.name == name)


def location(owner: Account) -> int:
    return silesia_repo.create_location(Location(0, owner.id, "SunnyStreet", "62", "SilliconCity", "11-420")).id


def host(owner: Account, port: int, *, unit_id: int = 1, meter: int | None = None, measurements=(), site=None) -> int:
    site = site or location(owner)
    created = silesia_repo.create_host(
        Host(0, owner.id, site, meter or meter_id(), "127.0.0.1", port, unit_id, "test meter")
    )
    if measurements:
        silesia_repo.assign(created.id, None, list(measurements))
    return created.id


def many_hosts(owner: Account, ports: list[tuple[int, int]], measurements=(), meter: int | None = None) -> list[int]:
    """One host per (port, unit id), inserted in bulk (a bench makes a thousand), with the measurements."""
    site, model = location(owner), meter or meter_id()
    rows = [
        dict(user=owner.id, location=site, meter=model, ip="127.0.0.1", port=port, slave_address=unit, description="")
        for port, unit in ports
    ]
    with write_transaction():
        for start in range(0, len(rows), 200):
            silesia_repo.HostRow.insert_many(rows[start : start + 200]).execute()
        ids = [
            row.id
            for row in silesia_repo.HostRow.select(silesia_repo.HostRow.id)
            .where(silesia_repo.HostRow.location == site)
            .order_by(silesia_repo.HostRow.id)
        ]
        names = silesia_repo.MeasurementRow.select(silesia_repo.MeasurementRow.id).where(
            silesia_repo.MeasurementRow.name.in_(list(measurements))
        )
        assigned = [dict(host=host_id, measurement=row.id) for host_id in ids for row in names]
        for start in range(0, len(assigned), 200):
            silesia_repo.HostMeasurementRow.insert_many(assigned[start : start + 200]).execute()
    return ids


def custom_meter_model(name: str = "testmeter") -> int:
    """A meter model that reads the simulator's other blocks and layouts (see tests/support/modbus_simulator.py):
    holding registers, a little-endian float, int16 and a scaled int32, and an address the device lacks."""
    model = silesia_repo.create_meter(Meter(0, name, 2)).id
    for measurement, kind in [
        ("holding_voltage", 1),
        ("little_float", 1),
        ("signed_int16", 1),
        ("scaled_int32", 1),
        ("missing_register", 1),
    ]:
        silesia_repo.create_measurement(Measurement(measurement, kind))
    for measurement, address, data_type, function_code, word_order, scale, unit in [
        ("voltage_ac", 0, 3, 4, "big", 1.0, "V"),
        ("holding_voltage", 0, 3, 3, "big", 1.0, "V"),
        ("little_float", 200, 3, 4, "little", 1.0, "W"),
        ("signed_int16", 300, 1, 4, "big", 1.0, "W"),
        ("scaled_int32", 302, 2, 4, "big", 0.01, "W"),
        ("missing_register", 500, 3, 4, "big", 1.0, "W"),
        ("active_energy_consumed", 72, 3, 4, "big", 1.0, "kWh"),
    ]:
        silesia_repo.create_register(
            Register(0, model, measurement, address, unit, data_type, function_code, word_order, scale)
        )
    return model
