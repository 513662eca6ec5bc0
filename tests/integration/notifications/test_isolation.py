"""Isolation made precise (CONTRACT 6.8) on the real broker and database.

Two resellers of one customer share a support line: both reminders go out. A
message that would name another partner is refused, recorded
`delivery.failed` with `error: "isolation_violation"`, counted, and listed for
operators by `GET /v1/admin/deliveries?status=failed`.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from chassis import heartbeat
from tests.integration.notifications.harness import (
    ADMIN,
    MailSink,
    Service,
    body_text,
    customer,
    eventually,
    partner_event,
    read_topic,
    registered,
)

NORD, ALPEN, DATA = "P-NORD01", "P-ALPE02", "P-DATA03"
TERM_END = dt.date(2028, 1, 9)
ADMIN_AUTH = {"authorization": f"Bearer {ADMIN}"}
SHARED_LINE = "+49 30 5550100"


def with_phone(record: tuple[str, bytes], phone: str) -> tuple[str, bytes]:
    topic, value = record
    doc = json.loads(value)
    doc["data"]["branding"]["phone"] = phone
    return topic, json.dumps(doc).encode()


def of_kind(mail: MailSink, kind: str) -> list[Any]:
    return mail.mails(lambda m: m["X-Notification-Type"] == kind)


async def test_a_shared_support_line_is_no_leak_and_a_real_leak_is_refused_and_listed(
    service: Service, mail: MailSink
) -> None:
    jana = customer("jana", org="Database Builders GmbH")
    leaky = customer("leaky", org="Resold by Alpentech Systems")
    service.partner_keys["key-nord"] = NORD
    await service.produce(
        with_phone(partner_event(NORD, "Nordlicht IT"), SHARED_LINE),
        with_phone(partner_event(ALPEN, "Alpentech Systems"), SHARED_LINE),
        partner_event(DATA, "Data"),
        registered("LK-0001", jana, NORD),
        registered("LK-0002", jana, ALPEN),
        registered("LK-0003", jana, DATA),
        # A bad import put one reseller's name into the customer's organisation.
        registered("LK-0008", leaky, ALPEN),
        registered("LK-0009", leaky, NORD),
    )
    await service.start_worker()
    await eventually(lambda: len(of_kind(mail, "welcome")) == 5, what="welcomes")

    async with service.api() as api:
        as_of = (TERM_END - dt.timedelta(days=30)).isoformat()
        run = await api.post(f"/v1/admin/reminders/run?as_of={as_of}", headers=ADMIN_AUTH)
        assert run.status_code == 200, run.text
        await eventually(lambda: len(of_kind(mail, "renewal_reminder")) == 4, what="reminders")
        await service.dispatched_idle()

        reminders = mail.to(jana.email, "renewal_reminder")
        assert len(reminders) == 3  # one per partner of record, none refused
        for reminder in reminders:
            text = body_text(reminder)
            if "LK-0001" in text or "LK-0002" in text:
                assert SHARED_LINE in text  # each names its own (shared) line

        failed = await api.get(
            "/v1/admin/deliveries", params={"status": "failed"}, headers=ADMIN_AUTH
        )
        assert failed.status_code == 200, failed.text
        [refused] = failed.json()["deliveries"]
        assert failed.json()["total"] == 1
        assert refused["notification_type"] == "renewal_reminder"
        assert refused["license_keys"] == ["LK-0009"]
        assert refused["error"] == "isolation_violation"
        assert refused["error_detail"] == "text_names_another_partner"
        assert refused["recipient"] == leaky.email
        by_code = await api.get(
            "/v1/admin/deliveries",
            params={"status": "failed", "error": "isolation_violation", "limit": 1},
            headers=ADMIN_AUTH,
        )
        assert [d["license_keys"] for d in by_code.json()["deliveries"]] == [["LK-0009"]]
        assert (
            await api.get("/v1/admin/deliveries?status=lost", headers=ADMIN_AUTH)
        ).status_code == 422
        assert (
            await api.get("/v1/admin/deliveries?limit=501", headers=ADMIN_AUTH)
        ).status_code == 422
        partner_view = await api.get(
            "/v1/admin/deliveries?status=failed", headers={"authorization": "Bearer key-nord"}
        )
        assert partner_view.status_code == 403

    # Alpentech's own reminder to that customer may name Alpentech; Nordlicht's may not.
    [sent] = mail.to(leaky.email, "renewal_reminder")
    assert "LK-0008" in body_text(sent)
    refusals = service.counters.get(
        "notifications_isolation_violations_total", type="renewal_reminder"
    )
    assert refusals == 1
    # The worker's heartbeat carries the counter to the API's /metrics, by this very name.
    client, db = service.db()
    try:
        await heartbeat.beat(
            db,
            instance="w1",
            assigned=[],
            counters=service.counters.snapshot(),
            gauges={},
        )
    finally:
        await client.close()
    async with service.api() as api:
        exposition = (await api.get("/metrics")).text
    [line] = [
        line
        for line in exposition.splitlines()
        if line.startswith("notifications_isolation_violations_total{")
        and 'type="renewal_reminder"' in line
    ]
    assert line.endswith(" 1.0")
    outcomes = await read_topic(service.settings.kafka_bootstrap, service.deliveries_topic)
    failures = [o["value"] for o in outcomes if o["value"]["event_type"] == "delivery.failed"]
    assert [f["data"]["error"] for f in failures] == ["isolation_violation"]
    assert failures[0]["data"]["error_detail"] == "text_names_another_partner"
    assert "Alpentech" not in json.dumps(failures)
