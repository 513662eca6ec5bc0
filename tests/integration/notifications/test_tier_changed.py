"""`tier_changed` end to end (CONTRACT 6.4): an evaluation's partner.updated gives the partner
one mail and one signed webhook, however often the event is delivered."""

from __future__ import annotations

import datetime as dt
import json

from standardwebhooks.webhooks import Webhook

from shared.envelope import encode, new_envelope, parse_event
from shared.events import PartnerCreated, PartnerUpdated
from tests.integration.notifications.harness import (
    MailSink,
    Receiver,
    Service,
    body_text,
    eventually,
    partner_event,
)

NORD = "P-NORD01"


def _promoted(created: bytes, *, reason: str | None) -> tuple[str, bytes]:
    envelope = parse_event("registration.partners.v1", created)
    assert isinstance(envelope.data, PartnerCreated)
    fields = envelope.data.model_dump()
    fields.update(
        tier="platinum", effective_at=dt.datetime(2027, 1, 1, 23, 59, 59, 999000, tzinfo=dt.UTC)
    )
    if reason:
        fields["tier_reason"] = reason
    data = PartnerUpdated(**fields)
    at = dt.datetime(2027, 1, 2, 2, tzinfo=dt.UTC)
    return "registration.partners.v1", encode(
        new_envelope("partner.updated", data, occurred_at=at, producer="registration")
    )


async def test_an_evaluation_tells_the_partner_once_by_mail_and_webhook(
    service: Service, mail: MailSink, receiver: Receiver
) -> None:
    service.partner_keys["key-nord"] = NORD
    async with service.api() as api:
        put = await api.put(
            "/v1/partner/webhook",
            json={"url": receiver.url},
            headers={"authorization": "Bearer key-nord"},
        )
    assert put.status_code == 200, put.text
    secret = put.json()["secret"]
    created = partner_event(NORD, "Nordlicht IT")
    promoted = _promoted(created[1], reason="evaluation")
    by_operator = _promoted(created[1], reason=None)
    await service.produce(created, by_operator, promoted, promoted)
    await service.start_worker()
    await eventually(
        lambda: mail.to("partners@nordlicht-it.example", "tier_changed") and receiver.succeeded(),
        what="tier_changed mail and webhook",
    )
    [message] = mail.to("partners@nordlicht-it.example", "tier_changed")
    assert message["Subject"] == "Your partner tier is now Platinum"
    assert "Platinum" in body_text(message)
    hooks = [r for r in receiver.succeeded() if '"tier_changed"' in r[1]]
    assert len(hooks) == 1
    headers, body, _ = hooks[0]
    Webhook(secret).verify(body, headers)
    assert json.loads(body)["data"]["tier"] == "platinum"
