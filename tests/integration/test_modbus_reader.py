"""The Modbus TCP reader against simulated devices on 127.0.0.1 (no database)."""

import time

import pytest

import modbus_reader
from domain.silesia import PollTarget, RegisterSpec
from tests.support import modbus_simulator as sim


def register(measurement, address, data_type=3, function_code=4, word_order="big", scale=1.0, kind=1, unit="V"):
    return RegisterSpec(measurement, kind, address, data_type, function_code, word_order, scale, unit)


SDM630 = (
    register("voltage_ac", 0),
    register("current", 6, unit="A"),
    register("active_power", 52, unit="W"),
    register("frequency", 70, unit="Hz"),
    register("active_energy_consumed", 72, kind=2, unit="kWh"),
    register("active_energy_produced", 74, kind=2, unit="kWh"),
)


@pytest.fixture(scope="module")
def gateway():
    with sim.sdm630_gateway() as running:
        yield running


def values(result, host_id=1):
    return {sample.measurement: sample.value for sample in result.samples if sample.host_id == host_id}


def test_input_registers_are_read_with_function_code_4_exactly(gateway):
    result = modbus_reader.poll([PollTarget(1, "127.0.0.1", gateway.port, 1, SDM630)], timeout=2)
    assert values(result) == {
        "voltage_ac": 230.1,
        "current": 5.25,
        "active_power": 1234.5,
        "frequency": 50.0,
        "active_energy_consumed": 12345.625,
        "active_energy_produced": 789.25,
    }
    (outcome,) = result.outcomes
    assert (outcome.outcome, outcome.measurements_read, outcome.errors) == ("ok", 6, ())


def test_holding_registers_are_read_with_function_code_3_not_the_input_block(gateway):
    registers = (register("voltage_ac", 0, function_code=3), register("active_power", 52, function_code=3))
    result = modbus_reader.poll([PollTarget(1, "127.0.0.1", gateway.port, 1, registers)], timeout=2)
    assert values(result) == {"voltage_ac": 111.5, "active_power": 999.0}


def test_both_word_orders_int16_int32_and_scale_decode_as_the_device_meant(gateway):
    registers = (
        register("little_input", 200, word_order="little"),
        register("little_holding", 200, function_code=3, word_order="little"),
        register("int16", 300, data_type=1),
        register("int32_scaled", 302, data_type=2, scale=0.01),
        register("int32_little", 304, data_type=2, word_order="little"),
    )
    result = modbus_reader.poll([PollTarget(1, "127.0.0.1", gateway.port, 1, registers)], timeout=2)
    assert values(result) == {
        "little_input": 42.75,
        "little_holding": -8.5,
        "int16": -1234.0,
        "int32_scaled": 1000.0,
        "int32_little": -70000.0,
    }


def test_an_exception_address_and_a_nan_fail_alone_and_the_other_registers_are_stored(gateway):
    registers = (
        register("voltage_ac", 0),
        register("missing", sim.EXCEPTION_ADDRESS),
        register("not_available", 400),
        register("active_power", 52, unit="W"),
    )
    result = modbus_reader.poll([PollTarget(1, "127.0.0.1", gateway.port, 1, registers)], timeout=2)
    assert values(result) == {"voltage_ac": 230.1, "active_power": 1234.5}
    (outcome,) = result.outcomes
    assert (outcome.outcome, outcome.measurements_read, outcome.measurements_failed) == ("partial", 2, 2)
    assert any("missing" in error and "illegal data address" in error for error in outcome.errors)
    assert any("not_available" in error and "finite" in error for error in outcome.errors)


def test_a_spare_register_that_answers_an_exception_does_not_cost_its_neighbours(gateway):
    # 300..307 is one request; 306 is not in the device's map, so the device answers it with an
    # exception: the registers are then read one by one and only 306 fails.
    registers = (register("int16", 300, data_type=1), register("missing", 306), register("int32", 302, data_type=2))
    result = modbus_reader.poll([PollTarget(1, "127.0.0.1", gateway.port, 1, registers)], timeout=2)
    assert values(result) == {"int16": -1234.0, "int32": 100000.0}
    assert result.outcomes[0].measurements_failed == 1


def test_each_unit_id_behind_one_gateway_is_its_own_meter(gateway):
    targets = [
        PollTarget(1, "127.0.0.1", gateway.port, 1, SDM630[:1]),
        PollTarget(2, "127.0.0.1", gateway.port, 2, SDM630[:1]),
    ]
    result = modbus_reader.poll(targets, timeout=2)
    assert (values(result, 1), values(result, 2)) == ({"voltage_ac": 230.1}, {"voltage_ac": 1230.1})


def test_samples_carry_the_time_they_were_read_in_milliseconds(gateway):
    before = time.time_ns() // 1_000_000
    result = modbus_reader.poll([PollTarget(1, "127.0.0.1", gateway.port, 1, SDM630)], timeout=2)
    after = time.time_ns() // 1_000_000
    assert all(before <= sample.time_ms <= after for sample in result.samples)
    assert {(sample.unit, sample.measurement_type) for sample in result.samples} >= {("kWh", 2), ("V", 1)}


def test_a_refused_a_silent_and_a_garbled_host_fail_alone_and_the_round_goes_on(gateway):
    with sim.silent_host() as silent, sim.garbled_host() as garbled:
        targets = [
            PollTarget(1, "127.0.0.1", sim.refused_port(), 1, SDM630),
            PollTarget(2, "127.0.0.1", silent.port, 1, SDM630),
            PollTarget(3, "127.0.0.1", garbled.port, 1, SDM630),
            PollTarget(4, "127.0.0.1", gateway.port, 1, SDM630),
        ]
        started = time.monotonic()
        result = modbus_reader.poll(targets, timeout=1)
        elapsed = time.monotonic() - started
    outcomes = {outcome.host_id: outcome for outcome in result.outcomes}
    assert "refused" in outcomes[1].errors[0]
    assert "no answer" in outcomes[2].errors[0] and "within 1 s" in outcomes[2].errors[0]
    assert outcomes[3].outcome == "failed" and "answer held" in outcomes[3].errors[0]
    assert outcomes[4].outcome == "ok" and len(values(result, 4)) == 6
    assert [outcomes[host].measurements_failed for host in (1, 2, 3)] == [6, 6, 6]
    assert {sample.host_id for sample in result.samples} == {4}
    # The silent host had one second for everything: the round is not its timeout times its requests.
    assert elapsed < 2.5


def test_a_silent_host_costs_the_round_its_timeout_once_not_per_request():
    many_requests = tuple(register(f"m{index}", index * 100) for index in range(5))
    with sim.silent_host() as silent:
        started = time.monotonic()
        result = modbus_reader.poll([PollTarget(1, "127.0.0.1", silent.port, 1, many_requests)], timeout=0.5)
        elapsed = time.monotonic() - started
    assert result.outcomes[0].measurements_failed == 5
    assert elapsed < 1.5


def test_hosts_behind_one_gateway_are_read_one_after_another_over_one_connection(gateway):
    before = gateway.connections
    targets = [PollTarget(host, "127.0.0.1", gateway.port, unit, SDM630[:1]) for host, unit in [(1, 1), (2, 2), (3, 1)]]
    result = modbus_reader.poll(targets, timeout=2)
    assert gateway.connections - before == 1
    assert [values(result, host) for host in (1, 2, 3)] == [
        {"voltage_ac": 230.1},
        {"voltage_ac": 1230.1},
        {"voltage_ac": 230.1},
    ]


def test_a_unit_id_the_gateway_does_not_reach_fails_alone_with_the_gateways_exception(gateway):
    targets = [
        PollTarget(1, "127.0.0.1", gateway.port, 9, SDM630[:1]),
        PollTarget(2, "127.0.0.1", gateway.port, 1, SDM630[:1]),
    ]
    result = modbus_reader.poll(targets, timeout=2)
    assert "gateway target device failed to respond" in result.outcomes[0].errors[0]
    assert values(result, 2) == {"voltage_ac": 230.1}


def test_a_refused_gateway_is_tried_once_for_all_the_hosts_behind_it():
    port = sim.refused_port()
    result = modbus_reader.poll([PollTarget(host, "127.0.0.1", port, host, SDM630) for host in (1, 2, 3)], timeout=1)
    assert [outcome.errors for outcome in result.outcomes] == [
        (f"cannot connect to 127.0.0.1:{port} (refused or unreachable)",)
    ] * 3
    assert [outcome.measurements_failed for outcome in result.outcomes] == [6, 6, 6]


def test_after_two_silent_hosts_in_a_row_the_rest_of_that_address_waits_for_the_next_round():
    with sim.silent_host() as silent:
        targets = [PollTarget(host, "127.0.0.1", silent.port, host, SDM630[:2]) for host in (1, 2, 3, 4)]
        started = time.monotonic()
        result = modbus_reader.poll(targets, timeout=0.5)
        elapsed = time.monotonic() - started
        accepted = silent.accepted
    errors = [outcome.errors[0] for outcome in result.outcomes]
    assert all("no answer" in error for error in errors[:2])
    assert all(error.startswith("not polled this round") for error in errors[2:])
    assert accepted == 2 and elapsed < 1.6


def test_a_host_whose_turn_comes_after_the_round_deadline_is_not_polled(gateway):
    with sim.silent_host() as silent:
        targets = [
            PollTarget(1, "127.0.0.1", silent.port, 1, SDM630[:1]),
            PollTarget(2, "127.0.0.1", silent.port, 2, SDM630[:1]),
        ]
        result = modbus_reader.poll(targets, timeout=0.5, deadline_seconds=0.2)
    assert "no answer" in result.outcomes[0].errors[0]
    assert "ran out of time" in result.outcomes[1].errors[0]


def test_an_unexpected_error_while_reading_one_host_stays_with_that_host(gateway, monkeypatch):
    real_read = modbus_reader._read

    async def read(client, target, request):
        if target.host_id == 1:
            raise KeyError("a pymodbus surprise")
        return await real_read(client, target, request)

    monkeypatch.setattr(modbus_reader, "_read", read)
    targets = [
        PollTarget(1, "127.0.0.1", gateway.port, 1, SDM630[:1]),
        PollTarget(2, "127.0.0.1", gateway.port, 2, SDM630[:1]),
    ]
    result = modbus_reader.poll(targets, timeout=2)
    assert result.outcomes[0].errors == (f"127.0.0.1:{gateway.port} (unit 1): unexpected KeyError",)
    assert values(result, 2) == {"voltage_ac": 1230.1}
