"""SilesiaSolar storage: meter models, measurements, registers, and each user's locations, Modbus hosts and
the measurements assigned to each host; and what the poller reads (`polling_targets`).

Functions that take `owner` see only that user's objects when it is a user id, everything when it is None
(an admin). An object outside the caller's sight is answered as missing, so ids cannot be probed.
Every check of a rule that spans rows (a host's location belongs to its user, an assigned measurement has
a register on the host's meter model) runs inside the transaction that writes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import peewee

from domain.errors import Conflict, InvalidInput, NotFound
from domain.silesia import (
    Assignment,
    Host,
    Location,
    Measurement,
    Meter,
    PollTarget,
    Register,
    RegisterSpec,
    merge_host,
    merge_register,
    meter_name_key,
    missing_registers,
)
from repository.db import BaseModel, write_transaction
from repository.users import UserRow

Page = tuple[int | None, int]  # (limit, offset); limit None means all


class MeterRow(BaseModel):
    name = peewee.CharField(max_length=64)
    name_key = peewee.CharField(max_length=64, unique=True)
    type = peewee.SmallIntegerField()

    class Meta:
        table_name = "silesia_meters"


class MeasurementRow(BaseModel):
    name = peewee.CharField(max_length=64, unique=True)
    type = peewee.SmallIntegerField()

    class Meta:
        table_name = "silesia_measurements"


class RegisterRow(BaseModel):
    meter = peewee.ForeignKeyField(MeterRow, column_name="meter_id", on_delete="CASCADE")
    measurement = peewee.ForeignKeyField(MeasurementRow, column_name="measurement_id")
    address = peewee.IntegerField()
    data_type = peewee.SmallIntegerField()
    function_code = peewee.SmallIntegerField()
    word_order = peewee.CharField(max_length=6, default="big")
    scale = peewee.DoubleField(default=1.0)
    unit = peewee.CharField(max_length=16, default="")

    class Meta:
        table_name = "silesia_registers"


class LocationRow(BaseModel):
    user = peewee.ForeignKeyField(UserRow, column_name="user_id", on_delete="CASCADE")
    street = peewee.CharField(max_length=200)
    number = peewee.CharField(max_length=20)
    city = peewee.CharField(max_length=100)
    zip_code = peewee.CharField(max_length=10)
    coord_x = peewee.DoubleField(null=True)
    coord_y = peewee.DoubleField(null=True)

    class Meta:
        table_name = "silesia_locations"


class HostRow(BaseModel):
    user = peewee.ForeignKeyField(UserRow, column_name="user_id", on_delete="CASCADE")
    location = peewee.ForeignKeyField(LocationRow, column_name="location_id")
    meter = peewee.ForeignKeyField(MeterRow, column_name="meter_id")
    ip = peewee.CharField(max_length=253)
    port = peewee.IntegerField()
    slave_address = peewee.SmallIntegerField()
    description = peewee.CharField(max_length=500, default="")

    class Meta:
        table_name = "silesia_hosts"


class HostMeasurementRow(BaseModel):
    host = peewee.ForeignKeyField(HostRow, column_name="host_id", on_delete="CASCADE")
    measurement = peewee.ForeignKeyField(MeasurementRow, column_name="measurement_id")

    class Meta:
        table_name = "silesia_host_measurements"


@contextlib.contextmanager
def _writing():
    """A write transaction. The rules are checked inside it, so a constraint only fails when a concurrent
    request wrote the same thing between our check and our write: that is a conflict, not a server error."""
    try:
        with write_transaction():
            yield
    except peewee.IntegrityError:
        raise Conflict("A concurrent request changed the same data; nothing was changed, retry.") from None


def _paged(query: peewee.Select, page: Page) -> tuple[list, int]:
    """The rows of one page and how many rows there are in all."""
    limit, offset = page
    if limit is None and not offset:
        rows = list(query.tuples())
        return rows, len(rows)
    return list(query.limit(limit if limit is not None else 2**62).offset(offset).tuples()), query.count()


# --- meters ----------------------------------------------------------------------------------------------------

_METER_FIELDS = (MeterRow.id, MeterRow.name, MeterRow.type)


def meters(page: Page = (None, 0)) -> tuple[list[Meter], int]:
    rows, total = _paged(MeterRow.select(*_METER_FIELDS).order_by(MeterRow.id), page)
    return [Meter(*row) for row in rows], total


def meter(meter_id: int) -> Meter:
    row = MeterRow.select(*_METER_FIELDS).where(MeterRow.id == meter_id).tuples().first()
    if row is None:
        raise NotFound(f"There is no meter model {meter_id}.")
    return Meter(*row)


def _refuse_taken_meter_name(name_key: str, except_id: int | None = None) -> None:
    query = MeterRow.select(MeterRow.id).where(MeterRow.name_key == name_key)
    if except_id is not None:
        query = query.where(MeterRow.id != except_id)
    if query.exists():
        raise InvalidInput("A meter model with that name already exists.", field="name")


def create_meter(new: Meter) -> Meter:
    name_key = meter_name_key(new.name)
    with _writing():
        _refuse_taken_meter_name(name_key)
        meter_id = MeterRow.insert(name=new.name, name_key=name_key, type=new.type).execute()
    return Meter(meter_id, new.name, new.type)


def update_meter(meter_id: int, changes: dict) -> Meter:
    """`changes`: a checked name and/or type (domain.silesia.meter_changes)."""
    with _writing():
        meter(meter_id)
        changes = dict(changes)
        if "name" in changes:
            changes["name_key"] = meter_name_key(changes["name"])
            _refuse_taken_meter_name(changes["name_key"], except_id=meter_id)
        if changes:
            MeterRow.update(**changes).where(MeterRow.id == meter_id).execute()
        return meter(meter_id)


def delete_meter(meter_id: int) -> None:
    """A meter model and its registers; refused while a host uses it."""
    with _writing():
        meter(meter_id)
        hosts = [row[0] for row in HostRow.select(HostRow.id).where(HostRow.meter == meter_id).limit(5).tuples()]
        if hosts:
            raise Conflict(
                f"Meter model {meter_id} is used by hosts {_ids(hosts)}; change or delete them first.", field="meter"
            )
        RegisterRow.delete().where(RegisterRow.meter == meter_id).execute()
        MeterRow.delete().where(MeterRow.id == meter_id).execute()


def _ids(ids: list[int]) -> str:
    return ", ".join(map(str, ids[:4])) + (" and more" if len(ids) > 4 else "")


# --- measurements ----------------------------------------------------------------------------------------------


def measurements(page: Page = (None, 0)) -> tuple[list[Measurement], int]:
    query = MeasurementRow.select(MeasurementRow.name, MeasurementRow.type).order_by(MeasurementRow.id)
    rows, total = _paged(query, page)
    return [Measurement(*row) for row in rows], total


def meter_measurements(meter_id: int, page: Page = (None, 0)) -> tuple[list[Measurement], int]:
    """The measurements that have a register on the meter model."""
    meter(meter_id)
    query = (
        MeasurementRow.select(MeasurementRow.name, MeasurementRow.type)
        .join(RegisterRow, on=RegisterRow.measurement == MeasurementRow.id)
        .where(RegisterRow.meter == meter_id)
        .order_by(RegisterRow.address, MeasurementRow.id)
    )
    rows, total = _paged(query, page)
    return [Measurement(*row) for row in rows], total


def _measurement_row(name: str) -> tuple[int, str, int]:
    row = (
        MeasurementRow.select(MeasurementRow.id, MeasurementRow.name, MeasurementRow.type)
        .where(MeasurementRow.name == name)
        .tuples()
        .first()
    )
    if row is None:
        raise NotFound(f"There is no measurement {name!r}.")
    return row


def measurement(name: str) -> Measurement:
    _, name, type_ = _measurement_row(name)
    return Measurement(name, type_)


def create_measurement(new: Measurement) -> tuple[Measurement, bool]:
    """(the measurement, whether it was created). The same name and type again is no error (the seed's own
    example adds `current`, which the seed data holds); the same name with another type is."""
    with _writing():
        existing = MeasurementRow.select(MeasurementRow.type).where(MeasurementRow.name == new.name).scalar()
        if existing is not None:
            if existing != new.type:
                raise InvalidInput(
                    f"A measurement {new.name!r} exists already, with type {existing}.", field="measurement"
                )
            return new, False
        MeasurementRow.insert(name=new.name, type=new.type).execute()
    return new, True


def update_measurement(name: str, changes: dict) -> Measurement:
    """`changes`: a checked new name and/or type (domain.silesia.measurement_changes)."""
    with _writing():
        measurement_id, _, _ = _measurement_row(name)
        changes = dict(changes)
        if changes.get("name", name) == name:
            changes.pop("name", None)
        elif MeasurementRow.select().where(MeasurementRow.name == changes["name"]).exists():
            raise InvalidInput("A measurement with that name already exists.", field="measurement")
        if changes:
            MeasurementRow.update(**changes).where(MeasurementRow.id == measurement_id).execute()
        return measurement(changes.get("name", name))


def delete_measurement(name: str) -> None:
    """Refused while a register describes it or a host has it assigned."""
    with _writing():
        measurement_id, _, _ = _measurement_row(name)
        registers_using = [
            row[0]
            for row in RegisterRow.select(RegisterRow.id).where(RegisterRow.measurement == measurement_id).tuples()
        ]
        if registers_using:
            raise Conflict(
                f"Measurement {name!r} has registers {_ids(registers_using)}; delete them first.", field="measurement"
            )
        MeasurementRow.delete().where(MeasurementRow.id == measurement_id).execute()


def _measurement_ids(names: Iterable[str], field: str = "measurements") -> dict[str, int]:
    names = list(dict.fromkeys(names))
    found = dict(
        MeasurementRow.select(MeasurementRow.name, MeasurementRow.id).where(MeasurementRow.name.in_(names)).tuples()
    )
    unknown = [name for name in names if name not in found]
    if unknown:
        raise InvalidInput(f"Unknown measurements: {', '.join(unknown)}.", field=field)
    return found


# --- registers -------------------------------------------------------------------------------------------------

_REGISTER_FIELDS = (
    RegisterRow.id,
    RegisterRow.meter,
    MeasurementRow.name,
    RegisterRow.address,
    RegisterRow.unit,
    RegisterRow.data_type,
    RegisterRow.function_code,
    RegisterRow.word_order,
    RegisterRow.scale,
)


def _register_query() -> peewee.Select:
    return RegisterRow.select(*_REGISTER_FIELDS).join(MeasurementRow, on=RegisterRow.measurement == MeasurementRow.id)


def registers(page: Page = (None, 0), meter_id: int | None = None) -> tuple[list[Register], int]:
    query = _register_query().order_by(RegisterRow.id)
    if meter_id is not None:
        query = query.where(RegisterRow.meter == meter_id)
    rows, total = _paged(query, page)
    return [Register(*row) for row in rows], total


def register(register_id: int) -> Register:
    row = _register_query().where(RegisterRow.id == register_id).tuples().first()
    if row is None:
        raise NotFound(f"There is no register {register_id}.")
    return Register(*row)


def _existing_meter(meter_id: int, field: str = "meter") -> None:
    if not MeterRow.select().where(MeterRow.id == meter_id).exists():
        raise InvalidInput(f"There is no meter model {meter_id}.", field=field)


def _refuse_second_register(meter_id: int, measurement_id: int, name: str, except_id: int | None = None) -> None:
    query = RegisterRow.select(RegisterRow.id).where(
        (RegisterRow.meter == meter_id) & (RegisterRow.measurement == measurement_id)
    )
    if except_id is not None:
        query = query.where(RegisterRow.id != except_id)
    existing = query.scalar()
    if existing is not None:
        raise InvalidInput(
            f"Meter model {meter_id} has a register for {name!r} already (register {existing}).", field="measurement"
        )


def create_register(spec: Register) -> Register:
    with _writing():
        _existing_meter(spec.meter)
        measurement_id = _measurement_ids([spec.measurement], field="measurement")[spec.measurement]
        _refuse_second_register(spec.meter, measurement_id, spec.measurement)
        register_id = RegisterRow.insert(
            meter=spec.meter,
            measurement=measurement_id,
            address=spec.address,
            data_type=spec.data_type,
            function_code=spec.function_code,
            word_order=spec.word_order,
            scale=spec.scale,
            unit=spec.unit,
        ).execute()
    return register(register_id)


def _hosts_assigned(meter_id: int, measurement_name: str) -> list[int]:
    return [
        row[0]
        for row in HostMeasurementRow.select(HostMeasurementRow.host)
        .join(HostRow, on=HostMeasurementRow.host == HostRow.id)
        .switch(HostMeasurementRow)
        .join(MeasurementRow, on=HostMeasurementRow.measurement == MeasurementRow.id)
        .where((HostRow.meter == meter_id) & (MeasurementRow.name == measurement_name))
        .order_by(HostMeasurementRow.host)
        .tuples()
    ]


def update_register(register_id: int, body: dict) -> Register:
    """Apply the changes in `body` (register fields as the API names them) to the register, checked as a
    whole. Moving it to another meter or measurement is refused while hosts have the old one assigned."""
    with _writing():
        current = register(register_id)
        merged = merge_register(current, body)
        if (merged.meter, merged.measurement) != (current.meter, current.measurement):
            _existing_meter(merged.meter)
            in_use = _hosts_assigned(current.meter, current.measurement)
            if in_use:
                raise Conflict(
                    f"Hosts {_ids(in_use)} read {current.measurement!r} through register {register_id}; "
                    "unassign it from them first.",
                    field="measurement",
                )
        measurement_id = _measurement_ids([merged.measurement], field="measurement")[merged.measurement]
        _refuse_second_register(merged.meter, measurement_id, merged.measurement, except_id=register_id)
        RegisterRow.update(
            meter=merged.meter,
            measurement=measurement_id,
            address=merged.address,
            data_type=merged.data_type,
            function_code=merged.function_code,
            word_order=merged.word_order,
            scale=merged.scale,
            unit=merged.unit,
        ).where(RegisterRow.id == register_id).execute()
        return register(register_id)


def delete_register(register_id: int) -> None:
    """Refused while hosts of its meter model have its measurement assigned (they could not be read)."""
    with _writing():
        current = register(register_id)
        in_use = _hosts_assigned(current.meter, current.measurement)
        if in_use:
            raise Conflict(
                f"Hosts {_ids(in_use)} read {current.measurement!r} through register {register_id}; "
                "unassign it from them first.",
                field="register",
            )
        RegisterRow.delete().where(RegisterRow.id == register_id).execute()


# --- locations -------------------------------------------------------------------------------------------------

LOCATION_FIELDS = (
    LocationRow.id,
    LocationRow.user,
    LocationRow.street,
    LocationRow.number,
    LocationRow.city,
    LocationRow.zip_code,
    LocationRow.coord_x,
    LocationRow.coord_y,
)


def visible_to(query: peewee.Select, model, owner: int | None) -> peewee.Select:
    return query if owner is None else query.where(model.user == owner)


def locations(owner: int | None, page: Page = (None, 0)) -> tuple[list[Location], int]:
    query = visible_to(LocationRow.select(*LOCATION_FIELDS), LocationRow, owner).order_by(LocationRow.id)
    rows, total = _paged(query, page)
    return [Location(*row) for row in rows], total


def location(location_id: int, owner: int | None) -> Location:
    query = visible_to(LocationRow.select(*LOCATION_FIELDS), LocationRow, owner).where(LocationRow.id == location_id)
    row = query.tuples().first()
    if row is None:
        raise NotFound(f"There is no location {location_id}.")
    return Location(*row)


def _existing_user(user_id: int) -> None:
    if not UserRow.select().where(UserRow.id == user_id).exists():
        raise InvalidInput(f"There is no user {user_id}.", field="user")


def create_location(new: Location) -> Location:
    with _writing():
        _existing_user(new.user)
        location_id = LocationRow.insert(
            user=new.user,
            street=new.street,
            number=new.number,
            city=new.city,
            zip_code=new.zip_code,
            coord_x=new.coord_x,
            coord_y=new.coord_y,
        ).execute()
    return location(location_id, None)


def update_location(location_id: int, owner: int | None, changes: dict) -> Location:
    """`changes`: validated values of street, number, city, zip_code, coord_x, coord_y (None clears a coordinate)."""
    with _writing():
        location(location_id, owner)
        if changes:
            LocationRow.update(**changes).where(LocationRow.id == location_id).execute()
        return location(location_id, owner)


def delete_location(location_id: int, owner: int | None) -> None:
    """Refused while hosts stand at the location."""
    with _writing():
        location(location_id, owner)
        hosts = [row[0] for row in HostRow.select(HostRow.id).where(HostRow.location == location_id).tuples()]
        if hosts:
            raise Conflict(
                f"Location {location_id} has hosts {_ids(hosts)}; move or delete them first.", field="location"
            )
        LocationRow.delete().where(LocationRow.id == location_id).execute()


# --- hosts ---------------------------------------------------------------------------------------------------

HOST_FIELDS = (
    HostRow.id,
    HostRow.user,
    HostRow.location,
    HostRow.meter,
    HostRow.ip,
    HostRow.port,
    HostRow.slave_address,
    HostRow.description,
)


def hosts(owner: int | None, page: Page = (None, 0)) -> tuple[list[Host], int]:
    query = visible_to(HostRow.select(*HOST_FIELDS), HostRow, owner).order_by(HostRow.id)
    rows, total = _paged(query, page)
    return [Host(*row) for row in rows], total


def host(host_id: int, owner: int | None) -> Host:
    row = visible_to(HostRow.select(*HOST_FIELDS), HostRow, owner).where(HostRow.id == host_id).tuples().first()
    if row is None:
        raise NotFound(f"There is no host {host_id}.")
    return Host(*row)


def host_owner(host_id: int) -> int | None:
    """The id of the user a host belongs to, or None when there is no such host."""
    return HostRow.select(HostRow.user).where(HostRow.id == host_id).scalar()


def _check_host(candidate: Host, except_id: int | None = None) -> None:
    _existing_user(candidate.user)
    location_user = LocationRow.select(LocationRow.user).where(LocationRow.id == candidate.location).scalar()
    if location_user is None:
        raise InvalidInput(f"There is no location {candidate.location}.", field="location")
    if location_user != candidate.user:
        raise InvalidInput(
            f"Location {candidate.location} does not belong to user {candidate.user}: a host stands at one of "
            "its own user's locations.",
            field="location",
        )
    _existing_meter(candidate.meter)
    same_address = HostRow.select(HostRow.id).where(
        (HostRow.ip == candidate.ip)
        & (HostRow.port == candidate.port)
        & (HostRow.slave_address == candidate.slave_address)
    )
    if except_id is not None:
        same_address = same_address.where(HostRow.id != except_id)
    taken = same_address.scalar()
    if taken is not None:
        raise InvalidInput(
            f"Host {taken} is already {candidate.ip} port {candidate.port} slave_address {candidate.slave_address}; "
            "(ip, port, slave_address) names one device.",
            field="slave_address",
        )


def create_host(new: Host) -> Host:
    with _writing():
        _check_host(new)
        host_id = HostRow.insert(
            user=new.user,
            location=new.location,
            meter=new.meter,
            ip=new.ip,
            port=new.port,
            slave_address=new.slave_address,
            description=new.description,
        ).execute()
    return host(host_id, None)


def update_host(host_id: int, changes: dict) -> Host:
    """Apply the checked `changes` (domain.silesia.host_changes) to the host. Its location must still belong
    to its user, and a new meter model must have a register for every measurement assigned to the host."""
    with _writing():
        current = host(host_id, None)
        merged = merge_host(current, changes)
        _check_host(merged, except_id=host_id)
        if merged.meter != current.meter:
            assigned = [assignment.measurement for assignment in assignments(host_id)]
            unreadable = missing_registers(assigned, _register_names(merged.meter))
            if unreadable:
                raise InvalidInput(
                    f"Meter model {merged.meter} has no register for the assigned measurements "
                    f"{', '.join(unreadable)}; unassign them first.",
                    field="meter",
                )
        HostRow.update(
            user=merged.user,
            location=merged.location,
            meter=merged.meter,
            ip=merged.ip,
            port=merged.port,
            slave_address=merged.slave_address,
            description=merged.description,
        ).where(HostRow.id == host_id).execute()
        return host(host_id, None)


def delete_host(host_id: int) -> None:
    """The host and its assignments."""
    with _writing():
        host(host_id, None)
        HostMeasurementRow.delete().where(HostMeasurementRow.host == host_id).execute()
        HostRow.delete().where(HostRow.id == host_id).execute()


# --- assignments -----------------------------------------------------------------------------------------------


def _register_names(meter_id: int) -> set[str]:
    return {
        row[0]
        for row in MeasurementRow.select(MeasurementRow.name)
        .join(RegisterRow, on=RegisterRow.measurement == MeasurementRow.id)
        .where(RegisterRow.meter == meter_id)
        .tuples()
    }


def assignments(host_id: int, names: Iterable[str] | None = None) -> list[Assignment]:
    query = (
        HostMeasurementRow.select(HostMeasurementRow.id, HostMeasurementRow.host, MeasurementRow.name)
        .join(MeasurementRow, on=HostMeasurementRow.measurement == MeasurementRow.id)
        .where(HostMeasurementRow.host == host_id)
        .order_by(HostMeasurementRow.id)
    )
    if names is not None:
        query = query.where(MeasurementRow.name.in_(list(names)))
    return [Assignment(*row) for row in query.tuples()]


def assign(host_id: int, owner: int | None, names: list[str]) -> tuple[list[Assignment], bool]:
    """Assign the measurements to the host: (the host's assignments of these names in the order asked, whether
    any was new). A name with no register on the host's meter model is refused, and nothing is assigned."""
    with _writing():
        target = host(host_id, owner)
        ids = _measurement_ids(names)
        unreadable = missing_registers(names, _register_names(target.meter))
        if unreadable:
            raise InvalidInput(
                f"Meter model {target.meter} of host {host_id} has no register for {', '.join(unreadable)}.",
                field="measurements",
            )
        asked = list(dict.fromkeys(names))
        already = {assignment.measurement for assignment in assignments(host_id, asked)}
        new = [{"host": host_id, "measurement": ids[name]} for name in asked if name not in already]
        if new:
            HostMeasurementRow.insert_many(new).on_conflict_ignore().execute()
        by_name = {assignment.measurement: assignment for assignment in assignments(host_id, asked)}
    return [by_name[name] for name in asked], bool(new)


def unassign(host_id: int, owner: int | None, names: list[str]) -> int:
    """Unassign the measurements from the host (names not assigned are no error); returns how many were."""
    with _writing():
        host(host_id, owner)
        ids = _measurement_ids(names)
        return (
            HostMeasurementRow.delete()
            .where((HostMeasurementRow.host == host_id) & HostMeasurementRow.measurement.in_(list(ids.values())))
            .execute()
        )


# --- what the poller reads -----------------------------------------------------------------------------------


def polling_targets() -> list[PollTarget]:
    """Every host, by id, with the registers of its assigned measurements on its meter model, by address.
    A host with nothing assigned has no registers (there is nothing to read)."""
    host_rows = HostRow.select(HostRow.id, HostRow.ip, HostRow.port, HostRow.slave_address).order_by(HostRow.id)
    specs: dict[int, list[RegisterSpec]] = {}
    register_rows = (
        HostMeasurementRow.select(
            HostMeasurementRow.host,
            MeasurementRow.name,
            MeasurementRow.type,
            RegisterRow.address,
            RegisterRow.data_type,
            RegisterRow.function_code,
            RegisterRow.word_order,
            RegisterRow.scale,
            RegisterRow.unit,
        )
        .join(HostRow, on=HostMeasurementRow.host == HostRow.id)
        .switch(HostMeasurementRow)
        .join(MeasurementRow, on=HostMeasurementRow.measurement == MeasurementRow.id)
        .join(
            RegisterRow,
            on=(RegisterRow.measurement == MeasurementRow.id) & (RegisterRow.meter == HostRow.meter),
        )
        .order_by(HostMeasurementRow.host, RegisterRow.address, MeasurementRow.name)
    )
    for host_id, *fields in register_rows.tuples():
        specs.setdefault(host_id, []).append(RegisterSpec(*fields))
    return [
        PollTarget(host_id, ip, port, slave_address, tuple(specs.get(host_id, ())))
        for host_id, ip, port, slave_address in host_rows.tuples()
    ]
