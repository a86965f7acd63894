import dataclasses
import random
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation, localcontext

import pytest
from dsmr_parser import telegram_specifications
from dsmr_parser.parsers import TelegramParser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.errors import InvalidInput
from domain.telegram import (
    MBusReading,
    Telegram,
    TelegramCRCError,
    TelegramError,
    TelegramParseError,
    crc16_arc,
    parse_telegram,
)
from tests.support.telegrams import SEED_TELEGRAM, VARIANTS, assemble_telegram, make_telegram

V5_WITH_GAS = [
    "/ISk5\\2MT382-1000",
    "",
    "1-3:0.2.8(50)",
    "0-0:1.0.0(190415093012S)",
    "0-0:96.1.1(4530303334303031353934373534343134)",
    "1-0:1.8.1(012345.678*kWh)",
    "1-0:1.8.2(023456.789*kWh)",
    "1-0:2.8.1(000123.456*kWh)",
    "1-0:2.8.2(000234.567*kWh)",
    "0-0:96.14.0(0001)",
    "1-0:1.7.0(01.234*kW)",
    "1-0:2.7.0(00.000*kW)",
    "0-0:96.7.21(00008)",
    "0-0:96.7.9(00002)",
    "1-0:99.97.0(2)(0-0:96.7.19)(180101000001W)(0000000240*s)(180612101010S)(0000001800*s)",
    "1-0:32.32.0(00001)",
    "1-0:32.36.0(00000)",
    "0-0:96.13.0()",
    "1-0:32.7.0(231.4*V)",
    "1-0:52.7.0(229.8*V)",
    "1-0:72.7.0(230.1*V)",
    "1-0:31.7.0(003*A)",
    "1-0:51.7.0(001*A)",
    "1-0:71.7.0(002*A)",
    "1-0:21.7.0(00.612*kW)",
    "1-0:41.7.0(00.201*kW)",
    "1-0:61.7.0(00.421*kW)",
    "1-0:22.7.0(00.000*kW)",
    "1-0:42.7.0(00.000*kW)",
    "1-0:62.7.0(00.000*kW)",
    "0-1:24.1.0(003)",
    "0-1:96.1.0(4730303332333435363738393031323334)",
    "0-1:24.2.1(190415092500S)(03210.987*m3)",
]


def v5_telegram(*changes: tuple[str, str], line_ending: str = "\r\n", stated_crc: str | None = None) -> str:
    """The V5_WITH_GAS telegram with lines replaced (old, new) or added (None, new), CRC recomputed."""
    lines = list(V5_WITH_GAS)
    for old, new in changes:
        if old is None:
            lines.append(new)
        else:
            lines[lines.index(old)] = new
    return assemble_telegram(lines, line_ending=line_ending, stated_crc=stated_crc)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# --- what a telegram yields ------------------------------------------------------------------------------


def test_a_v5_telegram_with_gas_yields_every_register():
    telegram = parse_telegram(v5_telegram())

    assert telegram == Telegram(
        header="ISk5\\2MT382-1000",
        version="50",
        timestamp=utc(2019, 4, 15, 7, 30, 12),
        equipment_id="E0034001594754414",
        electricity_delivered_1=Decimal("12345.678"),
        electricity_delivered_2=Decimal("23456.789"),
        electricity_returned_1=Decimal("123.456"),
        electricity_returned_2=Decimal("234.567"),
        electricity_delivered_total=Decimal("35802.467"),
        electricity_returned_total=Decimal("358.023"),
        electricity_currently_delivered=Decimal("1.234"),
        electricity_currently_returned=Decimal("0"),
        tariff=1,
        phase_currently_delivered_l1=Decimal("0.612"),
        phase_currently_delivered_l2=Decimal("0.201"),
        phase_currently_delivered_l3=Decimal("0.421"),
        phase_currently_returned_l1=Decimal("0"),
        phase_currently_returned_l2=Decimal("0"),
        phase_currently_returned_l3=Decimal("0"),
        phase_voltage_l1=Decimal("231.4"),
        phase_voltage_l2=Decimal("229.8"),
        phase_voltage_l3=Decimal("230.1"),
        phase_current_l1=Decimal("3"),
        phase_current_l2=Decimal("1"),
        phase_current_l3=Decimal("2"),
        mbus=(
            MBusReading(
                channel=1,
                device_type=3,
                equipment_id="G0032345678901234",
                timestamp=utc(2019, 4, 15, 7, 25),
                value=Decimal("3210.987"),
                unit="m3",
            ),
        ),
        crc_ok=True,
    )
    assert telegram.gas_delivered == Decimal("3210.987")
    assert telegram.gas_timestamp == utc(2019, 4, 15, 7, 25)


def test_a_parsed_telegram_cannot_be_changed():
    telegram = parse_telegram(v5_telegram())

    with pytest.raises(dataclasses.FrozenInstanceError):
        telegram.electricity_delivered_1 = Decimal(0)


def test_the_seed_telegram_parses_when_crc_verification_is_off():
    telegram = parse_telegram(SEED_TELEGRAM, verify_crc=False)

    assert telegram.header == "KFM5KAIFA-METER"
    assert telegram.version == "42"
    assert telegram.timestamp == utc(2016, 3, 3, 15, 43, 47)
    assert telegram.equipment_id is None  # masked as ****
    assert telegram.electricity_delivered_1 == Decimal("1073.079")
    assert telegram.electricity_delivered_2 == Decimal("1263.199")
    assert telegram.electricity_returned_1 == telegram.electricity_returned_2 == Decimal(0)
    assert telegram.electricity_currently_delivered == Decimal("0.143")
    assert telegram.tariff == 2
    assert telegram.phase_currently_delivered_l1 == Decimal("0.143")
    assert telegram.phase_current_l1 == Decimal(0)
    assert telegram.mbus == ()
    assert telegram.gas_delivered is None
    assert telegram.crc_ok is False


def test_the_seed_telegram_is_rejected_with_the_computed_and_the_stated_crc():
    with pytest.raises(TelegramCRCError) as raised:
        parse_telegram(SEED_TELEGRAM)

    assert str(raised.value) == "CRC mismatch: computed A97E, telegram states 74B0"
    assert raised.value.detail == str(raised.value)
    assert (raised.value.computed, raised.value.stated) == (0xA97E, "74B0")
    assert isinstance(raised.value, InvalidInput)


# --- CRC ---------------------------------------------------------------------------------------------------


def bitwise_crc16_arc(data: bytes) -> int:
    crc = 0
    for byte in data:
        for bit in range(8):
            if (crc ^ (byte >> bit)) & 1:
                crc = (crc >> 1) ^ 0xA001
            else:
                crc >>= 1
    return crc


def test_crc16_arc_gives_the_catalogue_check_value():
    assert crc16_arc(b"123456789") == 0xBB3D
    assert crc16_arc(b"") == 0


@given(st.binary(max_size=300))
def test_crc16_arc_agrees_with_a_bit_by_bit_reference(data):
    assert crc16_arc(data) == bitwise_crc16_arc(data)


def test_a_changed_digit_is_caught_by_the_crc():
    original = v5_telegram()
    corrupted = original.replace("012345.678", "012345.679")

    with pytest.raises(TelegramCRCError, match=r"^CRC mismatch: computed [0-9A-F]{4}, telegram states "):
        parse_telegram(corrupted)
    assert parse_telegram(corrupted, verify_crc=False).crc_ok is False


def test_a_lowercase_crc_is_accepted():
    telegram = v5_telegram()
    crc = telegram.rstrip()[-4:]

    assert parse_telegram(telegram.rstrip()[:-4] + crc.lower()).crc_ok is True


def test_a_v5_telegram_without_crc_is_rejected_when_verifying():
    telegram = v5_telegram(stated_crc="")

    with pytest.raises(TelegramParseError, match="CRC is missing"):
        parse_telegram(telegram)
    assert parse_telegram(telegram, verify_crc=False).crc_ok is None


@pytest.mark.parametrize("trailer", ["!12", "!12345", "!XYZW", "!74B0 junk"])
def test_a_malformed_crc_is_named(trailer):
    telegram = v5_telegram().rsplit("!", 1)[0] + trailer + "\r\n"

    with pytest.raises(TelegramParseError, match="4 hex digits"):
        parse_telegram(telegram, verify_crc=False)


def test_line_feed_only_telegrams_parse_and_check_their_crc_over_the_bytes_sent():
    crlf = parse_telegram(v5_telegram())
    lf = parse_telegram(v5_telegram(line_ending="\n"))

    assert lf == crlf


def test_noise_before_the_header_and_whitespace_after_the_crc_are_tolerated():
    telegram = "\x00\x7f garbage\r\n" + v5_telegram() + " \r\n\r\n"

    assert parse_telegram(telegram) == parse_telegram(v5_telegram())


def test_errors_count_lines_from_the_start_of_the_text_sent():
    telegram = "noise\r\n" + v5_telegram(("1-0:1.8.1(012345.678*kWh)", "1-0:1.8.1(01234x.678*kWh)"))

    with pytest.raises(TelegramParseError, match=r"^line 7 '1-0:1.8.1\(01234x.678\*kWh\)'"):
        parse_telegram(telegram)


def test_a_utf8_decoded_telegram_checks_its_crc_over_utf8_bytes():
    telegram = v5_telegram(("/ISk5\\2MT382-1000", "/Lux5\u253833635_D"))

    assert parse_telegram(telegram).header == "Lux5\u253833635_D"


def test_a_latin1_decoded_telegram_checks_its_crc_over_latin1_bytes():
    body = "".join(line + "\r\n" for line in ["/ABC5 m\u00e9ter", "", "1-3:0.2.8(50)"]) + "!"
    telegram = body + f"{crc16_arc(body.encode('latin-1')):04X}\r\n"

    assert parse_telegram(telegram).crc_ok is True


# --- timestamps --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stated", "expected"),
    [
        ("190415093012S", utc(2019, 4, 15, 7, 30, 12)),
        ("191215093012W", utc(2019, 12, 15, 8, 30, 12)),
        ("191027023000S", utc(2019, 10, 27, 0, 30)),  # the hour that happens twice, first time
        ("191027023000W", utc(2019, 10, 27, 1, 30)),  # ... second time
        ("190704120000", utc(2019, 7, 4, 10, 0)),  # no flag: Amsterdam local time, summer
        ("190104120000", utc(2019, 1, 4, 11, 0)),  # no flag: Amsterdam local time, winter
    ],
)
def test_timestamps_follow_the_season_flag_and_come_out_in_utc(stated, expected):
    telegram = parse_telegram(v5_telegram(("0-0:1.0.0(190415093012S)", f"0-0:1.0.0({stated})")))

    assert telegram.timestamp == expected
    assert telegram.timestamp.utcoffset().total_seconds() == 0


@pytest.mark.parametrize("stated", ["191315093012W", "190230120000W", "190415253012S", "19041509301X", "1904150930W"])
def test_an_invalid_timestamp_names_its_line(stated):
    line = f"0-0:1.0.0({stated})"

    with pytest.raises(TelegramParseError) as raised:
        parse_telegram(v5_telegram(("0-0:1.0.0(190415093012S)", line)))

    assert str(raised.value).startswith(f"line 4 {line!r}: ")
    assert raised.value.line_number == 4
    assert raised.value.line == line


# --- line syntax -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_line",
    ["hello world", "1-0:1.8.1", "1-0:1.8.1(000001.000*kWh", "(00001.000)", "1-0:1.8.1(1.0*kWh)x", "1-0 1.8.1(1)"],
)
def test_a_line_that_is_not_obis_syntax_names_the_line(bad_line):
    with pytest.raises(TelegramParseError, match=rf"^line 34 {_escaped(bad_line)}: "):
        parse_telegram(v5_telegram((None, bad_line)))


def _escaped(line: str) -> str:
    return re.escape(repr(line))


@pytest.mark.parametrize(
    "bad_line",
    [
        "1-0:1.8.1(12a.5*kWh)",
        "1-0:1.8.1(1.2.3*kWh)",
        "1-0:1.8.1(1e5*kWh)",
        "1-0:1.8.1(\u0661\u0662*kWh)",
        "1-0:1.8.1(1*kWh)(2*kWh)",
        "0-0:96.14.0(two)",
        "0-1:24.2.1(190415092500S)",
        "1-3:0.2.8(5.0)",
    ],
)
def test_a_malformed_value_of_a_kept_register_names_its_line(bad_line):
    with pytest.raises(TelegramParseError, match=rf"^line 34 {_escaped(bad_line)}: "):
        parse_telegram(v5_telegram((None, bad_line)))


def test_unknown_obis_lines_and_their_values_are_skipped():
    telegram = parse_telegram(
        v5_telegram(
            (None, "1-0:14.7.0(50.01*Hz)"),
            (None, "0-0:96.99.8(whatever text)(more)"),
            (None, "1-0:13.7.0()"),
        )
    )

    assert telegram == parse_telegram(v5_telegram())


def test_multi_value_and_empty_lines_do_not_disturb_the_registers():
    telegram = parse_telegram(
        v5_telegram(
            (None, "1-0:99.97.0(10)(0-0:96.7.19)" + "(000101000001W)(2147483647*s)" * 10),
            (None, "0-0:96.13.1()"),
            (None, "0-0:98.1.0(1)(1-0:1.6.0)(1-0:1.6.0)(200501000000S)(632525252525W)(03.695*kW)"),
        )
    )

    assert telegram.electricity_delivered_1 == Decimal("12345.678")


def test_an_empty_register_reads_as_absent():
    telegram = parse_telegram(v5_telegram(("1-0:2.7.0(00.000*kW)", "1-0:2.7.0()")))

    assert telegram.electricity_currently_returned is None


@pytest.mark.parametrize("digits", [25, 400, 5000])
def test_huge_numbers_are_rejected_not_overflowed(digits):
    with pytest.raises(TelegramParseError, match="not a number"):
        parse_telegram(v5_telegram(("1-0:1.8.1(012345.678*kWh)", f"1-0:1.8.1({'9' * digits}*kWh)")))
    with pytest.raises(TelegramParseError, match="not a whole number"):
        parse_telegram(v5_telegram(("0-0:96.14.0(0001)", f"0-0:96.14.0({'9' * digits})")))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no header line"),
        ("1-0:1.8.1(000001.000*kWh)\r\n!\r\n", "no header line"),
        ("/KFM5KAIFA-METER\r\n\r\n1-0:1.8.1(000001.000*kWh)\r\n", "no end line"),
        ("/\r\n\r\n!\r\n", "no meter identification"),
    ],
)
def test_a_telegram_without_header_or_end_is_rejected(text, message):
    with pytest.raises(TelegramParseError, match=message):
        parse_telegram(text)


def test_text_that_is_not_a_string_is_rejected():
    with pytest.raises(TelegramParseError, match="a telegram is text"):
        parse_telegram(SEED_TELEGRAM.encode())  # type: ignore[arg-type]


# --- equipment identifiers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stated", "expected"),
    [
        ("4B384547303034303436333935353037", "K8EG004046395507"),
        ("00000000000000", "00000000000000"),  # hex, but not printable ASCII: kept as sent
        ("3960221976967177082151037881335713", "3960221976967177082151037881335713"),
        ("E0025001234567890", "E0025001234567890"),  # odd length: not hex
        ("*******************************", None),  # masked
        ("", None),
    ],
)
def test_equipment_ids_are_decoded_from_hex_ascii_when_they_are_hex_ascii(stated, expected):
    telegram = parse_telegram(v5_telegram(("0-0:96.1.1(4530303334303031353934373534343134)", f"0-0:96.1.1({stated})")))

    assert telegram.equipment_id == expected


# --- variants ------------------------------------------------------------------------------------------------


def test_a_dsmr_v2_2_telegram_has_no_crc_and_reads_gas_from_the_value_line():
    text = assemble_telegram(
        [
            "/ISk5\\2MT382-1004",
            "",
            "0-0:96.1.1(00000000000000)",
            "1-0:1.8.1(00012.345*kWh)",
            "1-0:1.8.2(00023.456*kWh)",
            "1-0:2.8.1(00000.000*kWh)",
            "1-0:2.8.2(00000.000*kWh)",
            "0-0:96.14.0(0001)",
            "1-0:1.7.0(0001.01*kW)",
            "1-0:2.7.0(0000.00*kW)",
            "0-0:17.0.0(0999.00*kW)",
            "0-0:96.3.10(1)",
            "0-0:96.13.1()",
            "0-0:96.13.0()",
            "0-1:24.1.0(3)",
            "0-1:96.1.0(000000000000)",
            "0-1:24.3.0(161107190000)(00)(60)(1)(0-1:24.2.1)(m3)",
            "(00001.001)",
            "0-1:24.4.0(1)",
        ],
        stated_crc="",
    )

    telegram = parse_telegram(text)

    assert (telegram.version, telegram.timestamp, telegram.crc_ok) == (None, None, None)
    assert telegram.electricity_delivered_1 == Decimal("12.345")
    assert telegram.electricity_currently_delivered == Decimal("1.01")
    assert telegram.mbus == (
        MBusReading(
            channel=1,
            device_type=3,
            equipment_id="000000000000",
            timestamp=utc(2016, 11, 7, 18, 0),  # Amsterdam winter time
            value=Decimal("1.001"),
            unit="m3",
        ),
    )
    assert telegram.gas_delivered == Decimal("1.001")


def test_a_legacy_gas_line_without_its_value_line_is_rejected():
    text = assemble_telegram(
        ["/ISk5\\2MT382-1000", "", "0-1:24.3.0(090212160000)(00)(60)(1)(0-1:24.2.1)(m3)", "0-1:24.4.0(1)"],
        stated_crc="",
    )

    with pytest.raises(TelegramParseError, match=r"^line 3 '0-1:24.3.0.*followed by its value line"):
        parse_telegram(text)


def test_a_value_line_without_a_legacy_gas_line_before_it_is_rejected():
    text = assemble_telegram(["/ISk5\\2MT382-1000", "", "0-0:96.13.0()", "(00001.001)"], stated_crc="")

    with pytest.raises(TelegramParseError, match=r"^line 4 '\(00001.001\)': a value line must follow"):
        parse_telegram(text)


def test_a_belgian_telegram_reads_its_version_and_gas_from_24_2_3():
    telegram = parse_telegram(
        make_telegram("be", random.Random(7), gas_delivered=Decimal("112.384"), second_channel=None)
    )

    assert telegram.header.startswith("FLU5\\")
    assert telegram.version == "50217"
    assert telegram.equipment_id.startswith("1SAG")
    assert telegram.gas_delivered == Decimal("112.384")
    assert telegram.mbus[0].device_type == 3


def test_a_belgian_meter_without_gas_sends_a_placeholder_date_that_reads_as_no_date():
    lines = [
        "/FLU5\\253769484_A",
        "",
        "0-0:96.1.4(50217)",
        "0-0:1.0.0(200512135409S)",
        "1-0:1.8.1(000000.034*kWh)",
        "0-1:24.1.0(003)",
        "0-1:96.1.1(12345678901234567890123456789012)",
        "0-1:24.4.0(0)",
        "0-1:24.2.3(632525252525W)(00000.000)",
    ]

    telegram = parse_telegram(assemble_telegram(lines))

    assert telegram.mbus == (
        MBusReading(
            channel=1,
            device_type=3,
            equipment_id="12345678901234567890123456789012",
            timestamp=None,
            value=Decimal(0),
            unit=None,
        ),
    )


def test_a_luxembourg_meter_books_its_totals_on_tariff_1():
    telegram = parse_telegram(
        make_telegram(
            "lu",
            random.Random(3),
            electricity_delivered_total=Decimal("5675.956"),
            electricity_returned_total=Decimal("0.002"),
            equipment_id="SAG1030700026568",
        )
    )

    assert telegram.version == "50"
    assert telegram.equipment_id == "SAG1030700026568"  # from 0-0:42.0.0
    assert (telegram.electricity_delivered_1, telegram.electricity_delivered_2) == (Decimal("5675.956"), 0)
    assert (telegram.electricity_returned_1, telegram.electricity_returned_2) == (Decimal("0.002"), 0)
    assert telegram.electricity_delivered_total == Decimal("5675.956")
    assert telegram.electricity_returned_total == Decimal("0.002")
    assert telegram.tariff is None


def test_tariff_registers_win_over_a_total_when_a_meter_sends_both():
    telegram = parse_telegram(v5_telegram((None, "1-0:1.8.0(099999.999*kWh)")))

    assert telegram.electricity_delivered_1 == Decimal("12345.678")
    assert telegram.electricity_delivered_total == Decimal("99999.999")


# --- gas channel selection -------------------------------------------------------------------------------------


def mbus(channel: int, device_type: int | None, value: str | None) -> MBusReading:
    return MBusReading(channel=channel, device_type=device_type, value=None if value is None else Decimal(value))


@pytest.mark.parametrize(
    ("channels", "expected"),
    [
        ((), None),
        ((mbus(1, 7, "5"), mbus(2, 3, "9")), Decimal(9)),  # water on 1, gas on 2
        ((mbus(1, 3, None), mbus(2, 3, "4")), Decimal(4)),  # an empty gas channel is passed over
        ((mbus(1, None, "6"),), Decimal(6)),  # the only channel, type unknown
        ((mbus(1, None, "6"), mbus(2, None, "7")), None),  # which one is gas? none is guessed
        ((mbus(1, 7, "5"),), None),  # water only
    ],
)
def test_the_gas_reading_comes_from_the_gas_channel(channels, expected):
    assert Telegram(header="X", mbus=channels).gas_delivered == expected


# --- the generator round-trips its values ---------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_generated_telegrams_state_the_values_they_were_given(variant):
    moment = utc(2021, 6, 1, 12, 0, 7)
    overrides = {"timestamp": moment, "gas_delivered": Decimal("123.456"), "equipment_id": "E0012345678901234"}
    if variant == "lu":
        overrides["electricity_delivered_total"] = Decimal("42.001")
    else:
        overrides["electricity_delivered_1"] = Decimal("42.001")

    telegram = parse_telegram(make_telegram(variant, random.Random(11), **overrides))

    assert telegram.electricity_delivered_1 == Decimal("42.001")
    assert telegram.equipment_id == "E0012345678901234"
    assert telegram.gas_delivered == Decimal("123.456")
    assert telegram.timestamp == (None if variant in ("v2.2", "v3") else moment)
    assert telegram.crc_ok is (None if variant in ("v2.2", "v3") else True)


def test_the_generator_refuses_overrides_it_does_not_know():
    with pytest.raises(TypeError, match="unknown overrides"):
        make_telegram("v5", random.Random(1), electricity_deliverd_1=Decimal(1))


# --- cross-check with dsmr-parser ------------------------------------------------------------------------------

SPECIFICATION_BY_VARIANT = {
    "v2.2": telegram_specifications.V2_2,
    "v3": telegram_specifications.V3,
    "v4": telegram_specifications.V4,
    "v5": telegram_specifications.V5,
    "be": telegram_specifications.BELGIUM_FLUVIUS,
    "lu": telegram_specifications.LUXEMBOURG_SMARTY,
}
TELEGRAMS_PER_VARIANT = 250


def _value(result, *names: str):
    for name in names:
        found = getattr(result, name, None)
        if found is not None:
            return found.value
    return None


def _hex_ascii_decoded(raw: str | None) -> str | None:
    if raw is None:
        return None
    try:
        text = bytes.fromhex(raw).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return raw
    return text if text.isprintable() else raw


def _mbus_according_to_dsmr_parser(result) -> tuple[MBusReading, ...]:
    readings = []
    for device in getattr(result, "MBUS_DEVICES", []):
        device_type = _value(device, "MBUS_DEVICE_TYPE", "DEVICE_TYPE")
        reading = next(
            (
                getattr(device, name)
                for name in ("MBUS_METER_READING", "HOURLY_GAS_METER_READING", "GAS_METER_READING")
                if hasattr(device, name)
            ),
            None,
        )
        readings.append(
            MBusReading(
                channel=device.channel_id,
                device_type=None if device_type is None else int(device_type),
                equipment_id=_hex_ascii_decoded(
                    _value(device, "MBUS_EQUIPMENT_IDENTIFIER", "EQUIPMENT_IDENTIFIER_GAS")
                ),
                timestamp=reading.datetime if reading else None,
                value=reading.value if reading else None,
                unit=reading.unit if reading else None,
            )
        )
    return tuple(sorted(readings, key=lambda reading: reading.channel))


def _registers_according_to_dsmr_parser(result, tariff_1: str, tariff_2: str, total: str) -> tuple:
    first, second, stated_total = _value(result, tariff_1), _value(result, tariff_2), _value(result, total)
    if first is None and second is None and stated_total is not None:  # a meter with totals only
        return stated_total, Decimal(0), stated_total
    return first, second, stated_total if stated_total is not None else first + second


def _fields_according_to_dsmr_parser(result, text: str, variant: str) -> dict:
    delivered = _registers_according_to_dsmr_parser(
        result, "ELECTRICITY_USED_TARIFF_1", "ELECTRICITY_USED_TARIFF_2", "ELECTRICITY_IMPORTED_TOTAL"
    )
    returned = _registers_according_to_dsmr_parser(
        result, "ELECTRICITY_DELIVERED_TARIFF_1", "ELECTRICITY_DELIVERED_TARIFF_2", "ELECTRICITY_EXPORTED_TOTAL"
    )
    tariff = _value(result, "ELECTRICITY_ACTIVE_TARIFF")
    mbus_readings = _mbus_according_to_dsmr_parser(result)
    gas = next((m for m in mbus_readings if m.device_type == 3 and m.value is not None), None)
    fields = {
        "header": text.split("\r\n", 1)[0][1:],
        "version": _value(result, "P1_MESSAGE_HEADER", "BELGIUM_VERSION_INFORMATION"),
        "timestamp": _value(result, "P1_MESSAGE_TIMESTAMP"),
        "equipment_id": _hex_ascii_decoded(
            _value(result, "EQUIPMENT_IDENTIFIER", "BELGIUM_EQUIPMENT_IDENTIFIER", "LUXEMBOURG_EQUIPMENT_IDENTIFIER")
        ),
        "electricity_delivered_1": delivered[0],
        "electricity_delivered_2": delivered[1],
        "electricity_delivered_total": delivered[2],
        "electricity_returned_1": returned[0],
        "electricity_returned_2": returned[1],
        "electricity_returned_total": returned[2],
        "electricity_currently_delivered": _value(result, "CURRENT_ELECTRICITY_USAGE"),
        "electricity_currently_returned": _value(result, "CURRENT_ELECTRICITY_DELIVERY"),
        "tariff": None if tariff is None else int(tariff),
        "mbus": mbus_readings,
        "crc_ok": True if SPECIFICATION_BY_VARIANT[variant]["checksum_support"] else None,
        "gas_delivered": gas.value if gas else None,
        "gas_timestamp": gas.timestamp if gas else None,
    }
    for phase in (1, 2, 3):
        fields[f"phase_currently_delivered_l{phase}"] = _value(result, f"INSTANTANEOUS_ACTIVE_POWER_L{phase}_POSITIVE")
        fields[f"phase_currently_returned_l{phase}"] = _value(result, f"INSTANTANEOUS_ACTIVE_POWER_L{phase}_NEGATIVE")
        fields[f"phase_voltage_l{phase}"] = _value(result, f"INSTANTANEOUS_VOLTAGE_L{phase}")
        fields[f"phase_current_l{phase}"] = _value(result, f"INSTANTANEOUS_CURRENT_L{phase}")
    return fields


def _fields_of(telegram: Telegram) -> dict:
    fields = {field.name: getattr(telegram, field.name) for field in dataclasses.fields(telegram)}
    return fields | {"gas_delivered": telegram.gas_delivered, "gas_timestamp": telegram.gas_timestamp}


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_field_agrees_with_dsmr_parser_on_random_telegrams(variant):
    reference = TelegramParser(SPECIFICATION_BY_VARIANT[variant])
    rng = random.Random(f"cross-check {variant}")

    for _ in range(TELEGRAMS_PER_VARIANT):
        text = make_telegram(variant, rng)
        expected = _fields_according_to_dsmr_parser(reference.parse(text, throw_ex=True), text, variant)

        assert _fields_of(parse_telegram(text)) == expected, text


def test_the_cross_check_covers_every_field_of_a_telegram():
    text = make_telegram("v5", random.Random(1))
    expected = _fields_according_to_dsmr_parser(TelegramParser(telegram_specifications.V5).parse(text), text, "v5")

    assert set(expected) == set(_fields_of(parse_telegram(text)))


# --- fuzzing: nothing but TelegramError escapes -----------------------------------------------------------------

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TELEGRAM_ALPHABET = "0123456789-:.()*/!SWkWhm3AV \r\n\t\x00\u00e9\u253c\ud800abcdefXYZ"


def parse_or_reject(text: str, verify_crc: bool) -> None:
    try:
        result = parse_telegram(text, verify_crc=verify_crc)
    except TelegramError as error:
        assert error.detail
        return
    assert isinstance(result, Telegram)


@st.composite
def generated_telegrams(draw) -> str:
    return make_telegram(draw(st.sampled_from(VARIANTS)), random.Random(draw(st.integers(0, 2**32))))


@FUZZ
@given(st.text(), st.booleans())
def test_random_text_raises_only_telegram_errors(text, verify_crc):
    parse_or_reject(text, verify_crc)


@FUZZ
@given(st.binary(max_size=2000), st.booleans())
def test_random_bytes_decoded_as_latin1_raise_only_telegram_errors(data, verify_crc):
    parse_or_reject(data.decode("latin-1"), verify_crc)


@FUZZ
@given(st.text(alphabet=TELEGRAM_ALPHABET, max_size=400), st.booleans())
def test_telegram_like_text_raises_only_telegram_errors(body, verify_crc):
    parse_or_reject("/ABC5 fuzz\r\n\r\n" + body + "\r\n!", verify_crc)


@FUZZ
@given(generated_telegrams(), st.floats(0, 1), st.booleans())
def test_truncated_telegrams_raise_only_telegram_errors(telegram, fraction, verify_crc):
    parse_or_reject(telegram[: int(len(telegram) * fraction)], verify_crc)


@FUZZ
@given(
    generated_telegrams(),
    st.lists(st.tuples(st.floats(0, 1), st.text(alphabet=TELEGRAM_ALPHABET, max_size=12)), min_size=1, max_size=5),
)
def test_mutated_telegrams_raise_only_telegram_errors(telegram, mutations):
    for fraction, replacement in mutations:
        position = int(len(telegram) * fraction)
        telegram = telegram[:position] + replacement + telegram[position + 1 :]
    parse_or_reject(telegram, verify_crc=False)


@FUZZ
@given(
    generated_telegrams(),
    st.sampled_from(["1-0:1.8.1", "0-0:1.0.0", "0-0:96.14.0", "0-1:24.2.1", "0-1:24.3.0", "0-0:96.1.1", "1-3:0.2.8"]),
    st.text(alphabet=TELEGRAM_ALPHABET, max_size=40) | st.from_regex(r"[0-9]{1,6000}", fullmatch=True),
)
def test_known_registers_with_any_value_raise_only_telegram_errors(telegram, code, value):
    lines = telegram.split("\r\n")
    lines.insert(3, f"{code}({value})")
    parse_or_reject("\r\n".join(lines), verify_crc=False)


def test_a_coarse_or_lenient_decimal_context_of_the_caller_changes_nothing():
    with localcontext() as context:
        context.prec = 3
        context.traps[InvalidOperation] = False
        telegram = parse_telegram(v5_telegram())
        with pytest.raises(TelegramParseError, match="not a number"):
            parse_telegram(v5_telegram(("1-0:1.8.1(012345.678*kWh)", "1-0:1.8.1(1.2.3*kWh)")))

    assert telegram.electricity_delivered_total == Decimal("35802.467")
