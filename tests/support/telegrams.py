"""Realistic P1 telegrams with random values and correct CRCs, for tests and benchmarks.

    make_telegram("v5", random.Random(1))                        # any variant in VARIANTS
    make_telegram("v5", rng, electricity_delivered_1=Decimal("12.345"), gas_delivered=None)

Overrides name the value they replace (see `override_names(variant)`); values are Decimals, aware
datetimes, ints or text as in `domain.telegram.Telegram`. The CRC is computed here, independently of
the parser under test.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

VARIANTS = ("v2.2", "v3", "v4", "v5", "be", "lu")

# The example telegram of seeds/dsmr-reader-api.rst, byte for byte. Its equipment id is masked, so
# the stated CRC 74B0 no longer matches (the bytes give A97E).
SEED_TELEGRAM = "".join(
    [
        "/KFM5KAIFA-METER\r\n",
        "\r\n",
        "1-3:0.2.8(42)\r\n",
        "0-0:1.0.0(160303164347W)\r\n",
        "0-0:96.1.1(*******************************)\r\n",
        "1-0:1.8.1(001073.079*kWh)\r\n",
        "1-0:1.8.2(001263.199*kWh)\r\n",
        "1-0:2.8.1(000000.000*kWh)\r\n",
        "1-0:2.8.2(000000.000*kWh)\r\n",
        "0-0:96.14.0(0002)\r\n",
        "1-0:1.7.0(00.143*kW)\r\n",
        "1-0:2.7.0(00.000*kW)\r\n",
        "0-0:96.7.21(00006)\r\n",
        "0-0:96.7.9(00003)\r\n",
        "1-0:99.97.0(1)(0-0:96.7.19)(000101000001W)(2147483647*s)\r\n",
        "1-0:32.32.0(00000)\r\n",
        "1-0:32.36.0(00000)\r\n",
        "0-0:96.13.1()\r\n",
        "0-0:96.13.0()\r\n",
        "1-0:31.7.0(000*A)\r\n",
        "1-0:21.7.0(00.143*kW)\r\n",
        "1-0:22.7.0(00.000*kW)\r\n",
        "!74B0\n",
    ]
)

_LOCAL_TIME_ZONE = ZoneInfo("Europe/Amsterdam")
_HEADERS = {
    "v2.2": ["ISk5\\2MT382-1004"],
    "v3": ["ISk5\\2MT382-1000", "XMX5XMXABCE000018914"],
    "v4": ["KFM5KAIFA-METER", "XMX5LGBBFG1009021021", "ISk5\\2MT382-1000"],
    "v5": ["ISk5\\2MT382-1000", "XMX5LGBBLB2410065887", "Ene5\\T211 ESMR 5.0", "KFM5KAIFA-METER"],
    "be": ["FLU5\\253769484_A", "FLU5\\253770234_A"],
    "lu": ["Lux5\\u253833635_D"],
}
_WITH_CRC = {"v4", "v5", "be", "lu"}


def _crc16_arc(data: bytes) -> int:
    """Byte-wise CRC-16/ARC, written apart from the parser's so a bug there cannot hide in both."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def assemble_telegram(lines: list[str], *, line_ending: str = "\r\n", stated_crc: str | None = None) -> str:
    """Join `lines` (header `/...` first, no `!`) and close with `!` and the CRC.

    stated_crc: None computes it, "" leaves it out (v2.2/v3), anything else is written as given.
    """
    body = "".join(line + line_ending for line in lines) + "!"
    if stated_crc is None:
        stated_crc = f"{_crc16_arc(body.encode('utf-8')):04X}"
    return body + stated_crc + line_ending


def override_names(variant: str) -> frozenset[str]:
    return frozenset(_random_values(variant, random.Random(0)))


def make_telegram(variant: str, rng: random.Random, **overrides) -> str:
    """A telegram of `variant` (one of VARIANTS) with random values, some replaced by `overrides`."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {VARIANTS}")
    values = _random_values(variant, rng)
    unknown = set(overrides) - set(values)
    if unknown:
        raise TypeError(f"unknown overrides for {variant}: {sorted(unknown)}")
    if "equipment_id" in overrides and "equipment_id_raw" not in overrides:
        values["equipment_id_raw"] = None
    values.update(overrides)
    lines = _LINE_BUILDERS[variant](values, rng)
    stated_crc = values["stated_crc"]
    if stated_crc is None and variant not in _WITH_CRC:
        stated_crc = ""
    return assemble_telegram(lines, line_ending=values["line_ending"], stated_crc=stated_crc)


# --- random values -------------------------------------------------------------------------------------


def _random_values(variant: str, rng: random.Random) -> dict:
    legacy = variant in ("v2.2", "v3")
    register_digits = 5 if legacy else 6
    timestamp = datetime(2017, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(14 * 365 * 86400))
    phases = 1 if variant in ("v2.2", "v3") else rng.choice((1, 3))
    values = {
        "header": rng.choice(_HEADERS[variant]),
        "timestamp": timestamp,
        "equipment_id": _random_equipment_id(variant, rng),
        # Written as is instead of hex; some v2.2 meters state plain digits.
        "equipment_id_raw": _random_digits(rng, 14) if variant == "v2.2" and rng.random() < 0.5 else None,
        "electricity_delivered_1": _random_register(rng, register_digits),
        "electricity_delivered_2": _random_register(rng, register_digits),
        "electricity_returned_1": _random_register(rng, register_digits),
        "electricity_returned_2": _random_register(rng, register_digits),
        **_random_power_flow(rng, legacy),
        "tariff": rng.choice((1, 2)),
        "phases": phases,
        "gas_delivered": _random_register(rng, 5) if variant != "lu" else None,
        "gas_timestamp": None,  # None: derived from `timestamp` as the variant does
        "gas_equipment_id": "G" + _random_digits(rng, 16),
        "second_channel": rng.choice((None, None, "water", "empty")) if variant in ("v5", "be") else None,
        "line_ending": "\r\n",
        "stated_crc": None,
    }
    for phase in range(1, 4):  # drawn for all three phases; `phases` decides how many are written
        values[f"phase_currently_delivered_l{phase}"] = _random_power(rng, False)
        values[f"phase_currently_returned_l{phase}"] = _random_power(rng, False)
        values[f"phase_current_l{phase}"] = Decimal(rng.randrange(0, 40)) + (Decimal("0.25") if variant == "be" else 0)
        values[f"phase_voltage_l{phase}"] = Decimal(rng.randrange(2100, 2500)).scaleb(-1)
    if variant == "lu":
        values["electricity_delivered_total"] = values.pop("electricity_delivered_1")
        values["electricity_returned_total"] = values.pop("electricity_returned_1")
        del values["electricity_delivered_2"], values["electricity_returned_2"], values["tariff"]
    return values


def _random_register(rng: random.Random, integer_digits: int) -> Decimal:
    return Decimal(rng.randrange(10 ** (integer_digits + 3))).scaleb(-3)


def _random_power(rng: random.Random, legacy: bool) -> Decimal:
    if rng.random() < 0.3:
        return Decimal("0.000") if not legacy else Decimal("0.00")
    return Decimal(rng.randrange(100_000)).scaleb(-3) if not legacy else Decimal(rng.randrange(10_000)).scaleb(-2)


def _random_power_flow(rng: random.Random, legacy: bool) -> dict[str, Decimal]:
    """A house either draws power or feeds it back (solar), not both at once."""
    flowing = _random_power(rng, legacy)
    idle = Decimal("0.00") if legacy else Decimal("0.000")
    delivered, returned = (flowing, idle) if rng.random() < 0.7 else (idle, flowing)
    return {"electricity_currently_delivered": delivered, "electricity_currently_returned": returned}


def _random_digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(count))


def _random_equipment_id(variant: str, rng: random.Random) -> str:
    serial = _random_digits(rng, 14)
    prefix = {"be": "1SAG", "lu": "SAG"}.get(variant, rng.choice(("E00", "K8EG", "Z")))
    return prefix + serial


# --- rendering -------------------------------------------------------------------------------------------


def _hex(text: str) -> str:
    return text.encode("ascii").hex().upper()


def _dsmr_time(moment: datetime, *, with_season: bool = True) -> str:
    local = moment.astimezone(_LOCAL_TIME_ZONE)
    season = ("S" if local.dst() else "W") if with_season else ""
    return local.strftime("%y%m%d%H%M%S") + season


def _number(value: Decimal, spec: str) -> str:
    return format(value, spec)


def _floor(moment: datetime, minutes: int) -> datetime:
    return moment.replace(minute=moment.minute - moment.minute % minutes, second=0, microsecond=0)


def _equipment_line(values: dict, code: str = "0-0:96.1.1") -> str:
    raw = values["equipment_id_raw"]
    return f"{code}({raw if raw is not None else _hex(values['equipment_id'])})"


def _register_lines(values: dict, spec: str) -> list[str]:
    return [
        f"1-0:1.8.1({_number(values['electricity_delivered_1'], spec)}*kWh)",
        f"1-0:1.8.2({_number(values['electricity_delivered_2'], spec)}*kWh)",
        f"1-0:2.8.1({_number(values['electricity_returned_1'], spec)}*kWh)",
        f"1-0:2.8.2({_number(values['electricity_returned_2'], spec)}*kWh)",
    ]


def _power_lines(values: dict, spec: str) -> list[str]:
    return [
        f"1-0:1.7.0({_number(values['electricity_currently_delivered'], spec)}*kW)",
        f"1-0:2.7.0({_number(values['electricity_currently_returned'], spec)}*kW)",
    ]


def _phase_lines(values: dict, *, voltage_spec: str | None, current_spec: str) -> list[str]:
    lines = []
    codes = {1: ("21", "22", "32", "31"), 2: ("41", "42", "52", "51"), 3: ("61", "62", "72", "71")}
    if voltage_spec:
        lines += [
            f"1-0:{codes[phase][2]}.7.0({_number(values[f'phase_voltage_l{phase}'], voltage_spec)}*V)"
            for phase in range(1, values["phases"] + 1)
        ]
    lines += [
        f"1-0:{codes[phase][3]}.7.0({_number(values[f'phase_current_l{phase}'], current_spec)}*A)"
        for phase in range(1, values["phases"] + 1)
    ]
    for direction, index in (("delivered", 0), ("returned", 1)):
        lines += [
            f"1-0:{codes[phase][index]}.7.0({_number(values[f'phase_currently_{direction}_l{phase}'], '06.3f')}*kW)"
            for phase in range(1, values["phases"] + 1)
        ]
    return lines


def _power_failure_log(values: dict, rng: random.Random) -> list[str]:
    count = rng.choice((0, 0, 1, 2, 3))
    entries = "".join(
        f"({_dsmr_time(values['timestamp'] - timedelta(days=rng.randrange(1, 900)))})"
        f"({rng.randrange(1, 10**10):010d}*s)"
        for _ in range(count)
    )
    return [
        f"0-0:96.7.21({rng.randrange(100000):05d})",
        f"0-0:96.7.9({rng.randrange(100000):05d})",
        f"1-0:99.97.0({count})(0-0:96.7.19){entries}",
    ]


def _quality_lines(values: dict, rng: random.Random) -> list[str]:
    phases = range(1, values["phases"] + 1)
    codes = {1: "32", 2: "52", 3: "72"}
    return [f"1-0:{codes[phase]}.32.0({rng.randrange(100):05d})" for phase in phases] + [
        f"1-0:{codes[phase]}.36.0({rng.randrange(100):05d})" for phase in phases
    ]


def _gas_moment(values: dict, minutes: int) -> datetime:
    return values["gas_timestamp"] or _floor(values["timestamp"], minutes)


def _mbus_lines(values: dict, *, reading_code: str, identifier_code: str, minutes: int) -> list[str]:
    if values["gas_delivered"] is None:
        return []
    lines = [
        "0-1:24.1.0(003)",
        f"{identifier_code.replace('n', '1')}({_hex(values['gas_equipment_id'])})",
        f"0-1:{reading_code}({_dsmr_time(_gas_moment(values, minutes))})"
        f"({_number(values['gas_delivered'], '09.3f')}*m3)",
    ]
    second = values["second_channel"]
    if second == "water":
        lines += [
            "0-2:24.1.0(007)",
            f"{identifier_code.replace('n', '2')}({_hex('W' + values['gas_equipment_id'][1:])})",
            f"0-2:24.2.1({_dsmr_time(_gas_moment(values, minutes))})({_number(values['gas_delivered'], '09.3f')}*m3)",
        ]
    elif second == "empty":
        lines += ["0-2:24.1.0(003)", f"{identifier_code.replace('n', '2')}()"]
    return lines


def _legacy_lines(values: dict, rng: random.Random) -> list[str]:
    lines = [
        "/" + values["header"],
        "",
        _equipment_line(values),
        *_register_lines(values, "09.3f"),
        f"0-0:96.14.0({values['tariff']:04d})",
        *_power_lines(values, "07.2f"),
        "0-0:17.0.0(0999.00*kW)",
        "0-0:96.3.10(1)",
        "0-0:96.13.1()",
        "0-0:96.13.0()",
    ]
    if values["gas_delivered"] is not None:
        gas_time = _dsmr_time(_gas_moment(values, 60), with_season=False)
        lines += [
            f"0-1:24.1.0({rng.choice(('3', '03'))})",
            f"0-1:96.1.0({_hex(values['gas_equipment_id'])})",
            f"0-1:24.3.0({gas_time})(00)(60)(1)(0-1:24.2.1)(m3)",
            f"({_number(values['gas_delivered'], '09.3f')})",
            "0-1:24.4.0(1)",
        ]
    return lines


def _v4_lines(values: dict, rng: random.Random) -> list[str]:
    return [
        "/" + values["header"],
        "",
        "1-3:0.2.8(42)",
        f"0-0:1.0.0({_dsmr_time(values['timestamp'])})",
        _equipment_line(values),
        *_register_lines(values, "010.3f"),
        f"0-0:96.14.0({values['tariff']:04d})",
        *_power_lines(values, "06.3f"),
        *_power_failure_log(values, rng),
        *_quality_lines(values, rng),
        "0-0:96.13.1()",
        "0-0:96.13.0()",
        *_phase_lines(values, voltage_spec=None, current_spec="03.0f"),
        *_mbus_lines(values, reading_code="24.2.1", identifier_code="0-n:96.1.0", minutes=60),
    ]


def _v5_lines(values: dict, rng: random.Random) -> list[str]:
    return [
        "/" + values["header"],
        "",
        "1-3:0.2.8(50)",
        f"0-0:1.0.0({_dsmr_time(values['timestamp'])})",
        _equipment_line(values),
        *_register_lines(values, "010.3f"),
        f"0-0:96.14.0({values['tariff']:04d})",
        *_power_lines(values, "06.3f"),
        *_power_failure_log(values, rng),
        *_quality_lines(values, rng),
        "0-0:96.13.0()",
        *_phase_lines(values, voltage_spec="06.1f", current_spec="03.0f"),
        *_mbus_lines(values, reading_code="24.2.1", identifier_code="0-n:96.1.0", minutes=5),
    ]


def _random_demand(rng: random.Random) -> str:
    return _number(Decimal(rng.randrange(10000)).scaleb(-3), "06.3f")


def _be_lines(values: dict, rng: random.Random) -> list[str]:
    timestamp = values["timestamp"]
    months = rng.randrange(0, 14)
    history = "".join(
        f"({_dsmr_time(_floor(timestamp - timedelta(days=31 * month), 60))})"
        f"({'632525252525W' if rng.random() < 0.1 else _dsmr_time(timestamp - timedelta(days=31 * month + 3))})"
        f"({_random_demand(rng)}*kW)"
        for month in range(1, months + 1)
    )
    return [
        "/" + values["header"],
        "",
        "0-0:96.1.4(50217)",
        _equipment_line(values),
        f"0-0:1.0.0({_dsmr_time(timestamp)})",
        *_register_lines(values, "010.3f"),
        f"0-0:96.14.0({values['tariff']:04d})",
        f"1-0:1.4.0({_random_demand(rng)}*kW)",
        f"1-0:1.6.0({_dsmr_time(_floor(timestamp, 15))})({_random_demand(rng)}*kW)",
        f"0-0:98.1.0({months})(1-0:1.6.0)(1-0:1.6.0){history}",
        *_power_lines(values, "06.3f"),
        *_phase_lines(values, voltage_spec="05.1f", current_spec="06.2f"),
        "0-0:96.3.10(1)",
        "0-0:17.0.0(999.9*kW)",
        "1-0:31.4.0(999*A)",
        "0-0:96.13.0()",
        *_mbus_lines(values, reading_code="24.2.3", identifier_code="0-n:96.1.1", minutes=5),
    ]


def _lu_lines(values: dict, rng: random.Random) -> list[str]:
    lines = [
        "/" + values["header"],
        "",
        "1-3:0.2.8(50)",
        f"0-0:1.0.0({_dsmr_time(values['timestamp'])})",
        _equipment_line(values, "0-0:42.0.0"),
        f"1-0:1.8.0({_number(values['electricity_delivered_total'], '010.3f')}*kWh)",
        f"1-0:2.8.0({_number(values['electricity_returned_total'], '010.3f')}*kWh)",
        f"1-0:3.8.0({_number(_random_register(rng, 6), '010.3f')}*kvarh)",
        f"1-0:4.8.0({_number(_random_register(rng, 6), '010.3f')}*kvarh)",
        *_power_lines(values, "06.3f"),
        f"1-0:3.7.0({_random_demand(rng)}*kvar)",
        f"1-0:4.7.0({_random_demand(rng)}*kvar)",
        "0-0:17.0.0(027.6*kVA)",
        "1-1:31.4.0(040*A)(-040*A)",
        "0-0:96.3.10(1)",
        "0-1:96.3.10(0)",
        "0-2:96.3.10(0)",
        *_power_failure_log(values, rng),
        *_quality_lines(values, rng),
        "0-0:96.13.0()",
        "0-0:96.13.2()",
        "0-0:96.13.3()",
        "0-0:96.13.4()",
        "0-0:96.13.5()",
        *_phase_lines(values, voltage_spec="05.1f", current_spec="03.0f"),
    ]
    return lines + _mbus_lines(values, reading_code="24.2.1", identifier_code="0-n:96.1.0", minutes=5)


_LINE_BUILDERS = {
    "v2.2": _legacy_lines,
    "v3": _legacy_lines,
    "v4": _v4_lines,
    "v5": _v5_lines,
    "be": _be_lines,
    "lu": _lu_lines,
}
