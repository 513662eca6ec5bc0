"""MongoDB adapter of the tier store: rules, certifications, revenue lines, standings.

Revenue lines are one document per order line (`_id` `<order_id>/<line_id>`):
the order worker `$set`s the line's partner, currency, time and net amount, the
refund consumer `$set`s `refunds.<key>`; both are upserts, so either may come
first and a redelivery writes the same thing again. Evaluation streams the
lines of the window with a projection and sums them per partner and currency
as it goes: memory is per partner, never per line.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.registration.adapters.documents import partner_from_doc
from services.registration.domain.partners import Partner
from services.registration.domain.tiers import Standing, Threshold, TierRules
from services.registration.service_layer.tiers import Certification, RefundEntry, RevenueLine

Db = AsyncDatabase[dict[str, Any]]

RULES = "tier_rules"
CERTIFICATIONS = "certifications"
REVENUE_LINES = "tier_revenue_lines"
STANDINGS = "tier_standings"
EVALUATIONS = "tier_evaluations"
LEASES = "tier_leases"
"""The collection of the tier-evaluation lease (chassis.lease)."""
PARTNERS = "partners"
_WRITE_CHUNK = 500


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _day(value: dt.date) -> str:
    return value.isoformat()


def refund_key(refund_id: str) -> str:
    """A refund id as a field name: ids may hold '.' or '$', which a field name may not."""
    return hashlib.sha256(refund_id.encode("utf-8")).hexdigest()[:32]


async def ensure_tier_indexes(db: Db) -> None:
    await db[REVENUE_LINES].create_indexes(
        [
            # The window scan, and one partner's view.
            _index([("t", ASCENDING)], "by_time"),
            _index([("p", ASCENDING), ("t", ASCENDING)], "by_partner_time"),
        ]
    )
    await db[CERTIFICATIONS].create_indexes([_index([("partner_id", ASCENDING)], "by_partner")])


def _index(keys: list[tuple[str, int]], name: str) -> Any:
    from pymongo import IndexModel

    return IndexModel(keys, name=name)


def rules_to_doc(r: TierRules) -> dict[str, Any]:
    return {
        "_id": r.version,
        "effective_from": r.effective_from,
        "currency": r.currency,
        # Kept as the decimal strings given: a float would lose the exactness.
        "fx": {code: str(rate) for code, rate in r.fx.items()},
        "tiers": {
            tier: {"min_revenue_minor": t.min_revenue_minor, "min_certified": t.min_certified}
            for tier, t in r.tiers.items()
        },
        "demotion_grace_days": r.demotion_grace_days,
        "recorded_at": r.recorded_at,
    }


def rules_from_doc(d: Mapping[str, Any]) -> TierRules:
    return TierRules(
        version=int(d["_id"]),
        effective_from=_utc(d["effective_from"]),
        currency=d["currency"],
        fx={code: Decimal(rate) for code, rate in d["fx"].items()},
        tiers={tier: Threshold(**t) for tier, t in d["tiers"].items()},
        demotion_grace_days=int(d["demotion_grace_days"]),
        recorded_at=_utc(d["recorded_at"]) if d.get("recorded_at") else None,
    )


def _certification(d: Mapping[str, Any]) -> Certification:
    return Certification(
        certification_id=d["_id"],
        partner_id=d["partner_id"],
        name=d["name"],
        holder=d["holder"],
        expires_on=dt.date.fromisoformat(d["expires_on"]),
        recorded_at=_utc(d["recorded_at"]),
    )


class MongoTierStore:
    def __init__(self, db: Db) -> None:
        self._db = db

    async def rule_versions(self) -> list[TierRules]:
        return [rules_from_doc(d) async for d in self._db[RULES].find({})]

    async def add_rules(self, rules: TierRules) -> bool:
        try:
            await self._db[RULES].insert_one(rules_to_doc(rules))
        except DuplicateKeyError:
            return False
        return True

    async def add_certification(self, certification: Certification) -> bool:
        c = certification
        result = await self._db[CERTIFICATIONS].update_one(
            {"_id": c.certification_id},
            {
                "$setOnInsert": {
                    "partner_id": c.partner_id,
                    "name": c.name,
                    "holder": c.holder,
                    # ISO dates compare as strings, in the database as here.
                    "expires_on": _day(c.expires_on),
                    "recorded_at": c.recorded_at,
                }
            },
            upsert=True,
        )
        return result.upserted_id is not None

    async def certifications(self, partner_id: str) -> list[Certification]:
        cursor = self._db[CERTIFICATIONS].find({"partner_id": partner_id}).limit(10_000)
        return [_certification(d) async for d in cursor]

    async def certified_counts(self, on: dt.date) -> dict[str, int]:
        counts: dict[str, int] = {}
        cursor = self._db[CERTIFICATIONS].find(
            {"expires_on": {"$gte": _day(on)}}, {"partner_id": 1, "_id": 0}
        )
        async for d in cursor:
            counts[d["partner_id"]] = counts.get(d["partner_id"], 0) + 1
        return counts

    async def record_lines(self, lines: Sequence[RevenueLine]) -> None:
        ops = [
            UpdateOne(
                {"_id": line.line_ref},
                {
                    "$set": {
                        "p": line.partner_id,
                        "c": line.currency,
                        "t": line.occurred_at,
                        "n": line.net_amount_minor,
                    }
                },
                upsert=True,
            )
            for line in lines
        ]
        for start in range(0, len(ops), _WRITE_CHUNK):
            await self._db[REVENUE_LINES].bulk_write(
                ops[start : start + _WRITE_CHUNK], ordered=False
            )

    async def record_refunds(self, refunds: Sequence[RefundEntry]) -> None:
        ops = [
            UpdateOne(
                {"_id": r.line_ref},
                {
                    "$set": {
                        f"r.{refund_key(r.refund_id)}": {
                            "a": r.amount_minor,
                            "c": r.currency,
                            "t": r.occurred_at,
                        }
                    }
                },
                upsert=True,
            )
            for r in refunds
        ]
        for start in range(0, len(ops), _WRITE_CHUNK):
            await self._db[REVENUE_LINES].bulk_write(
                ops[start : start + _WRITE_CHUNK], ordered=False
            )

    async def revenue(
        self, after: dt.datetime, until: dt.datetime, partner_id: str | None = None
    ) -> dict[str, dict[str, int]]:
        query: dict[str, Any] = {"t": {"$gt": after, "$lte": until}}
        if partner_id is not None:
            query["p"] = partner_id
        totals: dict[str, dict[str, int]] = {}
        cursor = self._db[REVENUE_LINES].find(
            query, {"_id": 0, "p": 1, "c": 1, "n": 1, "r": 1}, batch_size=5000
        )
        async for d in cursor:
            partner = d.get("p")
            if partner is None:
                continue  # a refund whose order has not been applied yet
            amount = int(d["n"])
            for refund in (d.get("r") or {}).values():
                # Refunds issued by the end of the window count; later ones do not,
                # so evaluating a past day again gives the same answer.
                if _utc(refund["t"]) <= until and refund.get("c", d["c"]) == d["c"]:
                    amount -= int(refund["a"])
            per_currency = totals.setdefault(partner, {})
            per_currency[d["c"]] = per_currency.get(d["c"], 0) + amount
        return totals

    async def partners(self) -> list[Partner]:
        # Read-only: a tier change goes through the unit of work (version-checked).
        return [partner_from_doc(d) async for d in self._db[PARTNERS].find({})]

    async def standings(self, partner_id: str | None = None) -> dict[str, Standing]:
        query = {} if partner_id is None else {"_id": partner_id}
        return {
            d["_id"]: Standing(d["_id"], dt.date.fromisoformat(d["below_since"]))
            async for d in self._db[STANDINGS].find(query)
        }

    async def save_standings(self, below: Sequence[Standing], cleared: Sequence[str]) -> None:
        ops = [
            UpdateOne(
                {"_id": s.partner_id},
                {"$set": {"below_since": _day(s.below_since)}},
                upsert=True,
            )
            for s in below
            if s.below_since is not None
        ]
        for start in range(0, len(ops), _WRITE_CHUNK):
            await self._db[STANDINGS].bulk_write(ops[start : start + _WRITE_CHUNK], ordered=False)
        if cleared:
            await self._db[STANDINGS].delete_many({"_id": {"$in": list(cleared)}})

    async def last_evaluation(self) -> dt.date | None:
        doc = await self._db[EVALUATIONS].find_one({}, sort=[("_id", -1)])
        return dt.date.fromisoformat(doc["_id"]) if doc else None

    async def record_evaluation(
        self, as_of: dt.date, summary: Mapping[str, int], now: dt.datetime
    ) -> None:
        await self._db[EVALUATIONS].update_one(
            {"_id": _day(as_of)},
            {"$set": {**summary, "evaluated_at": now}},
            upsert=True,
        )
