"""How a checkout emits `order.placed`: steer a renewal to its partner, validate the seller
code offline, then produce.

Before a renewal, the web shop asks registration whom to steer the customer to
(CONTRACT 6.1: `GET /v1/checkout/entitlements/{license_key}/partner-of-record`
with the checkout's own `CHECKOUT_TOKEN`) and shows "renew with <partner>";
the customer may still renew direct, and the partner of record still earns its
commission. The seller code's last symbol is a check symbol (CONTRACT 2.1), so
the checkout page can tell a customer "that code has a typo" before the order
exists, with no call to Channelkeep. The order goes to `checkout.orders.v1`,
keyed by `order_id` so one order's events stay in order, with an idempotent
producer so a retry after a timeout never writes it twice.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import uuid
from typing import Any
from urllib.parse import quote

import httpx
from aiokafka import AIOKafkaProducer

from shared import seller_code
from shared.envelope import encode, key_for, new_envelope
from shared.events import Customer, OrderLine, OrderPlaced
from shared.topics import CHECKOUT_ORDERS


def checked_seller_code(typed: str | None) -> str | None:
    """What the checkout page does when the customer leaves the field."""
    if not typed:
        return None
    try:
        return seller_code.validate(typed)  # normalised, shown as XXXX-XXXX
    except seller_code.InvalidSellerCode as error:
        raise SystemExit(f"seller code {typed!r}: {error} (ask the customer to check it)") from None


# What `./dev up` sets when CHECKOUT_TOKEN is not in the environment.
DEV_CHECKOUT_TOKEN = "dev-checkout-token"  # noqa: S105 (the documented development value)
LICENSE_KEY = "LK-5F2A-0001"


async def partner_of_record(
    registration_url: str,
    checkout_token: str,
    license_key: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, Any] | None:
    """The partner to steer this renewal to, or None (renews direct).

    The checkout never waits on Channelkeep to sell: an unknown licence, a refused
    token or an unreachable service all mean "renew direct", said on the console.
    """
    path = f"/v1/checkout/entitlements/{quote(license_key, safe='')}/partner-of-record"
    url = f"{registration_url}{path}"
    try:
        async with httpx.AsyncClient(transport=transport, timeout=5.0) as client:
            response = await client.get(url, headers={"Authorization": f"Bearer {checkout_token}"})
    except httpx.HTTPError as error:
        print(f"could not ask registration whom to steer to ({type(error).__name__})")
        return None
    if response.status_code == 404:
        return None  # a licence Channelkeep does not know yet: this order creates it
    if response.status_code != 200:
        code = response.json().get("error", {}).get("code", response.status_code)
        print(f"registration refused the partner-of-record lookup: {code}")
        return None
    partner: dict[str, Any] | None = response.json()["partner"]
    return partner


def steer_message(license_key: str, partner: dict[str, Any] | None) -> str:
    """The line the web shop shows before the customer pays."""
    if partner is None:
        return f"{license_key}: no partner of record; the customer renews direct"
    contact = ", ".join(v for v in (partner.get("phone"), partner.get("website")) if v)
    return (
        f"{license_key}: renew with {partner['display_name']}"
        + (f" ({contact})" if contact else "")
        + "; renewing direct here is still possible"
    )


def renewal_order(
    order_id: str, code: str | None, now: dt.datetime, license_key: str = LICENSE_KEY
) -> OrderPlaced:
    return OrderPlaced(
        order_id=order_id,
        sales_channel="direct",
        storefront="web",
        partner_code=None,
        seller_code=code,
        currency="EUR",
        customer=Customer(
            customer_id="C-881",
            org_name="Müller Logistik GmbH",
            contact_name="Jana Müller",
            email="jana@mueller-logistik.example",
            country="DE",
        ),
        lines=[
            OrderLine(
                line_id="1",
                kind="renewal",
                license_key=license_key,
                sku="SECURE-PRO-1Y",
                product="secure-pro",
                quantity=1,
                term_start=now.date() + dt.timedelta(days=5),
                term_end=now.date() + dt.timedelta(days=369),
                net_amount_minor=123457,
            )
        ],
    )


async def emit(bootstrap: str, topic: str, order: OrderPlaced, now: dt.datetime) -> None:
    envelope = new_envelope("order.placed", order, occurred_at=now, producer="webshop-eu")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            topic, encode(envelope), key=key_for(CHECKOUT_ORDERS, envelope)
        )
    finally:
        await producer.stop()
    print(f"order {order.order_id} sent as event {envelope.event_id}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:19092"))
    parser.add_argument("--topic", default=CHECKOUT_ORDERS)
    parser.add_argument("--seller-code", default=None, help="as the customer typed it")
    parser.add_argument("--order-id", default=f"WEB-{uuid.uuid4().hex[:8].upper()}")
    parser.add_argument("--license-key", default=LICENSE_KEY, help="the licence being renewed")
    parser.add_argument(
        "--registration-url", default=os.environ.get("REGISTRATION_URL", "http://127.0.0.1:8001")
    )
    parser.add_argument(
        "--checkout-token",
        default=os.environ.get("CHECKOUT_TOKEN", DEV_CHECKOUT_TOKEN),
        help="the checkout's service token (CHECKOUT_TOKEN); never the admin token",
    )
    args = parser.parse_args(argv)
    code = checked_seller_code(args.seller_code)
    now = dt.datetime.now(dt.UTC)
    partner = asyncio.run(
        partner_of_record(args.registration_url, args.checkout_token, args.license_key)
    )
    print(steer_message(args.license_key, partner))
    order = renewal_order(args.order_id, code, now, args.license_key)
    asyncio.run(emit(args.bootstrap, args.topic, order, now))
    return 0


if __name__ == "__main__":
    sys.exit(main())
