"""Test data: partners through the service, orders as the contract's models."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from services.registration.service_layer.orders import IncomingOrder
from services.registration.service_layer.partners import NewPartner, PartnerService
from shared.events import OrderPlaced

UTC = dt.UTC
_positions = itertools.count()


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def order(
    order_id: str,
    *lines: dict[str, Any],
    channel: str = "direct",
    partner_code: str | None = None,
    seller_code: str | None = None,
    customer_id: str = "C-881",
) -> OrderPlaced:
    return OrderPlaced.model_validate(
        {
            "order_id": order_id,
            "sales_channel": channel,
            "storefront": "web",
            "partner_code": partner_code,
            "seller_code": seller_code,
            "currency": "EUR",
            "customer": {
                "customer_id": customer_id,
                "org_name": "Müller Logistik GmbH",
                "contact_name": "Jana Müller",
                "email": "jana@mueller-logistik.example",
                "country": "DE",
            },
            "lines": list(lines) or [line()],
        }
    )


def line(
    license_key: str = "LK-1",
    kind: str = "new",
    *,
    line_id: str = "1",
    term: tuple[str, str] = ("2026-01-10", "2027-01-09"),
    product: str = "secure-pro",
    net: int = 123457,
) -> dict[str, Any]:
    return {
        "line_id": line_id,
        "kind": kind,
        "license_key": license_key,
        "sku": f"{product.upper()}-1Y",
        "product": product,
        "quantity": 1,
        "term_start": term[0],
        "term_end": term[1],
        "net_amount_minor": net,
    }


def incoming(
    placed: OrderPlaced,
    occurred_at: str = "2026-01-10T09:00:00Z",
    *,
    event_id: str | None = None,
    position: str | None = None,
    index: int = 0,
) -> IncomingOrder:
    return IncomingOrder(
        event_id=event_id or f"ev-{placed.order_id}",
        occurred_at=at(occurred_at),
        order=placed,
        position=position or f"orders:0:{next(_positions)}",
        index=index,
    )


async def enrol(
    partners: PartnerService,
    name: str = "Nordlicht IT",
    *,
    type: str = "var",
    tier: str = "gold",
    parent: str | None = None,
    effective_at: dt.datetime | None = None,
    customer_ids: tuple[str, ...] = (),
) -> tuple[str, str, str]:
    """(partner_id, seller_code, api_key)."""
    partner, key = await partners.create(
        NewPartner(
            display_name=name,
            legal_name=f"{name} GmbH",
            type=type,  # type: ignore[arg-type]
            tier=tier,  # type: ignore[arg-type]
            contact_email="partners@example.com",
            parent_partner_id=parent,
            customer_ids=customer_ids,
            effective_at=effective_at,
        )
    )
    return partner.partner_id, partner.seller_code, key
