"""Price plans and the accounts that tie a meter to one of them."""

from __future__ import annotations

import json

import peewee

from domain.tariffs import PricePlan
from repository.db import BaseModel, database


class PricePlanRow(BaseModel):
    plan_id = peewee.CharField(primary_key=True, max_length=64)
    supplier = peewee.CharField(max_length=200)
    unit_rate = peewee.DoubleField()
    standing_charge_per_day = peewee.DoubleField(default=0.0)
    time_zone = peewee.CharField(max_length=64, default="UTC")
    day_multipliers = peewee.TextField()

    class Meta:
        table_name = "price_plans"


class Account(BaseModel):
    meter_id = peewee.CharField(primary_key=True, max_length=128)
    owner = peewee.CharField(max_length=200)
    plan = peewee.ForeignKeyField(PricePlanRow, column_name="plan_id", on_delete="RESTRICT")

    class Meta:
        table_name = "accounts"


# Every compare-all and recommend reads the plans and the meter's account: written out in SQL, as Peewee's
# query building cost more than the queries themselves (py-spy on the read path: ~17% of a request).
_PLANS_SQL = (
    "SELECT plan_id, supplier, unit_rate, day_multipliers, standing_charge_per_day, time_zone"
    " FROM price_plans ORDER BY plan_id"
)


def price_plans() -> list[PricePlan]:
    return [
        PricePlan(
            plan_id=plan_id,
            supplier=supplier,
            unit_rate=unit_rate,
            day_multipliers=tuple(json.loads(multipliers)),
            standing_charge_per_day=standing_charge,
            time_zone=time_zone,
        )
        for plan_id, supplier, unit_rate, multipliers, standing_charge, time_zone in database.execute_sql(
            _PLANS_SQL
        ).fetchall()
    ]


def save_price_plan(plan: PricePlan) -> None:
    PricePlanRow.insert(
        plan_id=plan.plan_id,
        supplier=plan.supplier,
        unit_rate=plan.unit_rate,
        standing_charge_per_day=plan.standing_charge_per_day,
        time_zone=plan.time_zone,
        day_multipliers=json.dumps(list(plan.day_multipliers)),
    ).on_conflict(
        conflict_target=[PricePlanRow.plan_id],
        preserve=[
            PricePlanRow.supplier,
            PricePlanRow.unit_rate,
            PricePlanRow.standing_charge_per_day,
            PricePlanRow.time_zone,
            PricePlanRow.day_multipliers,
        ],
    ).execute()


def plan_id_for_meter(meter_id: str) -> str | None:
    row = database.execute_sql(
        f"SELECT plan_id FROM accounts WHERE meter_id = {database.param}", (meter_id,)
    ).fetchone()
    return row[0] if row else None
