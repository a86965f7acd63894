"""Price plans and the accounts that tie a meter to one of them."""

from __future__ import annotations

import json

import peewee

from domain.tariffs import PricePlan
from repository.db import BaseModel


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


def _to_domain(row: PricePlanRow) -> PricePlan:
    return PricePlan(
        plan_id=row.plan_id,
        supplier=row.supplier,
        unit_rate=row.unit_rate,
        day_multipliers=tuple(json.loads(row.day_multipliers)),
        standing_charge_per_day=row.standing_charge_per_day,
        time_zone=row.time_zone,
    )


def price_plans() -> list[PricePlan]:
    return [_to_domain(row) for row in PricePlanRow.select().order_by(PricePlanRow.plan_id)]


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
    row = Account.select(Account.plan).where(Account.meter_id == meter_id).tuples().first()
    return row[0] if row else None
