"""Product notices (CONTRACT 6.6) on the real broker and database.

A notice fans out like an advisory: one vendor-branded `product_notice` per
contact with an unexpired entitlement of the products, naming no partner, and
one `notice_partner_digest` per partner of record listing its own licences
only. Unlike an advisory it honours unsubscribes; a notice id published again
with other content is a dead letter.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from services.notifications.domain import unsubscribe as unsubscribe_tokens
from services.notifications.domain.model import contact_id
from tests.integration.notifications.harness import (
    MailSink,
    Service,
    body_text,
    customer,
    eventually,
    notice,
    partner_event,
    read_topic,
    registered,
)

NORD, ALPEN = "P-NORD01", "P-ALPE02"


def kinds(mail: MailSink, kind: str) -> list[Any]:
    return mail.mails(lambda m: m["X-Notification-Type"] == kind)


async def test_a_notice_reaches_every_subscribed_contact_and_each_partner_its_own(
    service: Service, mail: MailSink
) -> None:
    service.settings.advisory_page_size = 10  # several pages, to exercise the cursor
    events = [partner_event(NORD, "Nordlicht IT"), partner_event(ALPEN, "Alpentech Systems")]
    expected: dict[str, set[str]] = {}
    for n in range(24):
        who = customer(n)
        partner = (NORD, ALPEN, None)[n % 3]
        events.append(registered(f"LK-{n:04d}-A", who, partner))
        expected.setdefault(who.email, set()).add(f"LK-{n:04d}-A")
        if n % 4 == 0:  # a second licence under the other partner: one notice still
            other = ALPEN if partner == NORD else NORD
            events.append(registered(f"LK-{n:04d}-B", who, other, product="secure-edge"))
            expected[who.email].add(f"LK-{n:04d}-B")
        if n % 5 == 0:  # expired, or another product: not concerned
            events.append(registered(f"LK-{n:04d}-X", who, partner, term_end=dt.date(2026, 12, 31)))
            events.append(registered(f"LK-{n:04d}-Y", who, partner, product="backup-one"))
    await service.produce(*events)

    # Contact 1 unsubscribed before the notice: it hears nothing (unlike an advisory).
    quiet = customer(1).email
    secret = service.settings.unsubscribe_secret.get_secret_value().encode()
    token = unsubscribe_tokens.sign(contact_id(quiet), secret)
    async with service.api() as api:
        assert (await api.get(f"/v1/unsubscribe/{token}")).status_code == 200

    published = notice("NTC-2027-001", ["secure-pro", "secure-edge"])
    await service.produce(
        published,
        published,  # the same notice again: a duplicate, nothing new
        notice("NTC-2027-001", ["secure-pro"], title="Other content"),  # a conflict
    )
    await service.start_worker()
    await eventually(
        lambda: (
            len(kinds(mail, "product_notice")) >= 23
            and len(kinds(mail, "notice_partner_digest")) == 2
        ),
        within=60,
        what="notice fan-out",
    )
    await service.dispatched_idle()

    notices = kinds(mail, "product_notice")
    del expected[quiet]
    assert Counter(m["To"] for m in notices) == Counter(dict.fromkeys(expected, 1))
    for message in notices:
        text = body_text(message)
        assert message["Subject"] == "[Service pack] Service Pack 2"
        assert message["List-Unsubscribe"]  # it honours unsubscribes, so it offers one
        assert "Nordlicht" not in text and "Alpentech" not in text
        assert "Channelkeep" in message["From"] and " via " not in message["From"]
        assert {w for w in text.split() if w.startswith("LK-")} == expected[message["To"]]

    digests = {m["To"]: body_text(m) for m in kinds(mail, "notice_partner_digest")}
    nord_text = digests["partners@nordlicht-it.example"]
    nord_keys = {w for w in nord_text.split() if w.startswith("LK-")}
    assert "LK-0000-A" in nord_keys and "LK-0001-A" not in nord_keys
    assert "LK-0000-X" not in nord_keys and "LK-0000-Y" not in nord_keys
    assert "LK-0001-B" not in nord_keys and "LK-0004-B" in nord_keys
    assert "Alpentech" not in nord_text and "NTC-2027-001" in nord_text

    client, db = service.db()
    try:
        job = await db.advisory_jobs.find_one({"_id": "notice/NTC-2027-001"})
        suppressed = await db.deliveries.count_documents(
            {"type": "product_notice", "status": "suppressed", "error": "unsubscribed"}
        )
    finally:
        await client.close()
    assert job["kind"] == "notice" and job["phase"] == "done" and job["contacts"] == 24
    assert suppressed == 1
    dead = await read_topic(
        service.settings.kafka_bootstrap, f"vendor.notices.v1.{service.run}.dlq"
    )
    assert [d["headers"]["error.reason"] for d in dead] == [b"notice_conflict"]
