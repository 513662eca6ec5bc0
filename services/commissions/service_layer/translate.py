"""Contract events (shared.events) to the domain's input types, and ledger lines to events."""

from __future__ import annotations

import datetime as dt
import functools
import json
from typing import Any

from chassis.kafka import OutRecord
from services.commissions.domain.decisions import OrderApplied, ParentAtOrder, PartnerAtOrder
from services.commissions.domain.order_line import LedgerLine, RefundToApply, Source
from shared import events
from shared.envelope import encode, new_envelope
from shared.events import format_timestamp
from shared.ids import derive_id

PRODUCER = "commissions"


def order_from(data: events.EntitlementOrderApplied) -> OrderApplied:
    order, partner = data.order, data.partner
    return OrderApplied(
        order_id=order.order_id,
        line_id=order.line_id,
        license_key=data.license_key,
        kind=order.kind,
        sales_channel=order.sales_channel,
        customer_id=order.customer_id,
        net_amount_minor=order.net_amount_minor,
        currency=order.currency,
        occurred_at=order.occurred_at,
        product=data.product,
        partner=None
        if partner is None
        else PartnerAtOrder(
            partner_id=partner.partner_id,
            tier=partner.tier,
            status=partner.status,
            customer_ids=tuple(partner.customer_ids),
            since=partner.since,
            parent=None
            if partner.parent is None
            else ParentAtOrder(partner.parent.partner_id, partner.parent.status),
        ),
    )


def refund_from(data: events.RefundIssued, occurred_at: dt.datetime) -> RefundToApply:
    return RefundToApply(
        refund_id=data.refund_id,
        order_id=data.order_id,
        line_id=data.line_id,
        amount_minor=data.amount_minor,
        currency=data.currency,
        reason=data.reason,
        occurred_at=occurred_at,
    )


_MODELS: dict[str, type[events.CommissionLine]] = {
    "commission.accrued": events.CommissionAccrued,
    "commission.clawed_back": events.CommissionClawedBack,
    "commission.adjusted": events.CommissionAdjusted,
    "commission.payable": events.CommissionPayable,
    "commission.paid": events.CommissionPaid,
}


def line_data(line: LedgerLine) -> dict[str, Any]:
    return {
        "line_id": line.line_id,
        "partner_id": line.partner_id,
        "role": line.role,
        "order_id": line.order_id,
        "line_ref": line.line_ref,
        "license_key": line.license_key,
        "refund_id": line.refund_id,
        "kind": line.kind,
        "tier": line.tier,
        "base_amount_minor": line.base_amount_minor,
        "rate_bps": line.rate_bps,
        "amount_minor": line.amount_minor,
        "currency": line.currency,
        "status": line.status,
        "rate_table_version": line.rate_table_version,
        "occurred_at": line.occurred_at,
        "payable_at": line.payable_at,
        "rate_source": line.rate_source,
        "reason": line.reason,
        "reference": line.reference,
    }


def line_from_event(data: events.CommissionLine, source: Source) -> LedgerLine:
    """A ledger line as a reader of the ledger topic sees it (no paid_at: not on the wire)."""
    return LedgerLine(
        line_id=data.line_id,
        partner_id=data.partner_id,
        role=data.role,
        order_id=data.order_id,
        line_ref=data.line_ref,
        license_key=data.license_key,
        refund_id=data.refund_id,
        kind=data.kind,
        tier=data.tier,
        base_amount_minor=data.base_amount_minor,
        rate_bps=data.rate_bps,
        amount_minor=data.amount_minor,
        currency=data.currency,
        status=data.status,
        rate_table_version=data.rate_table_version,
        occurred_at=data.occurred_at,
        payable_at=data.payable_at,
        source=source,
        rate_source=data.rate_source,
        reason=data.reason,
        reference=data.reference,
    )


def event_id_of(event_type: str, line_id: str) -> str:
    """One event per (line, transition), so a duplicate anywhere downstream is recognisable."""
    return derive_id(event_type, line_id)


def ledger_event(
    line: LedgerLine, event_type: str, occurred_at: dt.datetime, topic: str
) -> OutRecord:
    """The `commission.*` record of a line's event, keyed by partner_id (CONTRACT 1.2)."""
    data = line_data(line)
    if event_type in ("commission.accrued", "commission.clawed_back"):
        # What the line was when it entered the ledger, whatever it became since.
        data["status"] = "accrued"
        if line.is_clawback:
            data["payable_at"] = None
    envelope = new_envelope(
        event_type,
        _MODELS[event_type](**data),
        occurred_at=occurred_at,
        producer=PRODUCER,
        event_id=event_id_of(event_type, line.line_id),
    )
    return OutRecord(topic=topic, key=line.partner_id.encode(), value=encode(envelope))


# The lines of an order share their instants (and a batch often its days): formatted once.
_stamp = functools.lru_cache(maxsize=4096)(format_timestamp)


def fast_entry_value(line: LedgerLine) -> bytes:
    """`entry_event`'s value without the pydantic round trip: the hot path's encoder.

    Byte-for-byte what `shared.envelope.encode` gives for the same event (a unit
    test holds it to that); the fields are already valid by construction here.
    """
    clawback = line.is_clawback
    event_type = "commission.clawed_back" if clawback else "commission.accrued"
    occurred_at = _stamp(line.occurred_at)
    payable_at = None if clawback or line.payable_at is None else _stamp(line.payable_at)
    document = {
        "event_id": event_id_of(event_type, line.line_id),
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": occurred_at,
        "producer": PRODUCER,
        "data": {
            "line_id": line.line_id,
            "partner_id": line.partner_id,
            "role": line.role,
            "order_id": line.order_id,
            "line_ref": line.line_ref,
            "license_key": line.license_key,
            "refund_id": line.refund_id,
            "kind": line.kind,
            "tier": line.tier,
            "base_amount_minor": line.base_amount_minor,
            "rate_bps": line.rate_bps,
            "amount_minor": line.amount_minor,
            "currency": line.currency,
            "status": "accrued",
            "rate_table_version": line.rate_table_version,
            "occurred_at": occurred_at,
            "payable_at": payable_at,
            "rate_source": line.rate_source,
            "reason": None,
            "reference": None,
        },
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def entry_event(line: LedgerLine, topic: str) -> OutRecord:
    """`commission.accrued` for an accrual, `commission.clawed_back` for a clawback.

    Its `cause` is the input record the line came from: the record carries that
    record's trace context (chassis.tracing).
    """
    return OutRecord(
        topic=topic,
        key=line.partner_id.encode(),
        value=fast_entry_value(line),
        cause=line.source.event_id,
    )
