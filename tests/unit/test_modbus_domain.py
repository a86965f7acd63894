import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidInput
from domain.modbus import (
    MAX_GAP_REGISTERS,
    MAX_REGISTERS_PER_REQUEST,
    DecodeError,
    HostOutcome,
    PollStatus,
    decode,
    encode,
    format_instant,
    kwh_factor,
    next_status,
    parse_instant,
    plan_requests,
    split,
    weekday_energy,
)
from domain.silesia import RegisterSpec


def register(measurement, address, data_type=3, function_code=4, word_order="big", scale=1.0, kind=1, unit="V"):
    return RegisterSpec(measurement, kind, address, data_type, function_code, word_order, scale, unit)


def test_float32_is_big_endian_high_word_first_by_default():
    assert decode([0x4366, 0x199A], 3) == 230.1  # 0x4366199A is float32 230.1


def test_float32_with_little_word_order_takes_the_low_word_first():
    assert decode([0x199A, 0x4366], 3, "little") == 230.1


def test_float32_is_shown_as_the_shortest_decimal_that_is_the_same_float32():
    words = list(struct.unpack(">2H", struct.pack(">f", 12345.625)))
    assert decode(words, 3) == 12345.625
    assert decode(encode(0.1, 3), 3) == 0.1


def test_int16_is_signed():
    assert decode([0xFB2E], 1) == -1234.0
    assert decode([0x7FFF], 1) == 32767.0
    assert decode([0x8000], 1) == -32768.0


def test_int32_is_signed_and_values_above_32767_do_not_overflow():
    assert decode([0x0001, 0x86A0], 2) == 100_000.0
    assert decode([0x86A0, 0x0001], 2, "little") == 100_000.0
    assert decode([0xFFFF, 0xFFFF], 2) == -1.0


def test_the_value_is_multiplied_by_the_scale():
    assert decode([0x0001, 0x86A0], 2, scale=0.01) == 1000.0
    assert decode([0x0064], 1, scale=10) == 1000.0


@pytest.mark.parametrize("words", [[0x7FC0, 0x0000], [0x7F80, 0x0000], [0xFF80, 0x0000]])
def test_nan_and_infinity_are_decoding_errors(words):
    with pytest.raises(DecodeError, match="finite"):
        decode(words, 3)


def test_a_scale_that_overflows_is_a_decoding_error():
    with pytest.raises(DecodeError):
        decode([0x7F7F, 0xFFFF], 3, scale=1e300)


@pytest.mark.parametrize(
    ("words", "data_type", "order"),
    [([1], 3, "big"), ([1, 2], 1, "big"), ([70000, 0], 3, "big"), ([-1], 1, "big"), ([1, 2], 3, "middle")],
)
def test_wrong_word_counts_out_of_range_words_and_unknown_orders_are_errors(words, data_type, order):
    with pytest.raises(DecodeError):
        decode(words, data_type, order)


def test_an_unknown_data_type_is_an_error():
    with pytest.raises(DecodeError, match="data type"):
        decode([1], 7)


@given(st.floats(width=32, allow_nan=False, allow_infinity=False), st.sampled_from(["big", "little"]))
def test_every_finite_float32_survives_encode_and_decode(value, order):
    assert struct.pack(">f", decode(encode(value, 3, order), 3, order)) == struct.pack(">f", value)


@given(st.integers(-(2**31), 2**31 - 1), st.sampled_from(["big", "little"]))
def test_every_int32_survives_encode_and_decode(value, order):
    assert decode(encode(value, 2, order), 2, order) == value


def test_registers_close_together_are_read_in_one_request():
    registers = [register("voltage", 0), register("current", 6), register("power", 12)]
    (request,) = plan_requests(registers)
    assert (request.function_code, request.address, request.count) == (4, 0, 14)
    assert [item.measurement for item in request.registers] == ["voltage", "current", "power"]


def test_holding_and_input_registers_are_never_read_in_one_request():
    requests = plan_requests([register("a", 0, function_code=4), register("b", 0, function_code=3)])
    assert [(request.function_code, request.address, request.count) for request in requests] == [(3, 0, 2), (4, 0, 2)]


def test_a_request_never_exceeds_forty_registers():
    registers = [register(f"m{address}", address) for address in range(0, 100, 2)]
    requests = plan_requests(registers)
    assert all(request.count <= MAX_REGISTERS_PER_REQUEST for request in requests)
    assert [(request.address, request.count) for request in requests] == [(0, 40), (40, 40), (80, 20)]
    assert sum(len(request.registers) for request in requests) == 50


def test_a_gap_longer_than_the_threshold_starts_a_new_request():
    close = 2 + MAX_GAP_REGISTERS
    far = close + 2 + MAX_GAP_REGISTERS + 1
    requests = plan_requests([register("a", 0), register("b", close), register("c", far)])
    assert [(request.address, request.count) for request in requests] == [(0, close + 2), (far, 2)]


def test_two_measurements_on_one_address_share_the_words():
    (request,) = plan_requests([register("a", 52), register("b", 52, scale=0.001)])
    assert (request.address, request.count) == (52, 2)
    assert [request.words_of(item, [0x4366, 0x199A]) for item in request.registers] == [[0x4366, 0x199A]] * 2


def test_an_int16_next_to_a_float_takes_one_register():
    requests = plan_requests([register("a", 300, data_type=1), register("b", 301, data_type=3)])
    assert [(request.address, request.count) for request in requests] == [(300, 3)]


def test_split_reads_each_register_of_a_request_alone():
    (request,) = plan_requests([register("a", 0), register("b", 6, data_type=1)])
    assert [(item.address, item.count) for item in split(request)] == [(0, 2), (6, 1)]


def _status(**changes):
    values = dict(
        host_id=1,
        last_poll_at_ms=1_000,
        last_success_at_ms=1_000,
        last_error=None,
        last_error_at_ms=None,
        consecutive_failures=0,
        last_outcome="ok",
        measurements_read=2,
        measurements_failed=0,
    )
    values.update(changes)
    return PollStatus(**values)


def test_the_first_clean_poll_records_a_success():
    status = next_status(None, HostOutcome(1, 5_000, 2, 0))
    assert status == _status(last_poll_at_ms=5_000, last_success_at_ms=5_000)


def test_failures_count_up_and_keep_the_last_success():
    first = next_status(_status(), HostOutcome(1, 2_000, 0, 2, ("cannot connect to h:502 (refused or unreachable)",)))
    second = next_status(first, HostOutcome(1, 3_000, 0, 2, ("no answer from h:502 (unit 1) within 3 s",)))
    assert (second.consecutive_failures, second.last_success_at_ms, second.last_poll_at_ms) == (2, 1_000, 3_000)
    assert second.last_error == "no answer from h:502 (unit 1) within 3 s"
    assert (second.last_error_at_ms, second.last_outcome) == (3_000, "failed")


def test_a_clean_poll_resets_the_failures_and_keeps_the_last_error_for_the_record():
    failed = _status(consecutive_failures=4, last_error="boom", last_error_at_ms=900, last_outcome="failed")
    status = next_status(failed, HostOutcome(1, 6_000, 2, 0))
    assert (status.consecutive_failures, status.last_success_at_ms, status.last_outcome) == (0, 6_000, "ok")
    assert (status.last_error, status.last_error_at_ms) == ("boom", 900)


def test_a_poll_that_read_some_measurements_is_partial_and_counts_as_a_failure():
    status = next_status(_status(), HostOutcome(1, 2_000, 3, 1, ("bad: Modbus exception 2",)))
    assert (status.last_outcome, status.consecutive_failures, status.last_success_at_ms) == ("partial", 1, 1_000)
    assert (status.measurements_read, status.measurements_failed) == (3, 1)


def test_an_older_poll_never_moves_the_record_back():
    current = _status(last_poll_at_ms=9_000)
    assert next_status(current, HostOutcome(1, 8_000, 0, 2, ("late",))) == current


def test_a_long_error_text_is_cut():
    status = next_status(None, HostOutcome(1, 1, 0, 500, tuple("x" * 50 for _ in range(500))))
    assert len(status.last_error) == 2000
    assert status.last_error.endswith("…")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01T07:00:00.123Z", 1_796_108_400_123),
        ("2026-12-01T07:00:00.123", 1_796_108_400_123),  # naive: UTC
        ("2026-12-01T08:00:00.123+01:00", 1_796_108_400_123),
        ("2026-12-01", 1_796_083_200_000),
        ("1796108400", 1_796_108_400_000),  # epoch seconds, as compare-all takes them
    ],
)
def test_instants_are_iso_8601_date_times_or_epoch_seconds(text, expected):
    assert parse_instant(text, "from") == expected


@pytest.mark.parametrize(
    "text", ["yesterday", " 2026-12-01", "1\n", "2026-12-01T25:00:00", "1969-12-31T23:59:59Z", "٣"]
)
def test_anything_else_is_invalid_input_naming_the_field(text):
    with pytest.raises(InvalidInput) as error:
        parse_instant(text, "to")
    assert error.value.field == "to"


def test_instants_are_written_in_utc_with_milliseconds():
    assert format_instant(1_796_108_400_123) == "2026-12-01T07:00:00.123Z"
    assert format_instant(1_796_108_400_000) == "2026-12-01T07:00:00.000Z"


def test_energy_units_convert_to_kwh():
    assert (kwh_factor("Wh"), kwh_factor("kWh"), kwh_factor("MWh"), kwh_factor("kVArh")) == (0.001, 1.0, 1000.0, None)


def test_energy_is_booked_to_the_local_weekday_of_each_zone():
    sunday_2330_utc = 1_796_599_800_000  # 2026-12-06 (a Sunday) 23:30 UTC: Monday 00:30 in Warsaw
    energy = weekday_energy([(sunday_2330_utc, 2.0), (sunday_2330_utc - 3_600_000, 1.0)], ["UTC", "Europe/Warsaw"])
    assert energy == {"UTC": {6: 3.0}, "Europe/Warsaw": {0: 2.0, 6: 1.0}}


def test_failing_since_is_the_first_failed_poll_of_the_run_and_clears_after_a_clean_poll():
    failure = ("cannot connect to h:502 (refused or unreachable)",)
    first = next_status(_status(), HostOutcome(1, 2_000, 0, 2, failure))
    second = next_status(first, HostOutcome(1, 3_000, 1, 1, failure))
    assert (first.failing_since_ms, second.failing_since_ms) == (2_000, 2_000)
    assert next_status(second, HostOutcome(1, 4_000, 2, 0)).failing_since_ms is None
