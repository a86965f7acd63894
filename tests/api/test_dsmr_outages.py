"""DSMR statistics across outages, through HTTP: the rise across a long gap is reported, never booked."""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tests.api.test_dsmr_api import AUTH, V1
from tests.api.test_dsmr_api import clock as clock  # noqa: F401 (a fixture)
from tests.api.test_dsmr_api import config as config  # noqa: F401 (a fixture)
from tests.support.telegrams import make_telegram

METER = "E0099887766554433"


def v5_telegram(moment: datetime, low: str, normal: str = "2000.000", gas: str = "500.000") -> str:
    return make_telegram(
        "v5",
        random.Random(7),
        timestamp=moment,
        equipment_id=METER,
        electricity_delivered_1=Decimal(low),
        electricity_delivered_2=Decimal(normal),
        electricity_returned_1=Decimal(0),
        electricity_returned_2=Decimal(0),
        gas_delivered=Decimal(gas),
        second_channel=None,
    )


def test_a_logger_back_after_an_outage_books_the_gap_to_no_hour_and_reports_it(client, clock):
    clock.moment = datetime(2024, 12, 1, 7, 35, tzinfo=UTC)
    before_the_outage = v5_telegram(datetime(2024, 10, 26, 21, tzinfo=UTC), "1000.000")
    assert client.post(V1, headers=AUTH, data={"telegram": before_the_outage}).status_code == 201
    for minutes, low in ((30, "2000.000"), (20, "2000.100"), (10, "2000.200")):
        moment = clock.moment - timedelta(minutes=minutes)
        assert client.post(V1, headers=AUTH, data={"telegram": v5_telegram(moment, low)}).status_code == 201

    today = client.get("/api/v2/consumption/today", headers=AUTH).json()
    assert (today["day"], today["electricity1"], today["electricity2"]) == ("2024-12-01", 0.2, 0)
    hours = client.get("/api/v2/statistics/hour", headers=AUTH).json()["results"]
    assert [(hour["hour_start"], hour["electricity1"]) for hour in hours] == [("2024-12-01T07:00:00Z", "0.200")]
    days = client.get("/api/v2/statistics/day", headers=AUTH).json()["results"]
    assert [(day["day"], day["electricity1"]) for day in days] == [("2024-12-01", "0.200")]
    gaps = client.get("/api/v2/datalogger/meter-statistics", headers=AUTH).json()["gaps"]
    assert gaps["count"] == 1
    assert gaps["latest"] == [
        {
            "start": "2024-10-26T23:00:00+02:00",
            "end": "2024-12-01T08:05:00+01:00",
            "electricity1": "1000.000",
            "electricity2": "0.000",
            "electricity1_returned": "0.000",
            "electricity2_returned": "0.000",
        }
    ]
