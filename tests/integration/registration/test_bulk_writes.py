"""The MongoDB unit of work's write paths on the real embedded database.

A commit goes as one client-level `bulkWrite` (MongoDB 8.0) or, on an older
server, as a bulk write per collection: every test runs both. A commit with
many changed documents (an order batch) rewrites them as a versioned delete
plus an insert instead of one replace each; order-line conflicts are
inserted, other conflicts upserted. The outcome and the optimistic version
check must be those of the plain path.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from pymongo.errors import ClientBulkWriteException

from services.registration.adapters import mongo
from services.registration.adapters.mongo import (
    CONFLICTS,
    ENTITLEMENTS,
    OUTBOX,
    MongoUnitOfWork,
    ensure_indexes,
)
from services.registration.domain.attribution import PartnerOfRecord
from services.registration.domain.entitlements import AttributionConflict
from services.registration.service_layer.events import entitlement_event
from services.registration.service_layer.orders import OrderApplier
from services.registration.service_layer.partners import PartnerService
from services.registration.service_layer.unit_of_work import ConcurrentUpdate, DuplicateKey
from tests.unit.registration.builders import at, enrol, incoming, line, order

MANY = mongo.REWRITE_AT + 4


@pytest.fixture(autouse=True, params=["one_command", "per_collection"])
def write_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "per_collection":
        monkeypatch.setattr(mongo, "CLIENT_BULK_WRITE_WIRE_VERSION", 10**6)
    else:
        monkeypatch.setattr(mongo, "ONE_COMMAND_MAX_OPS", 10**6)
    return str(request.param)


def keys(n: int = MANY) -> list[str]:
    return [f"LK-BULK-{i:03d}" for i in range(n)]


async def new_entitlements(db: Any) -> OrderApplier:
    await ensure_indexes(db)
    applier = OrderApplier(
        lambda: MongoUnitOfWork(db),
        lambda: at("2026-01-10T10:00:00Z"),
        window_months=36,
    )
    result = await applier.apply(
        [incoming(order(f"O-NEW-{n}", line(key)), index=n) for n, key in enumerate(keys())]
    )
    assert result.applied == MANY
    return applier


async def test_a_batch_of_changes_is_rewritten_with_the_next_versions(mongo_db: Any) -> None:
    applier = await new_entitlements(mongo_db)
    partners = PartnerService(lambda: MongoUnitOfWork(mongo_db), lambda: at("2026-01-01T00:00:00Z"))
    partner_id, code, _ = await enrol(partners, effective_at=at("2025-01-01T00:00:00Z"))

    result = await applier.apply(
        [
            incoming(
                order(
                    f"O-RENEW-{n}",
                    line(key, "renewal", term=("2027-01-10", "2028-01-09")),
                    channel="partner",
                    partner_code=code,
                ),
                "2027-01-05T09:00:00Z",
                index=n,
            )
            for n, key in enumerate(keys())
        ]
    )

    assert result.applied == MANY and not result.rejections
    docs = await mongo_db[ENTITLEMENTS].find({"_id": {"$in": keys()}}).to_list()
    assert len(docs) == MANY
    for doc in docs:
        assert doc["version"] == 2
        assert doc["term_end"] == "2028-01-09"
        assert doc["partner_of_record"]["partner_id"] == partner_id
        assert [c["kind"] for c in doc["attribution_history"]] == ["set"]
    # The secondary index sees the rewritten documents.
    async with MongoUnitOfWork(mongo_db) as uow:
        listed = await uow.entitlements.list_for_partner(
            partner_id, term_end_before=None, after=None, limit=100
        )
    assert sorted(e.license_key for e in listed) == keys()


async def test_a_document_changed_meanwhile_fails_the_whole_rewrite(mongo_db: Any) -> None:
    await new_entitlements(mongo_db)
    uow = MongoUnitOfWork(mongo_db)
    loaded = await uow.entitlements.get_many(keys())
    for entitlement in loaded.values():
        entitlement.term_end = dt.date(2030, 1, 1)
    # Another writer gets to one of them first.
    await mongo_db[ENTITLEMENTS].update_one(
        {"_id": keys()[7]}, {"$set": {"version": 2, "sku": "CHANGED-ELSEWHERE"}}
    )

    with pytest.raises(ConcurrentUpdate):
        await uow.commit()

    docs = {d["_id"]: d for d in await mongo_db[ENTITLEMENTS].find({}).to_list()}
    assert sorted(docs) == keys(), "a failed rewrite must not lose a document"
    assert all(d["term_end"] == "2027-01-09" for d in docs.values())
    assert docs[keys()[7]]["sku"] == "CHANGED-ELSEWHERE"


async def test_a_few_changes_take_the_replace_path_with_the_same_check(mongo_db: Any) -> None:
    await new_entitlements(mongo_db)
    uow = MongoUnitOfWork(mongo_db)
    loaded = await uow.entitlements.get_many(keys()[:2])
    for entitlement in loaded.values():
        entitlement.term_end = dt.date(2030, 1, 1)
    await mongo_db[ENTITLEMENTS].update_one({"_id": keys()[1]}, {"$set": {"version": 2}})

    with pytest.raises(ConcurrentUpdate):
        await uow.commit()

    first = await mongo_db[ENTITLEMENTS].find_one({"_id": keys()[0]})
    assert first is not None and first["version"] == 1 and first["term_end"] == "2027-01-09"


def conflict(conflict_id: str, reason: str) -> AttributionConflict:
    return AttributionConflict(
        conflict_id=conflict_id,
        license_key="LK-C",
        claimant_partner_id="p-claimant",
        claim_source="partner_registration",
        claimed_at=at("2026-02-01T00:00:00Z"),
        via="partner_registration",
        ref="partner:p-claimant",
        partner_of_record=PartnerOfRecord("p-holder", at("2026-01-01T00:00:00Z"), "partner_sale"),
        reason=reason,
        recorded_at=at("2026-02-01T00:00:00Z"),
    )


async def test_conflicts_claimed_again_are_replaced_and_new_ones_inserted(mongo_db: Any) -> None:
    await ensure_indexes(mongo_db)
    for reason in ("first", "second"):
        uow = MongoUnitOfWork(mongo_db)
        uow.conflicts.add(conflict("c-repeated", reason))
        await uow.commit()
    uow = MongoUnitOfWork(mongo_db)
    # Recorded twice in one commit: one document, the last one.
    uow.conflicts.add(conflict("c-once", "early"), known_new=True)
    uow.conflicts.add(dataclasses.replace(conflict("c-once", "late")), known_new=True)
    await uow.commit()

    docs = {d["_id"]: d for d in await mongo_db[CONFLICTS].find({}).to_list()}
    assert sorted(docs) == ["c-once", "c-repeated"]
    assert docs["c-repeated"]["reason"] == "second"
    assert docs["c-once"]["reason"] == "late"


async def test_an_event_is_never_written_without_its_change(mongo_db: Any) -> None:
    await new_entitlements(mongo_db)
    uow = MongoUnitOfWork(mongo_db)
    entitlement = await uow.entitlements.get(keys()[0])
    assert entitlement is not None
    entitlement.term_end = dt.date(2030, 1, 1)
    uow.emit(
        entitlement_event(
            "entitlement.updated", entitlement, occurred_at=at("2026-03-01T00:00:00Z")
        )
    )
    await mongo_db[ENTITLEMENTS].update_one({"_id": keys()[0]}, {"$set": {"version": 2}})

    with pytest.raises(ConcurrentUpdate):
        await uow.commit()

    assert await mongo_db[OUTBOX].count_documents({}) == 0


async def test_duplicate_keys_name_the_seller_code_or_make_a_concurrent_update(
    mongo_db: Any,
) -> None:
    await ensure_indexes(mongo_db)
    partners = PartnerService(lambda: MongoUnitOfWork(mongo_db), lambda: at("2026-01-01T00:00:00Z"))
    partner_id, code, _ = await enrol(partners)
    async with MongoUnitOfWork(mongo_db) as reader:
        existing = await reader.partners.get(partner_id)
    assert existing is not None

    same_code = MongoUnitOfWork(mongo_db)
    same_code.partners.add(
        dataclasses.replace(existing, partner_id="p-other", api_key_hash="other", version=0)
    )
    with pytest.raises(DuplicateKey) as duplicate:
        await same_code.commit()
    assert duplicate.value.field == "seller_code"

    created_twice = MongoUnitOfWork(mongo_db)
    created_twice.partners.add(
        dataclasses.replace(existing, seller_code="7K3M-9QXF", api_key_hash="x", version=0)
    )
    with pytest.raises(ConcurrentUpdate):
        await created_twice.commit()
    assert await mongo_db["partners"].count_documents({}) == 1
    assert code == existing.seller_code


@pytest.mark.parametrize(
    ("write_errors", "expected"),
    [
        ([{"idx": 0, "code": 112, "errmsg": "WriteConflict"}], ConcurrentUpdate),
        ([{"idx": 1, "code": 11000, "keyPattern": {"_id": 1}}], ConcurrentUpdate),
        ([{"idx": 0, "code": 11000, "keyPattern": {"seller_code": 1}}], DuplicateKey),
    ],
)
async def test_one_command_write_errors_map_to_the_use_case_errors(
    mongo_db: Any,
    monkeypatch: pytest.MonkeyPatch,
    write_errors: list[dict[str, Any]],
    expected: type[Exception],
) -> None:
    async def failing(self: Any, db: Any, session: Any) -> None:
        details = {"error": None, "writeErrors": write_errors, "writeConcernErrors": []}
        raise ClientBulkWriteException(details, False)

    monkeypatch.setattr(mongo._WritePlan, "execute", failing)
    uow = MongoUnitOfWork(mongo_db)
    uow.conflicts.add(conflict("c-1", "r"))
    with pytest.raises(expected):
        await uow.commit()
