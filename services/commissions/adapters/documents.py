"""The stored form of an order-line aggregate and a rate table (BSON documents).

Kept beside the repository so the domain knows nothing of storage. Every money
value is stored as an int; every instant as a UTC datetime (millisecond precision,
as on the wire).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from bson import Binary

from services.commissions.domain.decisions import (
    Beneficiary,
    CommissionDecision,
    OrderApplied,
    ParentAtOrder,
    PartnerAtOrder,
)
from services.commissions.domain.order_line import (
    LedgerLine,
    OrderLineCommission,
    OrderLineKey,
    RawRecord,
    RefundEntry,
    RefundToApply,
    Rejection,
    Source,
)
from services.commissions.domain.rates import RateOverride, RateTable

Doc = dict[str, Any]


def aggregate_to_doc(line: OrderLineCommission, version: int) -> Doc:
    sources = line.sources
    index = {source: number for number, source in enumerate(sources)}
    return {
        "_id": line.key.text,
        "order_id": line.key.order_id,
        "line_id": line.key.line_id,
        "v": version,
        "order": _order_doc(line.order) if line.order else None,
        "decision": _decision_doc(line.decision) if line.decision else None,
        "lines": [_line_doc(entry, index[entry.source], line.order) for entry in line.lines],
        "refunds": [_refund_doc(entry, index[entry.source]) for entry in line.refunds],
        "rejections": [
            {
                "by": index[r.decided_by],
                "reason": r.reason,
                "detail": r.detail,
                "held": _raw_doc(r.held) if r.held else None,
            }
            for r in line.rejections
        ],
        "sources": [[s.event_id, s.topic, s.partition, s.offset] for s in sources],
        # Derived, for the payables run's query: when it may next change a line here.
        "due_at": line.due_at,
    }


def aggregate_from_doc(doc: Doc) -> OrderLineCommission:
    sources = [Source(e, t, int(p), int(o)) for e, t, p, o in doc["sources"]]
    key = OrderLineKey(doc["order_id"], doc["line_id"])
    order = _order_from(doc["order"]) if doc.get("order") else None
    return OrderLineCommission(
        key=key,
        order=order,
        decision=_decision_from(doc["decision"]) if doc.get("decision") else None,
        lines=[_line_from(d, sources, order) for d in doc["lines"]],
        refunds=[_refund_from(d, sources, key) for d in doc["refunds"]],
        rejections=[
            Rejection(
                decided_by=sources[d["by"]],
                reason=d["reason"],
                detail=d["detail"],
                held=_raw_from(d["held"]) if d.get("held") else None,
            )
            for d in doc["rejections"]
        ],
        sources=sources,
        version=int(doc["v"]),
    )


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    # The client is tz_aware; normalise bson's utc tzinfo to datetime.UTC for equality.
    return None if value is None else value.astimezone(dt.UTC)


def _at(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


def _order_doc(order: OrderApplied) -> Doc:
    partner = order.partner
    return {
        "order_id": order.order_id,
        "line_id": order.line_id,
        "license_key": order.license_key,
        "kind": order.kind,
        "sales_channel": order.sales_channel,
        "customer_id": order.customer_id,
        "net_amount_minor": order.net_amount_minor,
        "currency": order.currency,
        "occurred_at": order.occurred_at,
        "product": order.product,
        "partner": None
        if partner is None
        else {
            "partner_id": partner.partner_id,
            "tier": partner.tier,
            "status": partner.status,
            "customer_ids": list(partner.customer_ids),
            "since": partner.since,
            "parent": None
            if partner.parent is None
            else {"partner_id": partner.parent.partner_id, "status": partner.parent.status},
        },
    }


def _order_from(doc: Doc) -> OrderApplied:
    p = doc["partner"]
    return OrderApplied(
        order_id=doc["order_id"],
        line_id=doc["line_id"],
        license_key=doc["license_key"],
        kind=doc["kind"],
        sales_channel=doc["sales_channel"],
        customer_id=doc["customer_id"],
        net_amount_minor=int(doc["net_amount_minor"]),
        currency=doc["currency"],
        occurred_at=_at(doc["occurred_at"]),
        product=doc.get("product"),
        partner=None
        if p is None
        else PartnerAtOrder(
            partner_id=p["partner_id"],
            tier=p["tier"],
            status=p["status"],
            customer_ids=tuple(p["customer_ids"]),
            since=_at(p["since"]),
            parent=None
            if p["parent"] is None
            else ParentAtOrder(p["parent"]["partner_id"], p["parent"]["status"]),
        ),
    )


def _decision_doc(decision: CommissionDecision) -> Doc:
    return {
        "granted": decision.granted,
        "reason": decision.reason,
        "partner_id": decision.partner_id,
        "rate_table_version": decision.rate_table_version,
        # The rate source only when it is an override: earlier documents have five.
        "beneficiaries": [
            [b.partner_id, b.role, b.tier, b.rate_bps, b.amount_minor]
            + ([b.rate_source] if b.rate_source != "tier_table" else [])
            for b in decision.beneficiaries
        ],
    }


def _decision_from(doc: Doc) -> CommissionDecision:
    return CommissionDecision(
        reason=doc["reason"],
        partner_id=doc["partner_id"],
        rate_table_version=doc["rate_table_version"],
        beneficiaries=tuple(
            Beneficiary(partner_id, role, tier, int(rate), int(amount), *rest)
            for partner_id, role, tier, rate, amount, *rest in doc["beneficiaries"]
        ),
    )


def _line_doc(line: LedgerLine, source_index: int, order: OrderApplied | None) -> Doc:
    """A ledger line, without what its order line already says and without unset fields.

    Order id, line ref, license key, kind and currency are the order's for every line
    of the aggregate, and the optional fields are mostly unset: leaving them out makes
    the document (written once per order line on the hot path) about a third smaller.
    `_line_from` reads both this form and the full one of earlier versions.
    """
    doc: Doc = {
        "line_id": line.line_id,
        "partner_id": line.partner_id,
        "role": line.role,
        "tier": line.tier,
        "base_amount_minor": line.base_amount_minor,
        "rate_bps": line.rate_bps,
        "amount_minor": line.amount_minor,
        "status": line.status,
        "rate_table_version": line.rate_table_version,
        "occurred_at": line.occurred_at,
        "payable_at": line.payable_at,
        "src": source_index,
    }
    if (
        order is None
        or line.order_id != order.order_id
        or line.line_ref != order.line_id
        or line.license_key != order.license_key
        or line.kind != order.kind
        or line.currency != order.currency
    ):
        doc["order_id"] = line.order_id
        doc["line_ref"] = line.line_ref
        doc["license_key"] = line.license_key
        doc["kind"] = line.kind
        doc["currency"] = line.currency
    if line.refund_id is not None:
        doc["refund_id"] = line.refund_id
    if line.payable_marked_at is not None:
        doc["payable_marked_at"] = line.payable_marked_at
    if line.paid_at is not None:
        doc["paid_at"] = line.paid_at
    if line.withheld:
        doc["withheld"] = True
    if line.rate_source != "tier_table":
        doc["rate_source"] = line.rate_source
    if line.reason is not None:
        doc["reason"] = line.reason
    if line.reference is not None:
        doc["reference"] = line.reference
    return doc


def _line_from(doc: Doc, sources: list[Source], order: OrderApplied | None) -> LedgerLine:
    if "order_id" in doc or order is None:
        order_id, line_ref = doc["order_id"], doc["line_ref"]
        license_key, kind, currency = doc["license_key"], doc["kind"], doc["currency"]
    else:
        order_id, line_ref = order.order_id, order.line_id
        license_key, kind, currency = order.license_key, order.kind, order.currency
    return LedgerLine(
        line_id=doc["line_id"],
        partner_id=doc["partner_id"],
        role=doc["role"],
        order_id=order_id,
        line_ref=line_ref,
        license_key=license_key,
        refund_id=doc.get("refund_id"),
        kind=kind,
        tier=doc["tier"],
        base_amount_minor=int(doc["base_amount_minor"]),
        rate_bps=int(doc["rate_bps"]),
        amount_minor=int(doc["amount_minor"]),
        currency=currency,
        status=doc["status"],
        rate_table_version=(
            None if doc["rate_table_version"] is None else int(doc["rate_table_version"])
        ),
        occurred_at=_at(doc["occurred_at"]),
        payable_at=_utc(doc["payable_at"]),
        source=sources[doc["src"]],
        payable_marked_at=_utc(doc.get("payable_marked_at")),
        paid_at=_utc(doc.get("paid_at")),
        withheld=bool(doc.get("withheld", False)),
        rate_source=doc.get("rate_source", "tier_table"),
        reason=doc.get("reason"),
        reference=doc.get("reference"),
    )


def _refund_doc(entry: RefundEntry, source_index: int) -> Doc:
    refund = entry.refund
    return {
        "refund_id": refund.refund_id,
        "amount_minor": refund.amount_minor,
        "currency": refund.currency,
        "reason": refund.reason,
        "occurred_at": refund.occurred_at,
        "src": source_index,
        "held": _raw_doc(entry.held) if entry.held else None,
    }


def _refund_from(doc: Doc, sources: list[Source], key: OrderLineKey) -> RefundEntry:
    return RefundEntry(
        refund=RefundToApply(
            refund_id=doc["refund_id"],
            order_id=key.order_id,
            line_id=key.line_id,
            amount_minor=int(doc["amount_minor"]),
            currency=doc["currency"],
            reason=doc["reason"],
            occurred_at=_at(doc["occurred_at"]),
        ),
        source=sources[doc["src"]],
        held=_raw_from(doc["held"]) if doc.get("held") else None,
    )


def _raw_doc(raw: RawRecord) -> Doc:
    return {
        "topic": raw.topic,
        "key": Binary(raw.key) if raw.key is not None else None,
        "value": Binary(raw.value),
        "headers": [[name, Binary(value)] for name, value in raw.headers],
    }


def _raw_from(doc: Doc) -> RawRecord:
    return RawRecord(
        topic=doc["topic"],
        key=bytes(doc["key"]) if doc["key"] is not None else None,
        value=bytes(doc["value"]),
        headers=tuple((str(name), bytes(value)) for name, value in doc["headers"]),
    )


def rate_table_to_doc(table: RateTable) -> Doc:
    return {
        "_id": table.version,
        "effective_from": table.effective_from,
        "rates": {tier: dict(per_kind) for tier, per_kind in table.rates.items()},
        "distributor_override_bps": table.distributor_override_bps,
    }


def rate_table_from_doc(doc: Doc) -> RateTable:
    rates = cast("dict[Any, dict[Any, int]]", doc["rates"])
    return RateTable(
        version=int(doc["_id"]),
        effective_from=_at(doc["effective_from"]),
        rates={tier: {kind: int(bps) for kind, bps in per.items()} for tier, per in rates.items()},
        distributor_override_bps=int(doc["distributor_override_bps"]),
    )


def rate_override_to_doc(entry: RateOverride) -> Doc:
    return {
        "_id": f"{entry.version}/{entry.position}",
        "version": entry.version,
        "position": entry.position,
        "partner_id": entry.partner_id,
        "product": entry.product,
        "kind": entry.kind,
        "rate_bps": entry.rate_bps,
        "effective_from": entry.effective_from,
    }


def rate_override_from_doc(doc: Doc) -> RateOverride:
    return RateOverride(
        version=int(doc["version"]),
        position=int(doc["position"]),
        partner_id=doc["partner_id"],
        product=doc["product"],
        kind=doc["kind"],
        rate_bps=int(doc["rate_bps"]),
        effective_from=_at(doc["effective_from"]),
    )
