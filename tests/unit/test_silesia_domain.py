"""SilesiaSolar rules: host addresses, zip codes, coordinates, register layouts, assignment checks."""

import math

import pytest

from domain.errors import InvalidInput
from domain.silesia import (
    REGISTER_WORDS,
    Register,
    coordinate,
    host_address,
    measurement_names,
    merge_register,
    meter_name,
    missing_registers,
    new_host,
    new_location,
    register_layout,
    text,
    zip_code,
)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("127.0.0.1", "127.0.0.1"),
        (" 10.0.0.7 ", "10.0.0.7"),
        ("2001:0DB8:0000::1", "2001:db8::1"),
        ("::1", "::1"),
        ("Gateway.Example.COM", "gateway.example.com"),
        ("inverter-1", "inverter-1"),
        ("meter.local.", "meter.local"),
    ],
)
def test_host_addresses_are_stored_in_one_spelling(given, stored):
    assert host_address(given) == stored


@pytest.mark.parametrize(
    "bad", ["", "256.1.1.1", "1.2.3.4.5", "a b", "-x.example", "x-.example", "a" * 64, "x..y", "a_b.example", "ip\n"]
)
def test_bad_host_addresses_are_refused_naming_ip(bad):
    with pytest.raises(InvalidInput) as raised:
        host_address(bad)
    assert raised.value.field == "ip"


def test_a_253_character_host_name_is_the_longest_allowed():
    name = ".".join(["a" * 63] * 3 + ["b" * 61])
    assert len(name) == 253 and host_address(name) == name
    with pytest.raises(InvalidInput):
        host_address(name + "b")


@pytest.mark.parametrize("good", ["11-420", "SW1A 1AA", "1012 AB", "12345-6789", "00-950", "K1A 0B1", "1"])
def test_zip_codes_of_many_countries_pass(good):
    assert zip_code(good) == good


@pytest.mark.parametrize("bad", ["", "-11", "11-", "11_420", "12345678901", "11-420\n", "ü1"])
def test_bad_zip_codes_are_refused(bad):
    with pytest.raises(InvalidInput):
        zip_code(bad)


def test_coordinates_are_longitude_and_latitude_in_range():
    assert coordinate(180, "coord_x") == 180.0 and coordinate(-90, "coord_y") == -90.0
    assert coordinate(None, "coord_x") is None
    for value, field in [(180.01, "coord_x"), (90.5, "coord_y"), (math.nan, "coord_x"), (math.inf, "coord_y")]:
        with pytest.raises(InvalidInput):
            coordinate(value, field)


def test_text_is_trimmed_bounded_and_free_of_control_characters():
    assert text("  Sunny Street ", "street", 20) == "Sunny Street"
    for bad in ("", "   ", "x" * 21, "a\tb", "a\x00b"):
        with pytest.raises(InvalidInput):
            text(bad, "street", 20)
    assert text("", "description", 5, allow_empty=True) == ""


@pytest.mark.parametrize(("data_type", "last_address"), [(1, 65535), (2, 65534), (3, 65534)])
def test_every_word_of_a_register_lies_within_the_modbus_address_range(data_type, last_address):
    register_layout(last_address, data_type, 4, "big", 1.0)
    with pytest.raises(InvalidInput) as raised:
        register_layout(last_address + 1, data_type, 4, "big", 1.0)
    assert raised.value.field == "address"
    assert REGISTER_WORDS[data_type] == (1 if data_type == 1 else 2)


@pytest.mark.parametrize(
    ("layout", "field"),
    [
        ((0, 0, 4, "big", 1.0), "type"),
        ((0, 3, 1, "big", 1.0), "function_code"),
        ((0, 3, 16, "big", 1.0), "function_code"),
        ((0, 3, 4, "mixed", 1.0), "word_order"),
        ((0, 3, 4, "big", 0.0), "scale"),
        ((0, 3, 4, "big", math.nan), "scale"),
        ((0, 3, 4, "big", 1e-13), "scale"),
        ((-1, 1, 4, "big", 1.0), "address"),
    ],
)
def test_bad_register_layouts_name_the_field(layout, field):
    with pytest.raises(InvalidInput) as raised:
        register_layout(*layout)
    assert raised.value.field == field


def test_a_negative_scale_is_a_valid_multiplier():
    register_layout(0, 2, 3, "little", -0.1)


def test_a_register_change_is_checked_against_the_merged_register():
    current = Register(1, 1, "active_power", 65535, "W", 1, 4)
    with pytest.raises(InvalidInput):
        merge_register(current, {"type": 3})  # fine for one word at 65535, not for two
    moved = merge_register(current, {"address": 10, "type": 3, "word_order": "little"})
    assert (moved.address, moved.data_type, moved.word_order) == (10, 3, "little")


def test_missing_registers_keeps_the_order_asked_and_names_each_once():
    assert missing_registers(["b", "a", "b", "c"], {"a"}) == ["b", "c"]


def test_measurement_names_drop_repeats_and_refuse_malformed_names():
    assert measurement_names({"measurements": ["a", "b", "a"]}) == ["a", "b"]
    with pytest.raises(InvalidInput):
        measurement_names({"measurements": ["Bad-Name"]})


def test_meter_names_allow_model_spellings():
    for good in ("sdm630", "SDM120-M", "em24.din", "x"):
        assert meter_name(good) == good
    for bad in ("", "sdm 630", "-x", "x" * 65):
        with pytest.raises(InvalidInput):
            meter_name(bad)


def test_required_fields_are_named_when_missing():
    with pytest.raises(InvalidInput) as raised:
        new_location(1, {"street": "a", "number": "1", "city": "c"})
    assert raised.value.field == "zip_code"
    with pytest.raises(InvalidInput) as raised:
        new_host({"ip": "127.0.0.1", "port": 1, "slave_address": 1, "user": 1, "location": 1})
    assert raised.value.field == "meter"
