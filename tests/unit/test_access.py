"""Closed mode's rules: device keys' form and hashing, OMS device names, bindings, and who may do what."""

from __future__ import annotations

import pytest

from domain.access import (
    OPEN,
    Caller,
    DeviceGrant,
    check_bindings,
    check_presented_key,
    issue_device_key,
    key_matches,
    may_export_oms,
    may_read_meter,
    may_write_meter,
    may_write_oms_device,
    oms_device_text,
    parse_oms_device,
    valid_meter_ids,
)
from domain.accounts import User
from domain.errors import InvalidInput, Unauthorized

ALICE = User(1, "alice", "alice@example.com", is_admin=False)
ADMIN = User(2, "root", "root@example.com", is_admin=True)
METER_KEY = Caller(grant=DeviceGrant(1, "hall", meter_ids=frozenset({"m-1"}), oms_devices=frozenset({(5317, 7)})))
GATEWAY = Caller(grant=DeviceGrant(2, "gateway", any_oms_device=True))


def test_a_key_is_stored_as_its_digest_and_found_by_the_characters_after_its_prefix():
    issued = issue_device_key()
    assert issued.key.startswith("joi_") and len(issued.key) == 68
    assert issued.lookup == issued.key[4:12] and issued.key not in issued.digest
    assert key_matches(issued.key, issued.digest)
    assert not key_matches(issue_device_key().key, issued.digest)


@pytest.mark.parametrize("presented", ["", "  ", "joi_" + "0" * 63, "joi_" + "A" * 64, "key " + "0" * 64])
def test_a_key_that_cannot_be_one_of_ours_is_refused_before_any_lookup(presented):
    with pytest.raises(Unauthorized):
        check_presented_key(presented)


def test_oms_devices_are_named_by_flag_letters_or_number():
    assert parse_oms_device("EFE:83251076") == parse_oms_device("5317:83251076") == (5317, 83251076)
    assert oms_device_text((5317, 83251076)) == "EFE:83251076"
    assert oms_device_text((65535, 1)) == "65535:1"
    for bad in ("EFE", "efe:1", "EFE:123456789", "70000:1", "EFE:1\n"):
        with pytest.raises(InvalidInput):
            parse_oms_device(bad)


def test_a_key_must_be_bound_to_something_and_meter_ids_are_the_apis():
    with pytest.raises(InvalidInput):
        check_bindings([], [], False)
    with pytest.raises(InvalidInput):
        check_bindings([], [(1, 1)], True)
    check_bindings([], [], True)
    assert valid_meter_ids(["b", "a", "b"]) == ["b", "a"]
    with pytest.raises(InvalidInput):
        valid_meter_ids(["m\n"])


def test_who_may_write_what():
    assert may_write_meter(OPEN, "any") and may_write_meter(Caller(user=ADMIN), "any")
    assert may_write_meter(METER_KEY, "m-1") and not may_write_meter(METER_KEY, "m-2")
    assert not may_write_meter(Caller(user=ALICE), "m-1") and not may_write_meter(GATEWAY, "m-1")
    assert may_write_oms_device(METER_KEY, (5317, 7)) and not may_write_oms_device(METER_KEY, (5317, 8))
    assert may_write_oms_device(GATEWAY, (1, 2)) and may_write_oms_device(Caller(user=ADMIN), (1, 2))


def test_who_may_read_what():
    assert may_read_meter(Caller(user=ALICE), "m-1", ["m-1"]) and not may_read_meter(Caller(user=ALICE), "m-2", ["m-1"])
    assert not may_read_meter(METER_KEY, "m-1", ["m-1"])
    assert may_read_meter(Caller(user=ADMIN), "m-9", []) and may_read_meter(OPEN, "m-9", [])
    assert may_export_oms(Caller(user=ADMIN)) and not may_export_oms(Caller(user=ALICE)) and not may_export_oms(GATEWAY)
