"""How a checkout emits `order.placed`: validate the seller code offline, then produce.

The seller code's last symbol is a check symbol (CONTRACT 2.1), so the checkout
page can tell a customer "that code has a typo" before the order exists, with
no call to Channelkeep. The order goes to `checkout.orders.v1`, keyed by
`order_id` so one order's events stay in order, with an idempotent producer so
a retry after a timeout never writes it twice.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import uuid

from aiokafka import AIOKafkaProducer

from shared import seller_code
from shared.envelope import encode, new_envelope
from shared.events import Customer, OrderLine, OrderPlaced
from shared.topics import CHECKOUT_ORDERS, key_for


def checked_seller_code(typed: str | None) -> str | None:
    """What the checkout page does when the customer leaves the field."""
    if not typed:
        return None
    try:
        return seller_code.validate(typed)  # normalised, shown as XXXX-XXXX
    except seller_code.InvalidSellerCode as error:
        raise SystemExit(f"seller code {typed!r}: {error} (ask the customer to check it)") from None


def renewal_order(order_id: str, code: str | None, now: dt.datetime) -> OrderPlaced:
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
                license_key="LK-5F2A-0001",
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
    args = parser.parse_args(argv)
    code = checked_seller_code(args.seller_code)
    now = dt.datetime.now(dt.UTC)
    asyncio.run(emit(args.bootstrap, args.topic, renewal_order(args.order_id, code, now), now))
    return 0


if __name__ == "__main__":
    sys.exit(main())
