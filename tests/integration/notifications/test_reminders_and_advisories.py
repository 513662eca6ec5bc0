"""Reminders at 90/30/7 days (idempotent), advisory fan-out, retries that survive restarts."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from tests.integration.notifications.harness import (
    ADMIN,
    MailSink,
    Receiver,
    Service,
    advisory,
    body_text,
    customer,
    eventually,
    partner_event,
    read_topic,
    registered,
    until,
)

NORD, ALPEN = "P-NORD01", "P-ALPE02"
TERM_END = dt.date(2028, 1, 9)
ADMIN_AUTH = {"authorization": f"Bearer {ADMIN}"}


def kinds(mail: MailSink, kind: str) -> list[Any]:
    return mail.mails(lambda m: m["X-Notification-Type"] == kind)


async def test_reminders_at_90_30_and_7_days_once_per_scope(
    service: Service, mail: MailSink
) -> None:
    jana, solo = customer("jana"), customer("solo")
    await service.produce(
        partner_event(NORD, "Nordlicht IT"),
        partner_event(ALPEN, "Alpentech Systems"),
        registered("LK-0001", jana, NORD),
        registered("LK-0002", jana, NORD),
        registered("LK-0003", jana, ALPEN),
        registered("LK-0004", solo, None),
        registered("LK-0005", solo, None, term_end=TERM_END + dt.timedelta(days=1)),
    )
    await service.start_worker()
    await eventually(lambda: len(kinds(mail, "welcome")) == 5, what="welcomes")

    async with service.api() as api:
        for offset in (90, 30, 7):
            as_of = (TERM_END - dt.timedelta(days=offset)).isoformat()
            first = await api.post(f"/v1/admin/reminders/run?as_of={as_of}", headers=ADMIN_AUTH)
            assert first.status_code == 200, first.text
            again = await api.post(f"/v1/admin/reminders/run?as_of={as_of}", headers=ADMIN_AUTH)
            assert again.json()["new"] == 0 and again.json()["planned"] == first.json()["planned"]
            expected = 3 + (2 if offset == 90 else 0)  # + opportunities for both partners
            assert first.json() == {
                "as_of": as_of,
                "considered": 4,
                "planned": expected,
                "new": expected,
            }
            await eventually(
                lambda o=offset: (
                    len(mail.mails(lambda m, o=o: f"ends in {o} days" in str(m["Subject"]))) == 2
                    and len(mail.mails(lambda m, o=o: f"end in {o} days" in str(m["Subject"]))) == 1
                ),
                what=f"{offset}-day reminders",
            )
        bad = await api.post("/v1/admin/reminders/run?as_of=2027-13-01", headers=ADMIN_AUTH)
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "as_of"

    reminders = mail.to(jana.email, "renewal_reminder")
    assert len(reminders) == 6  # two scopes x three offsets
    for message in reminders:
        text = body_text(message)
        nordlicht = "LK-0001" in text
        assert ("LK-0002" in text) == nordlicht and ("LK-0003" in text) != nordlicht
        assert ("Nordlicht" in text) == nordlicht and ("Alpentech" in text) != nordlicht
    assert len(mail.to(solo.email, "renewal_reminder")) == 3
    opportunities = kinds(mail, "renewal_opportunity")
    assert sorted(m["To"] for m in opportunities) == [
        "partners@alpentech-systems.example",
        "partners@nordlicht-it.example",
    ]
    for message in opportunities:
        text = body_text(message)
        assert ("LK-0003" in text) == ("alpentech" in message["To"])
        assert "LK-0004" not in text

    # An unsubscribed contact gets no more reminders (but still advisories).
    link = mail.to(solo.email, "renewal_reminder")[0]["List-Unsubscribe"].strip("<>")
    async with service.api() as api:
        page = await api.get(link.replace("http://127.0.0.1:8003", ""))
        assert page.status_code == 200 and "unsubscribed" in page.text
        forged = await api.get("/v1/unsubscribe/abc.def")
        assert forged.status_code == 400
        # LK-0005 (solo's) ends a day later: its 7-day reminder is due now.
        as_of = (TERM_END - dt.timedelta(days=6)).isoformat()
        run = await api.post(f"/v1/admin/reminders/run?as_of={as_of}", headers=ADMIN_AUTH)
        assert run.json()["new"] == 1
    client, db = service.db()
    try:

        async def suppressed() -> bool:
            query = {"status": "suppressed", "error": "unsubscribed"}
            return await db.deliveries.count_documents(query) == 1

        await until(suppressed, what="suppressed reminder")
    finally:
        await client.close()
    assert len(mail.to(solo.email, "renewal_reminder")) == 3


async def test_advisory_fans_out_once_per_contact_with_partner_digests(
    service: Service, mail: MailSink
) -> None:
    service.settings.advisory_page_size = 10  # many pages, to exercise the cursor
    events = [partner_event(NORD, "Nordlicht IT"), partner_event(ALPEN, "Alpentech Systems")]
    expected: dict[str, set[str]] = {}
    for n in range(45):
        who = customer(n)
        partner = (NORD, ALPEN, None)[n % 3]
        events.append(registered(f"LK-{n:04d}-A", who, partner))
        expected.setdefault(who.email, set()).add(f"LK-{n:04d}-A")
        if n % 5 == 0:  # a second affected licence under the other partner
            other = ALPEN if partner == NORD else NORD
            events.append(registered(f"LK-{n:04d}-B", who, other, product="secure-edge"))
            expected[who.email].add(f"LK-{n:04d}-B")
        if n % 7 == 0:  # expired, or another product: not affected
            events.append(registered(f"LK-{n:04d}-X", who, partner, term_end=dt.date(2026, 12, 31)))
            events.append(registered(f"LK-{n:04d}-Y", who, partner, product="backup-one"))
    events.append(advisory("ADV-2027-001", ["secure-pro", "secure-edge"]))
    await service.produce(*events)
    await service.start_worker()
    await eventually(
        lambda: (
            len(kinds(mail, "security_advisory")) >= 45
            and len(kinds(mail, "advisory_partner_digest")) == 2
        ),
        within=60,
        what="advisory fan-out",
    )
    advisories = kinds(mail, "security_advisory")
    per_contact = Counter(m["To"] for m in advisories)
    assert per_contact == Counter(dict.fromkeys(expected, 1))
    for message in advisories:
        text = body_text(message)
        assert "List-Unsubscribe" not in message
        assert "Nordlicht" not in text and "Alpentech" not in text
        listed = {w for w in text.split() if w.startswith("LK-")}
        assert listed == expected[message["To"]]
    digests = {m["To"]: body_text(m) for m in kinds(mail, "advisory_partner_digest")}
    nord_text = digests["partners@nordlicht-it.example"]
    nord_keys = {w for w in nord_text.split() if w.startswith("LK-")}
    assert (
        "LK-0000-A" in nord_keys and "LK-0001-A" not in nord_keys and "LK-0000-X" not in nord_keys
    )
    assert "Alpentech" not in nord_text

    client, db = service.db()
    try:
        job = await db.advisory_jobs.find_one({"_id": "ADV-2027-001"})
    finally:
        await client.close()
    assert job["phase"] == "done" and job["contacts"] == 45
    assert service.counters.gauges["advisory_fanout_progress_ratio"] == 1.0


async def test_webhook_retries_are_persisted_and_resume_after_a_restart(
    kafka_bootstrap: str, service: Service, mail: MailSink
) -> None:
    from tests.integration.notifications.harness import accrued

    down = await Receiver(always_fail=True).start()
    try:
        service.settings.webhook_max_attempts = 4
        service.settings.retry_base_seconds = 0.5
        service.partner_keys["key-nord"] = NORD
        async with service.api() as api:
            put = await api.put(
                "/v1/partner/webhook",
                json={"url": down.url},
                headers={"authorization": "Bearer key-nord"},
            )
            assert put.status_code == 200
        await service.produce(partner_event(NORD, "Nordlicht IT"), accrued(NORD))
        await service.start_worker()
        await eventually(lambda: len(down.requests) >= 2, what="two failed attempts")
        await service.stop_worker()
        client, db = service.db()
        try:
            record = await db.deliveries.find_one({"channel": "webhook"})
        finally:
            await client.close()
        assert record["status"] == "pending" and record["attempts"] >= 2
        assert record["error"] == "webhook_http_503" and record["next_attempt_at"]
        attempts_before = record["attempts"]

        await service.start_worker(instance="w2")
        client, db = service.db()
        try:

            async def failed() -> bool:
                nonlocal record
                record = await db.deliveries.find_one({"channel": "webhook"})
                return bool(record["status"] == "failed")

            await until(failed, what="failed after max attempts")
        finally:
            await client.close()
        assert record["status"] == "failed" and record["attempts"] == 4
        assert len(down.requests) == 4 and attempts_before < 4
        assert len({h["webhook-id"] for h, _, _ in down.requests}) == 1
        await service.stop_worker()
        outcomes = await read_topic(kafka_bootstrap, service.deliveries_topic)
        hooks = [o["value"] for o in outcomes if o["value"]["data"]["channel"] == "webhook"]
        assert [(o["event_type"], o["data"]["attempts"]) for o in hooks] == [("delivery.failed", 4)]
    finally:
        await down.stop()
