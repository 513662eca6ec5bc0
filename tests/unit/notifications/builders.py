"""Test data for the notification rules: two real-looking partners, one customer under both."""

from __future__ import annotations

import datetime as dt

from services.notifications.domain.model import Customer, Entitlement, Partner, Vendor

OCCURRED = dt.datetime(2027, 1, 5, 10, 0, tzinfo=dt.UTC)

VENDOR = Vendor(
    name="Channelkeep Software",
    website="https://vendor.example",
    logo_url="https://vendor.example/logo.png",
    color="#1F4E79",
    support_email="support@vendor.example",
    renew_url="https://vendor.example/renew",
)

NORDLICHT = Partner(
    partner_id="P-GOLD01",
    display_name="Nordlicht IT",
    legal_name="Nordlicht IT-Systemhaus GmbH",
    status="active",
    co_brand_customer_messages=True,
    contact_email="partners@nordlicht-it.example",
    seller_code="7K3M-9QXF",
    logo_url="https://nordlicht-it.example/logo.png",
    color="#0B3D91",
    phone="+49 30 1234567",
    website="https://nordlicht-it.example",
)

ALPENTECH = Partner(
    partner_id="P-SILV02",
    display_name="Alpentech Systems",
    legal_name="Alpentech Systems AG",
    status="active",
    co_brand_customer_messages=True,
    contact_email="channel@alpentech.example",
    seller_code="4HX2-KM7Q",
    logo_url="https://alpentech.example/logo.svg",
    color="#B22222",
    phone="+41 44 555 0101",
    website="https://alpentech.example",
)

JANA = Customer(
    customer_id="C-881",
    org_name="Müller Logistik GmbH",
    contact_name="Jana Müller",
    email="jana@mueller-logistik.example",
)


def entitlement(
    key: str,
    partner: Partner | None,
    *,
    term_end: dt.date = dt.date(2028, 1, 9),
    product: str = "secure-pro",
    customer: Customer = JANA,
) -> Entitlement:
    return Entitlement(
        license_key=key,
        product=product,
        sku=f"{product.upper()}-1Y",
        term_end=term_end,
        customer=customer,
        partner_of_record=partner.partner_id if partner else None,
    )
