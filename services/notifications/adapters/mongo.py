"""MongoDB adapters: the projections, the delivery records (and their outbox), jobs.

Every write is idempotent: projections apply an event only if it is not older
than what is stored, delivery records are inserted by their deterministic
notification id and never twice, jobs are keyed by what triggered them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

from pymongo import ASCENDING, UpdateMany, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from services.notifications.domain.model import (
    DEFAULT_RENEWAL_MODE,
    Customer,
    Entitlement,
    ListedEntitlement,
    Partner,
    PartnerTerms,
    PlannedDelivery,
    contact_id,
)
from services.notifications.service_layer.ports import FINAL_STATUSES, DeliveryState, WebhookConfig

Doc = dict[str, Any]
Db = AsyncDatabase[Doc]

PARTNERS = "partners"
ENTITLEMENTS = "entitlements"
DELIVERIES = "deliveries"
DELIVERY_OUTBOX = "delivery_outbox"
UNSUBSCRIBES = "unsubscribes"
WEBHOOKS = "webhooks"
ADVISORY_JOBS = "advisory_jobs"
REMINDER_RUNS = "reminder_runs"
_DUPLICATE_KEY = 11000
_INDEX_NOT_FOUND = 27
# Indexes of older versions, dropped at start-up: `recipient` and `(partner_id,
# created_at)` gave way to `(recipient, created_at)`, the `outbox` flag to a collection.
_LEGACY_OUTBOX_INDEX = "outbox_1"
_OBSOLETE_DELIVERY_INDEXES = frozenset(
    {"recipient_1", "partner_id_1_created_at_1", _LEGACY_OUTBOX_INDEX}
)


def recipient_query(recipient: str) -> Doc:
    """Deliveries to `recipient`, an e-mail address (any case) or a partner id.

    A customer record's `recipient` is the lower-cased address, a partner
    record's the partner id (= its `partner_id`). One equality or `$in` on
    `recipient`, so the embedded database reads it by the `(recipient,
    created_at)` index: it answers an `$or`, or a second field next to it,
    by scanning the collection.
    """
    address = recipient.strip().lower()
    return {"recipient": address if address == recipient else {"$in": [address, recipient]}}


def partner_log_query(partner_id: str) -> Doc:
    """A partner's own deliveries (partner-facing records addressed to it).

    A customer record's `recipient` is lower-cased, so only partner records can
    hold a partner id with an upper-case letter (registration issues `P-` and
    upper-case hex): `recipient` alone selects them, by the index. Any other id
    names the audience too (correct, but a scan on the embedded database).
    """
    if partner_id != partner_id.lower():
        return {"recipient": partner_id}
    return {"recipient": partner_id, "audience": "partner"}


async def ensure_indexes(db: Db) -> None:
    """Idempotent; run by the worker and the API at start-up."""
    entitlements = db[ENTITLEMENTS]
    # Reminder pass: one due date at a time, grouped by contact, then by PoR scope.
    await entitlements.create_index(
        [("term_end", ASCENDING), ("contact_id", ASCENDING), ("por", ASCENDING)]
    )
    # Renewal opportunities: one due date, grouped by partner of record.
    await entitlements.create_index([("term_end", ASCENDING), ("por", ASCENDING)])
    # Advisory fan-out: affected products, walked in contact order (keyset pages).
    await entitlements.create_index([("product", ASCENDING), ("contact_id", ASCENDING)])
    # Partner digests: one partner's affected entitlements.
    await entitlements.create_index([("por", ASCENDING), ("product", ASCENDING)])
    # Every write of a delivery record (its insert, then its mark) maintains every one
    # of these, and the embedded database rewrites each of them on every update: only
    # what a query uses. The due read; the admin search by licence; and one
    # `(recipient, created_at)` for both the admin search by recipient and a
    # partner's delivery log (see `recipient_query`). The outbox is a collection of
    # its own (`MongoDeliveries.settle`), not an indexed flag on every record.
    deliveries = db[DELIVERIES]
    await deliveries.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)])
    await deliveries.create_index([("license_keys", ASCENDING)])
    await deliveries.create_index([("recipient", ASCENDING), ("created_at", ASCENDING)])
    existing = set(await deliveries.index_information())
    if _LEGACY_OUTBOX_INDEX in existing:
        # Records an older version left flagged: into the outbox collection first.
        flagged = [doc["_id"] async for doc in deliveries.find({"outbox": True}, {"_id": 1})]
        await _into_outbox(db[DELIVERY_OUTBOX], flagged)
        if flagged:
            await deliveries.update_many({"outbox": True}, {"$unset": {"outbox": ""}})
    for obsolete in _OBSOLETE_DELIVERY_INDEXES & existing:
        try:
            await deliveries.drop_index(obsolete)
        except OperationFailure as error:
            if error.code != _INDEX_NOT_FOUND:  # the API and the worker start together
                raise


async def _upsert_if_not_older(
    collection: AsyncCollection[Doc], key: str, version: dt.datetime, fields: Doc
) -> bool:
    """Apply `fields` unless a newer version is stored. Equal versions re-apply (a replay).

    "Not newer" is `$not: {$gt}` (which also matches a document without a version),
    not an `$or`: the embedded database answers an `$or` by scanning the collection
    (4 upserts/s at 20k entitlements, against 314/s this way).
    """
    try:
        await collection.update_one(
            {"_id": key, "version": {"$not": {"$gt": version}}},
            {"$set": {**fields, "version": version}},
            upsert=True,
        )
    except DuplicateKeyError:
        return False
    return True


# --- projections -------------------------------------------------------------------------


def _terms_key(effective_at: dt.datetime) -> str:
    return str(round(effective_at.timestamp() * 1000))


def _terms(doc: Mapping[str, Any]) -> tuple[PartnerTerms, ...]:
    entries = [
        PartnerTerms(
            effective_at=_aware(t["effective_at"]),
            status=t["status"],
            renewal_mode=t.get("renewal_mode") or DEFAULT_RENEWAL_MODE,
        )
        for t in (doc.get("terms") or {}).values()
    ]
    return tuple(sorted(entries, key=lambda t: t.effective_at))


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def partner_from_doc(doc: Mapping[str, Any]) -> Partner:
    branding = doc.get("branding") or {}
    return Partner(
        partner_id=doc["_id"],
        display_name=doc["display_name"],
        legal_name=doc.get("legal_name", ""),
        status=doc.get("status", "active"),
        co_brand_customer_messages=bool(doc.get("co_brand_customer_messages")),
        contact_email=doc["contact_email"],
        seller_code=doc.get("seller_code"),
        logo_url=branding.get("logo_url"),
        color=branding.get("color"),
        phone=branding.get("phone"),
        website=branding.get("website"),
        renewal_mode=doc.get("renewal_mode") or DEFAULT_RENEWAL_MODE,
        terms=_terms(doc),
    )


def entitlement_from_doc(doc: Mapping[str, Any]) -> Entitlement:
    customer = doc["customer"]
    return Entitlement(
        license_key=doc["_id"],
        product=doc["product"],
        sku=doc.get("sku", ""),
        term_end=dt.date.fromisoformat(doc["term_end"]),
        customer=Customer(
            customer_id=customer.get("customer_id", ""),
            org_name=customer.get("org_name", ""),
            contact_name=customer.get("contact_name", ""),
            email=customer["email"],
        ),
        partner_of_record=doc.get("por"),
    )


SECRET_FACTS = ("facts.sign_in_token", "facts.confirmation_token")
"""Facts that are one-time secrets, kept only while their message is pending."""


class MongoProjections:
    """Partners and entitlements as the registration service last described them."""

    def __init__(self, db: Db) -> None:
        self.partners_ = db[PARTNERS]
        self.entitlements = db[ENTITLEMENTS]

    async def apply_partner(self, data: Mapping[str, Any], version: dt.datetime) -> bool:
        fields = {
            "display_name": data["display_name"],
            "legal_name": data["legal_name"],
            "status": data["status"],
            "co_brand_customer_messages": data["co_brand_customer_messages"],
            "contact_email": data["contact_email"],
            "seller_code": data.get("seller_code"),
            "branding": dict(data.get("branding") or {}),
            "parent_partner_id": data.get("parent_partner_id"),
        }
        fields["renewal_mode"] = data.get("renewal_mode") or DEFAULT_RENEWAL_MODE
        applied = await _upsert_if_not_older(self.partners_, data["partner_id"], version, fields)
        # The effective-dated terms are kept whatever order the events come in (a
        # back-dated change is older than the stored version but still in force over its
        # own interval): one entry per `effective_at`, keyed by its epoch milliseconds.
        await self.partners_.update_one(
            {"_id": data["partner_id"]},
            {
                "$set": {
                    f"terms.{_terms_key(version)}": {
                        "effective_at": version,
                        "status": data["status"],
                        "renewal_mode": fields["renewal_mode"],
                    }
                }
            },
        )
        return applied

    async def apply_entitlement(self, data: Mapping[str, Any], version: dt.datetime) -> bool:
        customer = dict(data["customer"])
        por = data.get("partner_of_record") or None
        fields = {
            "product": data["product"],
            "sku": data["sku"],
            "term_start": str(data["term_start"]),
            "term_end": str(data["term_end"]),
            "customer": customer,
            "contact_id": contact_id(customer["email"]),
            "por": por["partner_id"] if por else None,
            "por_source": por["source"] if por else None,
        }
        return await _upsert_if_not_older(self.entitlements, data["license_key"], version, fields)

    async def partners(self, partner_ids: Iterable[str]) -> dict[str, Partner]:
        wanted = sorted(set(partner_ids))
        if not wanted:
            return {}
        cursor = self.partners_.find({"_id": {"$in": wanted}})
        return {doc["_id"]: partner_from_doc(doc) async for doc in cursor}

    async def due_on(self, term_end: dt.date) -> AsyncIterator[Entitlement]:
        cursor = self.entitlements.find({"term_end": term_end.isoformat()}).sort(
            [("contact_id", ASCENDING), ("por", ASCENDING), ("_id", ASCENDING)]
        )
        async for doc in cursor:
            yield entitlement_from_doc(doc)

    async def opportunities_on(
        self, term_end: dt.date, partner_ids: Sequence[str] | None = None
    ) -> AsyncIterator[Entitlement]:
        por: Doc = {"$in": list(partner_ids)} if partner_ids is not None else {"$ne": None}
        cursor = self.entitlements.find({"term_end": term_end.isoformat(), "por": por}).sort(
            [("por", ASCENDING), ("_id", ASCENDING)]
        )
        async for doc in cursor:
            yield entitlement_from_doc(doc)

    @staticmethod
    def _affected(products: Sequence[str], not_before: dt.date) -> Doc:
        return {"product": {"$in": list(products)}, "term_end": {"$gte": not_before.isoformat()}}

    async def count_affected(self, products: Sequence[str], not_before: dt.date) -> int:
        return await self.entitlements.count_documents(self._affected(products, not_before))

    async def affected_page(
        self,
        products: Sequence[str],
        not_before: dt.date,
        after_contact: str,
        limit: int,
        up_to: str | None = None,
    ) -> tuple[list[Entitlement], str | None, bool]:
        """The next contacts' affected entitlements, whole contacts only, ~`limit` read.

        Only contacts in (`after_contact`, `up_to`] (no upper end if None): the
        embedded database reads the whole range before it limits, so the caller
        keeps it small. Returns the entitlements, the last contact read (affected
        or not: where the next page starts) and whether the range holds nothing
        more. The term is checked here, not in the query: with it the embedded
        database scans the whole collection instead of the `(product, contact_id)`
        index.
        """
        contacts: Doc = {"$gt": after_contact}
        if up_to is not None:
            contacts["$lte"] = up_to
        docs = [
            doc
            async for doc in self.entitlements.find(
                {"product": self._products(products), "contact_id": contacts}
            )
            .sort([("contact_id", ASCENDING), ("_id", ASCENDING)])
            .limit(limit)
        ]
        exhausted = len(docs) < limit
        if not exhausted:
            # The page may have cut the last contact in two: fetch the rest of it.
            last = docs[-1]["contact_id"]
            docs = [d for d in docs if d["contact_id"] != last]
            rest = self.entitlements.find(
                {"product": self._products(products), "contact_id": last}
            ).sort([("_id", ASCENDING)])
            docs.extend([doc async for doc in rest])
        floor = not_before.isoformat()
        page = [entitlement_from_doc(d) for d in docs if str(d.get("term_end", "")) >= floor]
        return page, (docs[-1]["contact_id"] if docs else None), exhausted

    @staticmethod
    def _products(products: Sequence[str]) -> Any:
        return products[0] if len(products) == 1 else {"$in": list(products)}

    async def affected_partners(self, products: Sequence[str], not_before: dt.date) -> list[str]:
        query = {**self._affected(products, not_before), "por": {"$ne": None}}
        return sorted(p for p in await self.entitlements.distinct("por", query) if p)

    async def affected_of_partner(
        self, partner_id: str, products: Sequence[str], not_before: dt.date, limit: int
    ) -> tuple[list[Entitlement], int]:
        # One read of the partner's entitlements by the `(por, product)` index, the
        # term checked here: a count with the term in it scans the whole collection.
        floor = not_before.isoformat()
        cursor = self.entitlements.find(
            {"por": partner_id, "product": self._products(products)}
        ).sort([("_id", ASCENDING)])
        listed: list[Entitlement] = []
        total = 0
        async for doc in cursor:
            if str(doc.get("term_end", "")) < floor:
                continue
            total += 1
            if len(listed) < limit:
                listed.append(entitlement_from_doc(doc))
        return listed, total


# --- delivery records ------------------------------------------------------------------------


async def _into_outbox(outbox: AsyncCollection[Doc], notification_ids: Sequence[str]) -> None:
    if not notification_ids:
        return
    try:
        await outbox.insert_many([{"_id": i} for i in notification_ids], ordered=False)
    except BulkWriteError as error:
        if any(e["code"] != _DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
            raise


def _listed_to_doc(e: ListedEntitlement) -> Doc:
    return {
        "license_key": e.license_key,
        "product": e.product,
        "term_end": e.term_end.isoformat() if e.term_end else None,
        "por": e.partner_of_record,
        "sku": e.sku,
        "org_name": e.org_name,
    }


def _listed_from_doc(doc: Mapping[str, Any]) -> ListedEntitlement:
    term_end = doc.get("term_end")
    return ListedEntitlement(
        license_key=doc["license_key"],
        product=doc.get("product", ""),
        term_end=dt.date.fromisoformat(term_end) if term_end else None,
        partner_of_record=doc.get("por"),
        sku=doc.get("sku", ""),
        org_name=doc.get("org_name", ""),
    )


def delivery_to_doc(
    planned: PlannedDelivery, now: dt.datetime, traceparent: str | None = None
) -> Doc:
    doc: Doc = {
        "_id": planned.notification_id,
        "type": planned.type,
        "channel": planned.channel,
        "audience": planned.audience,
        "recipient": planned.recipient.lower()
        if planned.audience == "customer"
        else planned.recipient,
        "contact_id": planned.contact_id,
        "partner_id": planned.recipient if planned.audience == "partner" else None,
        "partner_scope": planned.partner_scope,
        "entitlements": [_listed_to_doc(e) for e in planned.entitlements],
        "license_keys": planned.license_keys,
        "facts": dict(planned.facts),
        "related": list(planned.related_partner_ids),
        "occurred_at": planned.occurred_at,
        "contact_name": planned.contact_name,
        "org_name": planned.org_name,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "error": None,
        "created_at": now,
        "finished_at": None,
    }
    if traceparent:
        doc["traceparent"] = traceparent
    return doc


def delivery_from_doc(doc: Mapping[str, Any]) -> DeliveryState:
    planned = PlannedDelivery(
        notification_id=doc["_id"],
        type=doc["type"],
        channel=doc["channel"],
        audience=doc["audience"],
        recipient=doc["recipient"],
        partner_scope=doc.get("partner_scope"),
        entitlements=tuple(_listed_from_doc(e) for e in doc.get("entitlements", [])),
        occurred_at=doc["occurred_at"],
        facts=doc.get("facts") or {},
        related_partner_ids=tuple(doc.get("related") or ()),
        contact_name=doc.get("contact_name", ""),
        org_name=doc.get("org_name", ""),
    )
    return DeliveryState(
        planned=planned,
        status=doc["status"],
        attempts=int(doc.get("attempts", 0)),
        next_attempt_at=doc["next_attempt_at"],
        error=doc.get("error"),
        created_at=doc.get("created_at"),
        finished_at=doc.get("finished_at"),
        error_detail=doc.get("error_detail"),
        traceparent=doc.get("traceparent"),
    )


class MongoDeliveries:
    """Delivery records: written before sending, marked after, published from an outbox."""

    def __init__(self, db: Db) -> None:
        self.collection = db[DELIVERIES]
        self.outbox = db[DELIVERY_OUTBOX]

    async def plan(
        self,
        planned: Sequence[PlannedDelivery],
        now: dt.datetime,
        *,
        traces: Mapping[str, str] | None = None,
    ) -> int:
        if not planned:
            return 0
        traces = traces or {}
        docs = list(
            {
                p.notification_id: delivery_to_doc(p, now, traces.get(p.notification_id))
                for p in planned
            }.values()
        )
        try:
            result = await self.collection.insert_many(docs, ordered=False)
        except BulkWriteError as error:
            others = [
                e for e in error.details.get("writeErrors", []) if e["code"] != _DUPLICATE_KEY
            ]
            if others:
                raise
            return int(error.details.get("nInserted", 0))
        return len(result.inserted_ids)

    async def due(self, now: dt.datetime, limit: int) -> list[DeliveryState]:
        # The embedded database reads the whole index range before it sorts and
        # limits: the dispatcher keeps `now` close to the oldest due record.
        cursor = (
            self.collection.find({"status": "pending", "next_attempt_at": {"$lte": now}})
            .sort([("next_attempt_at", ASCENDING)])
            .limit(limit)
        )
        return [delivery_from_doc(doc) async for doc in cursor]

    async def settle(self, states: Sequence[DeliveryState], *, published: bool) -> None:
        """Write each record's new state, if it is still pending, in as few statements as can be.

        Records that end the same way (status, attempts, error, time) share one
        `update_many` by id: on the embedded database every statement is a
        transaction commit, so a wave costs one, not one per message. A retried
        record keeps its own next attempt time and so its own statement.

        Final records whose outcome is not `published` go into the outbox
        collection first (one more write, only while the broker is failing): a
        crash in between leaves an outbox entry for a record still pending,
        which `unpublished` drops (it is sent again and settled then).
        """
        if not states:
            return
        if not published:
            await _into_outbox(
                self.outbox,
                [s.planned.notification_id for s in states if s.status in FINAL_STATUSES],
            )
        finals: dict[tuple[Any, ...], list[str]] = {}
        writes: list[UpdateOne | UpdateMany] = []
        for state in states:
            notification_id = state.planned.notification_id
            if state.status == "pending":
                fields: Doc = {
                    "status": state.status,
                    "attempts": state.attempts,
                    "error": state.error,
                    "next_attempt_at": state.next_attempt_at,
                }
                writes.append(
                    UpdateOne({"_id": notification_id, "status": "pending"}, {"$set": fields})
                )
                continue
            key = (
                state.status,
                state.attempts,
                state.error,
                state.error_detail,
                state.finished_at,
            )
            finals.setdefault(key, []).append(notification_id)
        for (status, attempts, error, error_detail, finished_at), ids in finals.items():
            fields = {
                "status": status,
                "attempts": attempts,
                "error": error,
                "finished_at": finished_at,
            }
            if error_detail is not None:
                fields["error_detail"] = error_detail
            # A one-time link's token is needed until the mail went (or never will):
            # then it is dropped, so the database keeps no usable secret (CONTRACT 6.2, 6.9).
            update = {"$set": fields, "$unset": dict.fromkeys(SECRET_FACTS, "")}
            writes.append(UpdateMany({"_id": {"$in": ids}, "status": "pending"}, update))
        await self.collection.bulk_write(writes, ordered=False)

    async def unpublished(self, limit: int) -> list[DeliveryState]:
        while True:
            ids = [doc["_id"] async for doc in self.outbox.find({}).limit(limit)]
            if not ids:
                return []
            cursor = self.collection.find({"_id": {"$in": ids}})
            found = [delivery_from_doc(doc) async for doc in cursor]
            final = [s for s in found if s.status in FINAL_STATUSES]
            if final:
                return final
            # Only records still pending (a crash between the outbox and the settle
            # write): their outcome comes when they are settled, not from here.
            await self.outbox.delete_many({"_id": {"$in": ids}})

    async def mark_published(self, notification_ids: Sequence[str]) -> None:
        if notification_ids:
            await self.outbox.delete_many({"_id": {"$in": list(notification_ids)}})

    async def get(self, notification_id: str) -> DeliveryState | None:
        doc = await self.collection.find_one({"_id": notification_id})
        return delivery_from_doc(doc) if doc else None

    async def search(self, query: Doc, limit: int, skip: int = 0) -> list[Doc]:
        cursor = (
            self.collection.find(query, {"facts": 0, "entitlements": 0, "related": 0})
            .sort([("created_at", ASCENDING), ("_id", ASCENDING)])
            .skip(skip)
            .limit(limit)
        )
        return [doc async for doc in cursor]

    async def count(self, query: Doc) -> int:
        return await self.collection.count_documents(query)


# --- preferences and partner webhooks ------------------------------------------------------


class MongoPreferences:
    def __init__(self, db: Db) -> None:
        self.collection = db[UNSUBSCRIBES]

    async def unsubscribe(self, contact_id: str, now: dt.datetime) -> None:
        await self.collection.update_one(
            {"_id": contact_id}, {"$setOnInsert": {"at": now}}, upsert=True
        )

    async def unsubscribed(self, contact_ids: Iterable[str]) -> set[str]:
        wanted = sorted(set(contact_ids))
        if not wanted:
            return set()
        return {doc["_id"] async for doc in self.collection.find({"_id": {"$in": wanted}})}


class MongoWebhooks:
    def __init__(self, db: Db) -> None:
        self.collection = db[WEBHOOKS]

    async def set(self, config: WebhookConfig, now: dt.datetime) -> None:
        await self.collection.update_one(
            {"_id": config.partner_id},
            {"$set": {"url": config.url, "secret": config.secret_ciphertext, "updated_at": now}},
            upsert=True,
        )

    async def of(self, partner_ids: Iterable[str]) -> dict[str, WebhookConfig]:
        wanted = sorted(set(partner_ids))
        if not wanted:
            return {}
        return {
            doc["_id"]: WebhookConfig(doc["_id"], doc["url"], doc["secret"])
            async for doc in self.collection.find({"_id": {"$in": wanted}})
        }

    async def all(self) -> AsyncIterator[WebhookConfig]:
        async for doc in self.collection.find({}).sort("_id", 1):
            yield WebhookConfig(doc["_id"], doc["url"], doc["secret"])

    async def replace_secret(self, partner_id: str, old: str, new: str) -> bool:
        # Only over the ciphertext read: a partner who set a new secret meanwhile keeps it.
        result = await self.collection.update_one(
            {"_id": partner_id, "secret": old}, {"$set": {"secret": new}}
        )
        return result.modified_count == 1


# --- advisory fan-out jobs, reminder runs (the loops' leases: chassis.lease) ---------------


class MongoAdvisoryJobs:
    """One job per advisory or product notice: where its fan-out stands, so a restart resumes it."""

    def __init__(self, db: Db) -> None:
        self.collection = db[ADVISORY_JOBS]

    async def open(
        self,
        advisory: Mapping[str, Any],
        occurred_at: dt.datetime,
        *,
        job_id: str | None = None,
        kind: str = "advisory",
    ) -> str:
        """'opened', 'duplicate' (same advisory again) or 'conflict' (same id, other content).

        A product notice's job has `kind` "notice" and the id `notice/<notice_id>`
        (`model.notice_key`); its `advisory` field holds the notice.
        """
        advisory_id = job_id or advisory["advisory_id"]
        try:
            await self.collection.insert_one(
                {
                    "_id": advisory_id,
                    "kind": kind,
                    "advisory": dict(advisory),
                    "occurred_at": occurred_at,
                    "phase": "customers",
                    "contact_cursor": "",
                    "partner_cursor": "",
                    "planned": 0,
                    "contacts": 0,
                    "entitlements": 0,
                    "total": None,
                    "created_at": occurred_at,
                    "finished_at": None,
                }
            )
        except DuplicateKeyError:
            stored = await self.collection.find_one({"_id": advisory_id})
            same = stored is not None and stored.get("advisory") == dict(advisory)
            return "duplicate" if same else "conflict"
        return "opened"

    async def next_open(self) -> Doc | None:
        return await self.collection.find_one(
            {"phase": {"$ne": "done"}}, sort=[("created_at", ASCENDING), ("_id", ASCENDING)]
        )

    async def update(self, advisory_id: str, fields: Doc, increments: Doc | None = None) -> None:
        change: Doc = {"$set": fields}
        if increments:
            change["$inc"] = increments
        await self.collection.update_one({"_id": advisory_id}, change)

    async def advisories(self, advisory_ids: Iterable[str]) -> dict[str, Mapping[str, Any]]:
        wanted = sorted(set(advisory_ids))
        if not wanted:
            return {}
        return {
            doc["_id"]: doc["advisory"]
            async for doc in self.collection.find({"_id": {"$in": wanted}}, {"advisory": 1})
        }

    async def get(self, advisory_id: str) -> Doc | None:
        return await self.collection.find_one({"_id": advisory_id})


class MongoReminderRuns:
    def __init__(self, db: Db) -> None:
        self.collection = db[REMINDER_RUNS]

    async def record(self, as_of: dt.date, planned: int, now: dt.datetime) -> None:
        await self.collection.update_one(
            {"_id": as_of.isoformat()},
            {"$set": {"last_run_at": now}, "$inc": {"runs": 1, "planned": planned}},
            upsert=True,
        )

    async def last_scheduled(self) -> dt.date | None:
        doc = await self.collection.find_one({"_id": "scheduler"})
        return dt.date.fromisoformat(doc["last_as_of"]) if doc else None

    async def mark_scheduled(self, as_of: dt.date, now: dt.datetime) -> None:
        await self.collection.update_one(
            {"_id": "scheduler"},
            {"$set": {"last_as_of": as_of.isoformat(), "at": now}},
            upsert=True,
        )
