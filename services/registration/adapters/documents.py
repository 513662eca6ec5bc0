"""Domain objects to and from MongoDB documents (dates as `YYYY-MM-DD` text, so they sort)."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from services.registration.domain.attribution import PartnerOfRecord
from services.registration.domain.customers import PartnerAccess, email_key
from services.registration.domain.entitlements import (
    AttributionChange,
    AttributionConflict,
    CustomerInfo,
    CustomerRegistration,
    Entitlement,
    PendingContact,
)
from services.registration.domain.partners import AuditEntry, Branding, Change, Partner
from services.registration.service_layer.unit_of_work import ProcessedOrder, StoredRecord

Doc = dict[str, Any]


def _utc(value: dt.datetime) -> dt.datetime:
    # The client is tz-aware; a naive value would only come from a hand-made document.
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _opt_utc(value: dt.datetime | None) -> dt.datetime | None:
    return _utc(value) if value is not None else None


def _history_doc(history: list[Change[Any]]) -> list[Doc]:
    return [
        {"value": c.value, "effective_at": c.effective_at, "recorded_at": c.recorded_at}
        for c in history
    ]


def _history(docs: list[Doc]) -> list[Change[Any]]:
    return [Change(d["value"], _utc(d["effective_at"]), _utc(d["recorded_at"])) for d in docs]


def partner_to_doc(p: Partner, version: int) -> Doc:
    return {
        "_id": p.partner_id,
        "display_name": p.display_name,
        "legal_name": p.legal_name,
        "type": p.type,
        "parent_partner_id": p.parent_partner_id,
        "contact_email": p.contact_email,
        "branding": {
            "logo_url": p.branding.logo_url,
            "color": p.branding.color,
            "phone": p.branding.phone,
            "website": p.branding.website,
        },
        "co_brand_customer_messages": p.co_brand_customer_messages,
        "customer_ids": list(p.customer_ids),
        "seller_code": p.seller_code,
        "api_key_hash": p.api_key_hash,
        "created_at": p.created_at,
        "effective_at": p.effective_at,
        "tier_history": _history_doc(cast("list[Change[Any]]", p.tier_history)),
        "status_history": _history_doc(cast("list[Change[Any]]", p.status_history)),
        "renewal_mode_history": _history_doc(cast("list[Change[Any]]", p.renewal_mode_history)),
        "audit": [
            {
                "action": a.action,
                "actor": a.actor,
                "at": a.at,
                "before": a.before,
                "after": a.after,
                "effective_at": a.effective_at,
            }
            for a in p.audit
        ],
        "version": version,
    }


def partner_from_doc(d: Doc) -> Partner:
    b = d.get("branding") or {}
    return Partner(
        partner_id=d["_id"],
        display_name=d["display_name"],
        legal_name=d["legal_name"],
        type=d["type"],
        parent_partner_id=d.get("parent_partner_id"),
        contact_email=d["contact_email"],
        branding=Branding(
            logo_url=b.get("logo_url"),
            color=b.get("color"),
            phone=b.get("phone"),
            website=b.get("website"),
        ),
        co_brand_customer_messages=bool(d.get("co_brand_customer_messages", False)),
        customer_ids=list(d.get("customer_ids", [])),
        seller_code=d["seller_code"],
        api_key_hash=d["api_key_hash"],
        created_at=_utc(d["created_at"]),
        effective_at=_utc(d["effective_at"]),
        tier_history=_history(d["tier_history"]),
        status_history=_history(d["status_history"]),
        renewal_mode_history=_history(d.get("renewal_mode_history") or []),
        audit=[
            AuditEntry(
                action=a["action"],
                actor=a["actor"],
                at=_utc(a["at"]),
                before=a.get("before"),
                after=a.get("after"),
                effective_at=_utc(a["effective_at"]),
            )
            for a in d.get("audit") or []
        ],
        version=int(d.get("version", 0)),
    )


def _por_doc(por: PartnerOfRecord | None) -> Doc | None:
    if por is None:
        return None
    return {"partner_id": por.partner_id, "since": por.since, "source": por.source}


def _por(d: Doc | None) -> PartnerOfRecord | None:
    if d is None:
        return None
    return PartnerOfRecord(d["partner_id"], _utc(d["since"]), d["source"])


def _customer_doc(c: CustomerInfo) -> Doc:
    return {
        "customer_id": c.customer_id,
        "org_name": c.org_name,
        "contact_name": c.contact_name,
        "email": c.email,
        "country": c.country,
    }


def _customer(d: Doc) -> CustomerInfo:
    return CustomerInfo(
        d["customer_id"], d["org_name"], d["contact_name"], d["email"], d["country"]
    )


def _pending_contact_doc(p: PendingContact | None) -> Doc | None:
    if p is None:
        return None
    return {
        "customer": _customer_doc(p.customer),
        "token_hash": p.token_hash,
        "requested_at": p.requested_at,
        "expires_at": p.expires_at,
    }


def _pending_contact(d: Doc | None) -> PendingContact | None:
    if d is None:
        return None
    return PendingContact(
        customer=_customer(d["customer"]),
        token_hash=d["token_hash"],
        requested_at=_utc(d["requested_at"]),
        expires_at=_utc(d["expires_at"]),
    )


def entitlement_to_doc(e: Entitlement, version: int) -> Doc:
    registration = None
    if e.registration is not None:
        registration = {
            "registered_at": e.registration.registered_at,
            "token_hash": e.registration.token_hash,
            "seller_code": e.registration.seller_code,
            "seller_code_at": e.registration.seller_code_at,
        }
    return {
        "_id": e.license_key,
        "product": e.product,
        "sku": e.sku,
        "term_start": e.term_start.isoformat(),
        "term_end": e.term_end.isoformat(),
        "customer": _customer_doc(e.customer),
        "created_at": e.created_at,
        "partner_of_record": _por_doc(e.partner_of_record),
        "registration": registration,
        "registered_by_partners": list(e.registered_by_partners),
        "pending_contact": _pending_contact_doc(e.pending_contact),
        # CONTRACT 6.2: the customer is its lower-cased e-mail; indexed by its hash.
        "customer_email_key": email_key(e.customer.email),
        "access": [
            {"partner_id": a.partner_id, "permission": a.permission, "granted_at": a.granted_at}
            for a in e.access
        ],
        "attribution_history": [
            {
                "at": c.at,
                "recorded_at": c.recorded_at,
                "kind": c.kind,
                "partner_of_record": _por_doc(c.partner_of_record),
                "previous_partner_id": c.previous_partner_id,
                "via": c.via,
                "ref": c.ref,
                "reason": c.reason,
            }
            for c in e.attribution_history
        ],
        "version": version,
    }


def entitlement_from_doc(d: Doc) -> Entitlement:
    r = d.get("registration")
    registration = None
    if r is not None:
        registration = CustomerRegistration(
            registered_at=_utc(r["registered_at"]),
            token_hash=r["token_hash"],
            seller_code=r.get("seller_code"),
            seller_code_at=_opt_utc(r.get("seller_code_at")),
        )
    return Entitlement(
        license_key=d["_id"],
        product=d["product"],
        sku=d["sku"],
        term_start=dt.date.fromisoformat(d["term_start"]),
        term_end=dt.date.fromisoformat(d["term_end"]),
        customer=_customer(d["customer"]),
        created_at=_utc(d["created_at"]),
        partner_of_record=_por(d.get("partner_of_record")),
        registration=registration,
        registered_by_partners=list(d.get("registered_by_partners", [])),
        pending_contact=_pending_contact(d.get("pending_contact")),
        access=[
            PartnerAccess(a["partner_id"], a["permission"], _utc(a["granted_at"]))
            for a in d.get("access", [])
        ],
        attribution_history=[
            AttributionChange(
                at=_utc(c["at"]),
                recorded_at=_utc(c["recorded_at"]),
                kind=c["kind"],
                partner_of_record=_por(c.get("partner_of_record")),
                previous_partner_id=c.get("previous_partner_id"),
                via=c["via"],
                ref=c["ref"],
                reason=c["reason"],
            )
            for c in d.get("attribution_history", [])
        ],
        version=int(d.get("version", 0)),
    )


def conflict_to_doc(c: AttributionConflict) -> Doc:
    return {
        "_id": c.conflict_id,
        "license_key": c.license_key,
        "claimant_partner_id": c.claimant_partner_id,
        "claim_source": c.claim_source,
        "claimed_at": c.claimed_at,
        "via": c.via,
        "ref": c.ref,
        "partner_of_record": _por_doc(c.partner_of_record),
        "reason": c.reason,
        "recorded_at": c.recorded_at,
    }


def conflict_from_doc(d: Doc) -> AttributionConflict:
    por = _por(d["partner_of_record"])
    assert por is not None
    return AttributionConflict(
        conflict_id=d["_id"],
        license_key=d["license_key"],
        claimant_partner_id=d["claimant_partner_id"],
        claim_source=d["claim_source"],
        claimed_at=_utc(d["claimed_at"]),
        via=d["via"],
        ref=d["ref"],
        partner_of_record=por,
        reason=d["reason"],
        recorded_at=_utc(d["recorded_at"]),
    )


def processed_batch_doc(batch_id: str, processed: list[ProcessedOrder]) -> Doc:
    """One document per committed batch: far fewer writes than one per order."""
    return {
        "_id": batch_id,
        "order_ids": [p.order_id for p in processed],
        "event_ids": [p.event_id for p in processed],
        "license_keys": list(dict.fromkeys(k for p in processed for k in p.license_keys)),
        "orders": [processed_to_doc(p) for p in processed],
    }


def processed_to_doc(p: ProcessedOrder) -> Doc:
    return {
        "order_id": p.order_id,
        "event_id": p.event_id,
        "data_hash": p.data_hash,
        "position": p.position,
        "occurred_at": p.occurred_at,
        "processed_at": p.processed_at,
        "license_keys": p.license_keys,
        "outputs": [{"topic": r.topic, "key": r.key, "value": r.value} for r in p.outputs],
        "seller_code_outcome": p.seller_code_outcome,
        "lines": p.lines,
    }


def processed_from_doc(d: Doc) -> ProcessedOrder:
    return ProcessedOrder(
        order_id=d["order_id"],
        event_id=d["event_id"],
        data_hash=d["data_hash"],
        position=d["position"],
        occurred_at=_utc(d["occurred_at"]),
        processed_at=_utc(d["processed_at"]),
        license_keys=list(d.get("license_keys", [])),
        outputs=[
            StoredRecord(o["topic"], bytes(o["key"]), bytes(o["value"]))
            for o in d.get("outputs", [])
        ],
        seller_code_outcome=d.get("seller_code_outcome"),
        lines=list(d.get("lines", [])),
    )
