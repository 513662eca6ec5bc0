"""Events in, mails and signed webhooks out, exactly once across redelivery and restarts."""

from __future__ import annotations

import json

from standardwebhooks.webhooks import Webhook

from tests.integration.notifications.harness import (
    ADMIN,
    MailSink,
    Receiver,
    Service,
    accrued,
    attribution_changed,
    body_html,
    body_text,
    customer,
    eventually,
    partner_event,
    read_topic,
    registered,
    with_new_event_id,
)

NORD, ALPEN = "P-NORD01", "P-ALPE02"


async def test_welcome_and_commission_webhooks_once_across_redelivery(
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

    jana = customer("jana")
    events = [
        partner_event(NORD, "Nordlicht IT"),
        partner_event(ALPEN, "Alpentech Systems", co_brand=False),
        registered("LK-0001", jana, NORD),
        registered("LK-0002", jana, ALPEN),
        registered("LK-0003", customer("solo"), None),
        accrued(NORD),
    ]
    await service.produce(*events)
    await service.start_worker()
    await eventually(lambda: len(mail.mails()) >= 4 and receiver.succeeded(), what="first mails")

    welcomes = mail.to(jana.email, "welcome")
    assert len(welcomes) == 2
    by_licence = {("LK-0001" in body_text(m)): m for m in welcomes}
    cobranded, vendor = by_licence[True], by_licence[False]
    assert cobranded["Subject"].startswith("Nordlicht IT: ")
    assert "Nordlicht IT via Channelkeep Software" in cobranded["From"]
    assert "https://nordlicht-it.example/logo.png" in body_html(cobranded)
    assert "Alpentech" not in body_text(cobranded) + body_html(cobranded)
    # Alpentech does not co-brand: the vendor writes, naming no partner.
    assert "Alpentech" not in body_text(vendor) + body_html(vendor)
    assert "Nordlicht" not in body_text(vendor)
    assert cobranded["List-Unsubscribe"].startswith("<http://127.0.0.1:8003/v1/unsubscribe/")
    assert len(mail.to("contactsolo@customer.example", "welcome")) == 1

    commission_mails = mail.to("partners@nordlicht-it.example", "commission_earned")
    assert len(commission_mails) == 1
    assert "185.19 EUR" in commission_mails[0]["Subject"]

    # The receiver failed once, then took it: one success, same webhook-id both times.
    await eventually(lambda: len(receiver.succeeded()) == 1, what="webhook success")
    assert len(receiver.requests) == 2
    ids = {headers["webhook-id"] for headers, _, _ in receiver.requests}
    assert len(ids) == 1
    headers, body, _ = receiver.succeeded()[0]
    payload = Webhook(secret).verify(body, headers)
    assert payload["type"] == "commission_earned"
    assert payload["data"]["commission"]["amount_minor"] == 18519

    # Redelivery: the same events under new event ids, and a whole replay by a new group.
    sent_before = len(mail.mails())
    await service.produce(*(with_new_event_id(e) for e in events))
    await service.stop_worker()
    await service.start_worker(group=f"{service.group}-replay", instance="w2")
    await service.produce(partner_event("P-LATE03", "Late Partner"))
    # The replaying group reads both partner events twice and the late one once.
    await eventually(
        lambda: (
            service.counters.get("records_total", topic=f"registration.partners.v1.{service.run}")
            >= 5
        ),
        what="replay consumed",
    )
    await service.dispatched_idle()
    await service.stop_worker()
    assert len(mail.mails()) == sent_before
    assert len(receiver.succeeded()) == 1

    outcomes = await read_topic(service.settings.kafka_bootstrap, service.deliveries_topic)
    per_notification: dict[str, set[str]] = {}
    for record in outcomes:
        doc = record["value"]
        per_notification.setdefault(doc["data"]["notification_id"], set()).add(doc["event_id"])
        assert "body" not in json.dumps(doc["data"]) and "jana" not in json.dumps(doc)
    assert len(per_notification) == 5  # 3 welcomes, commission by e-mail and by webhook
    assert all(len(ids) == 1 for ids in per_notification.values())

    async with service.api() as api:
        mine = await api.get("/v1/partner/deliveries", headers={"authorization": "Bearer key-nord"})
        assert mine.status_code == 200
        assert {d["notification_type"] for d in mine.json()["deliveries"]} == {"commission_earned"}
        assert {d["status"] for d in mine.json()["deliveries"]} == {"sent"}
        admin = await api.get(
            "/v1/admin/deliveries",
            params={"license_key": "LK-0001"},
            headers={"authorization": f"Bearer {ADMIN}"},
        )
        # The welcome, and the commission on that licence by e-mail and by webhook.
        assert sorted(d["notification_type"] for d in admin.json()["deliveries"]) == [
            "commission_earned",
            "commission_earned",
            "welcome",
        ]


async def test_attribution_change_tells_old_and_new_partner_without_naming_each_other(
    service: Service, mail: MailSink
) -> None:
    jana = customer("jana")
    await service.produce(
        partner_event(NORD, "Nordlicht IT"),
        partner_event(ALPEN, "Alpentech Systems"),
        attribution_changed("LK-0009", jana, new=ALPEN, previous=NORD),
        attribution_changed("LK-0010", jana, new=NORD, previous=NORD),  # a rule break
    )
    await service.start_worker()
    await eventually(lambda: len(mail.mails()) >= 2, what="attribution mails")
    lost = mail.to("partners@nordlicht-it.example", "attribution_changed")
    won = mail.to("partners@alpentech-systems.example", "attribution_changed")
    assert len(lost) == 1 and len(won) == 1
    assert "no longer attributed" in lost[0]["Subject"]
    for part in (body_text(lost[0]), body_html(lost[0])):
        assert "Alpentech" not in part and ALPEN not in part and "Müller" not in part
    for part in (body_text(won[0]), body_html(won[0])):
        assert "Nordlicht" not in part and NORD not in part
    dead = await read_topic(
        service.settings.kafka_bootstrap, f"registration.entitlements.v1.{service.run}.dlq"
    )
    assert [d["headers"]["error.reason"] for d in dead] == [b"attribution_unchanged"]
