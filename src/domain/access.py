"""Closed mode (REQUIRE_AUTH=1): who may write which JOI meter or OMS device, and who may read which meter.

Device keys are `joi_` and 64 random hex characters. As with account tokens, only a SHA-256 digest is stored:
the first 8 hex characters after `joi_` find the row, the digest is compared in constant time. A key is
bound to the JOI meter ids and the OMS devices (manufacturer and identification number) it may write; a
gateway key may instead be bound to every OMS device, since a gateway relays whatever meters it hears.

A caller is the open mode (everyone may do everything, as the seeds document), an admin (everything), a
device key (writes for what it is bound to, nothing else) or a user (reads of the meters linked to them).
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from domain.accounts import User, token_digest
from domain.errors import InvalidInput, Unauthorized
from domain.oms import manufacturer_code

KEY_PREFIX = "joi_"
KEY_HEX_LENGTH = 64
KEY_LOOKUP_LENGTH = 8
KEY_NAME_MAX_LENGTH = 100
MAX_BINDINGS = 1000

_KEY = re.compile(r"joi_[0-9a-f]{64}")
_METER_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_OMS_DEVICE = re.compile(r"([A-Z]{3}|[0-9]{1,5}):([0-9]{1,8})")

OmsDeviceId = tuple[int, int]  # (manufacturer, identnr)


@dataclass(frozen=True)
class IssuedDeviceKey:
    """A key as handed to its owner once; only `lookup` and `digest` are ever stored."""

    key: str
    lookup: str
    digest: str


@dataclass(frozen=True)
class DeviceGrant:
    """What a device key may write."""

    key_id: int
    name: str
    meter_ids: frozenset[str] = frozenset()
    oms_devices: frozenset[OmsDeviceId] = frozenset()
    any_oms_device: bool = False


@dataclass(frozen=True)
class Caller:
    """Who is asking: nobody in particular (open mode), a user (admin or not), or a device key."""

    open_mode: bool = False
    user: User | None = None
    grant: DeviceGrant | None = field(default=None)

    @property
    def is_admin(self) -> bool:
        return self.user is not None and self.user.is_admin


OPEN = Caller(open_mode=True)


# --- keys -----------------------------------------------------------------------------------------------------


def issue_device_key() -> IssuedDeviceKey:
    key = KEY_PREFIX + secrets.token_hex(KEY_HEX_LENGTH // 2)
    return IssuedDeviceKey(key, key_lookup(key), token_digest(key))


def key_lookup(key: str) -> str:
    return key[len(KEY_PREFIX) : len(KEY_PREFIX) + KEY_LOOKUP_LENGTH]


def check_presented_key(key: str) -> str:
    """The key as sent in X-API-Key, refused (401) when it cannot be one of ours."""
    key = key.strip()
    if not key:
        raise Unauthorized("The X-API-Key header is empty: send the device key an admin made for this device")
    if not _KEY.fullmatch(key):
        raise Unauthorized("The device key is malformed: a device key is joi_ and 64 lowercase hexadecimal characters")
    return key


def key_matches(key: str, stored_digest: str) -> bool:
    return hmac.compare_digest(token_digest(key).encode(), stored_digest.encode())


def valid_key_name(name: str) -> str:
    name = name.strip()
    if (
        len(name) > KEY_NAME_MAX_LENGTH
        or any(ord(character) < 32 or ord(character) == 127 for character in name)
        or not _encodable(name)
    ):
        raise InvalidInput(
            f"name must be at most {KEY_NAME_MAX_LENGTH} characters without control characters", field="name"
        )
    return name


def _encodable(text: str) -> bool:
    """A lone surrogate cannot be stored as UTF-8 (in either database)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --- what a key is bound to -------------------------------------------------------------------------------------


def valid_meter_ids(meter_ids: Iterable[str], field_name: str = "meter_ids") -> list[str]:
    """Distinct, in the order given; each as the JOI API's meter ids are (1 to 128 of A-Z a-z 0-9 . _ : -)."""
    distinct = list(dict.fromkeys(meter_ids))
    if len(distinct) > MAX_BINDINGS:
        raise InvalidInput(f"{field_name}: at most {MAX_BINDINGS} meters", field=field_name)
    for meter_id in distinct:
        if not isinstance(meter_id, str) or not _METER_ID.fullmatch(meter_id):
            raise InvalidInput(
                f"{field_name}: a meter id is 1 to 128 of A-Z a-z 0-9 . _ : - characters", field=field_name
            )
    return distinct


def parse_oms_device(text: str, field_name: str = "oms_devices") -> OmsDeviceId:
    """`MANUFACTURER:IDENTNR`, the manufacturer as its three FLAG letters (EFE) or its number (5317)."""
    match = _OMS_DEVICE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidInput(
            f"{field_name}: an OMS device is MANUFACTURER:IDENTNR, e.g. EFE:83251076 or 5317:83251076",
            field=field_name,
        )
    manufacturer_text, identnr = match.groups()
    manufacturer = _flag_number(manufacturer_text) if manufacturer_text.isalpha() else int(manufacturer_text)
    if manufacturer > 65535:
        raise InvalidInput(f"{field_name}: a manufacturer number is at most 65535", field=field_name)
    return manufacturer, int(identnr)


def valid_oms_devices(texts: Iterable[str], field_name: str = "oms_devices") -> list[OmsDeviceId]:
    devices = list(dict.fromkeys(parse_oms_device(text, field_name) for text in texts))
    if len(devices) > MAX_BINDINGS:
        raise InvalidInput(f"{field_name}: at most {MAX_BINDINGS} devices", field=field_name)
    return devices


def oms_device_text(device: OmsDeviceId) -> str:
    """The manufacturer's FLAG letters when its number packs them (as the export's `flag` mode), else the number."""
    manufacturer, identnr = device
    return f"{manufacturer_code(manufacturer)}:{identnr}"


def check_bindings(meter_ids: Collection[str], oms_devices: Collection[OmsDeviceId], any_oms_device: bool) -> None:
    if not meter_ids and not oms_devices and not any_oms_device:
        raise InvalidInput(
            "a device key must be bound to at least one meter id, OMS device, or to any OMS device", field="meter_ids"
        )
    if any_oms_device and oms_devices:
        raise InvalidInput("a key bound to any OMS device lists no OMS devices", field="oms_devices")


def _flag_number(letters: str) -> int:
    first, second, third = (ord(letter) - 64 for letter in letters)
    return (first << 10) | (second << 5) | third


# --- decisions --------------------------------------------------------------------------------------------------


def may_write_meter(caller: Caller, meter_id: str) -> bool:
    if caller.open_mode or caller.is_admin:
        return True
    return caller.grant is not None and meter_id in caller.grant.meter_ids


def may_write_oms_device(caller: Caller, device: OmsDeviceId) -> bool:
    if caller.open_mode or caller.is_admin:
        return True
    grant = caller.grant
    return grant is not None and (grant.any_oms_device or device in grant.oms_devices)


def may_read_meter(caller: Caller, meter_id: str, linked_meter_ids: Collection[str]) -> bool:
    """Device keys write and never read; a user reads the meters linked to them."""
    if caller.open_mode or caller.is_admin:
        return True
    return caller.user is not None and meter_id in linked_meter_ids


def may_export_oms(caller: Caller) -> bool:
    """The OMS export and device list hold every device's data: admins (billing staff log in as one) only."""
    return caller.open_mode or caller.is_admin


def may_operate_mailings(caller: Caller) -> bool:
    """Clients (their phone numbers) and mailings (texts sent through the operator's paid send API): admins
    (operators log in as one) only, in closed mode."""
    return caller.open_mode or caller.is_admin


def write_refusal(caller: Caller, what: str) -> str:
    if caller.user is not None:
        return f"your account may not write {what}: writes need its device key (or an admin's token)"
    return f"this device key is not bound to {what}; an admin binds keys (python src/cli.py create-device-key)"
