"""`registration.deals.v1` in, `deal_decided` out (CONTRACT 6.3): by mail and webhook to the
deal's partner, once per decision, naming no other partner."""

from __future__ import annotations

from standardwebhooks.webhooks import Webhook

from shared.envelope import encode, new_envelope
from shared.events import DealApproved, DealRejected, DealSubmitted
from shared.examples import example_events
from tests.integration.notifications.harness import (
    MailSink,
    Receiver,
    Service,
    body_text,
    eventually,
    partner_event,
)

NORD, ALPEN = "P-NORD01", "P-ALPE02"


def deal_record(
    event_type: str, deal_id: str, partner_id: str, **changes: object
) -> tuple[str, bytes]:
    template = next(e for _, e in example_events() if e.event_type == event_type)
    model = {
        "deal.submitted": DealSubmitted,
        "deal.approved": DealApproved,
        "deal.rejected": DealRejected,
    }
    data = model[event_type](
        **{**template.data.model_dump(), "deal_id": deal_id, "partner_id": partner_id, **changes}
    )
    envelope = new_envelope(
        event_type, data, occurred_at=template.occurred_at, producer="registration"
    )
    return "registration.deals.v1", encode(envelope)


async def test_each_decision_reaches_the_deal_partner_once_by_mail_and_webhook(
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
    approved = deal_record("deal.approved", "D-ALPE-1", ALPEN)
    await service.produce(
        partner_event(NORD, "Nordlicht IT"),
        partner_event(ALPEN, "Alpentech Systems"),
        approved,
        deal_record("deal.submitted", "D-NORD-1", NORD),
        deal_record("deal.rejected", "D-NORD-1", NORD, reason="deal_conflict"),
        approved,  # redelivered: nothing new
    )
    await service.start_worker()
    await eventually(
        lambda: (
            len(mail.mails(lambda m: m["X-Notification-Type"] == "deal_decided")) >= 2
            and receiver.succeeded()
        ),
        what="deal decisions",
    )
    nord = mail.to("partners@nordlicht-it.example", "deal_decided")
    alpen = mail.to("partners@alpentech-systems.example", "deal_decided")
    assert len(nord) == 1 and len(alpen) == 1
    assert "not approved" in nord[0]["Subject"] and "approved" in alpen[0]["Subject"]
    text = body_text(nord[0])
    assert "another partner's registered deal already protects" in text
    assert "Alpentech" not in text and ALPEN not in text and "D-ALPE-1" not in text
    await eventually(lambda: len(receiver.succeeded()) >= 1, what="webhook")
    headers, body, _ = receiver.succeeded()[0]
    payload = Webhook(secret).verify(body, headers)
    assert payload["type"] == "deal_decided"
    assert payload["data"]["deal"]["reason"] == "deal_conflict"
    assert ALPEN not in (body.decode() if isinstance(body, bytes) else body)
