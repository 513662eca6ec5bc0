"""The sensitive `registration.customers.v1` (CONTRACT 6.2): a sign-in link is mailed,
vendor-branded and naming no partner; neither the logs nor the DLQ carry a token."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest

from shared.envelope import encode, new_envelope
from shared.events import CustomerSignInRequested
from tests.integration.notifications.harness import (
    T0,
    MailSink,
    Service,
    body_html,
    body_text,
    eventually,
    partner_event,
    read_topic,
    until,
)

pytestmark = pytest.mark.integration

TOPIC = "registration.customers.v1"
TOKEN = "cki_" + "Q" * 43
BAD_TOKEN = "cki_" + "Z" * 43


def sign_in(email: str, token: str) -> tuple[str, bytes]:
    data = CustomerSignInRequested(
        email=email, token=token, expires_at=T0 + dt.timedelta(minutes=15)
    )
    return TOPIC, encode(
        new_envelope("customer.sign_in_requested", data, occurred_at=T0, producer="registration")
    )


async def test_the_sign_in_link_is_mailed_and_no_token_is_logged_or_dead_lettered(
    service: Service, mail: MailSink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # A broken one: a field the schema refuses, next to the token.
    broken = json.loads(sign_in("x@y.example", BAD_TOKEN)[1])
    broken["data"]["expires_at"] = "not a time"
    await service.produce(
        partner_event("P-NORD01", "Nordlicht IT"),
        sign_in("jana@mueller-logistik.example", TOKEN),
        (TOPIC, json.dumps(broken).encode()),
    )
    await service.start_worker()
    await eventually(lambda: len(mail.mails()) >= 1, what="the sign-in mail")
    [message] = mail.to("jana@mueller-logistik.example", "customer_sign_in")
    link = f"{service.settings.portal_url}/customer/sign-in#token={TOKEN}"
    assert link in body_text(message) and link in body_html(message)
    assert TOKEN not in message["Subject"] and "List-Unsubscribe" not in message
    for part in (body_text(message), body_html(message)):
        assert "Nordlicht" not in part
    # Once sent, the delivery record keeps no usable token.
    client, db = service.db()
    try:

        async def settled() -> bool:
            doc = await db["deliveries"].find_one({"type": "customer_sign_in"})
            return doc is not None and doc.get("status") == "sent"

        await until(settled, what="the sign-in delivery settled")
        stored = await db["deliveries"].find_one({"type": "customer_sign_in"})
        assert TOKEN not in json.dumps(stored, default=str)
    finally:
        await client.close()
    dead = await read_topic(service.settings.kafka_bootstrap, f"{TOPIC}.{service.run}.dlq")
    assert [d["headers"]["error.reason"] for d in dead] == [b"schema_violation"]
    for record in dead:
        assert BAD_TOKEN not in json.dumps(record, default=str)
    # Our own loggers at every level; libraries at what chassis.logging lets through
    # (WARNING: their DEBUG records would show whole requests, whatever they carry).
    leaks = [
        (r.name, r.getMessage()[:300])
        for r in caplog.records
        if (r.name.startswith(("services", "chassis", "shared")) or r.levelno >= logging.WARNING)
        and any(t in f"{r.getMessage()} {r.__dict__}" for t in (TOKEN, BAD_TOKEN))
    ]
    assert not leaks
