"""CONTRACT 6.1 end to end on the embedded broker and database: partner.* events carry the
renewal mode into the projection with its history, and the reminder pass follows the mode in
force at `as_of`, naming the partner of record in `partner_first` reminders."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.integration.notifications.harness import (
    ADMIN,
    T0,
    MailSink,
    Service,
    body_html,
    body_text,
    customer,
    eventually,
    partner_event,
    registered,
)

FIRST, ONLY, DIRECT, SWITCH = "P-FIRS01", "P-ONLY02", "P-DIRE03", "P-SWIT04"
TERM_END = dt.date(2028, 1, 9)
ADMIN_AUTH = {"authorization": f"Bearer {ADMIN}"}
SWITCHED_AT = dt.datetime(2027, 11, 1, tzinfo=dt.UTC)  # between the -90 and the -30 pass


def kinds(mail: MailSink, kind: str) -> list[Any]:
    return mail.mails(lambda m: m["X-Notification-Type"] == kind)


async def test_the_pass_follows_each_partners_mode_in_force_at_as_of(
    service: Service, mail: MailSink
) -> None:
    jana, otto = customer("jana"), customer("otto")
    await service.produce(
        partner_event(FIRST, "Nordlicht IT", co_brand=False, renewal_mode="partner_first"),
        partner_event(ONLY, "Alpentech Systems", renewal_mode="partner_only"),
        partner_event(DIRECT, "Direkt Handel", co_brand=False, renewal_mode="vendor_direct"),
        partner_event(SWITCH, "Wechsel Data", co_brand=False, renewal_mode="vendor_direct"),
        # Wechsel goes partner_only from SWITCHED_AT on: the -90 pass is still vendor_direct.
        partner_event(
            SWITCH,
            "Wechsel Data",
            co_brand=False,
            renewal_mode="partner_only",
            at=SWITCHED_AT,
            event_type="partner.updated",
        ),
        registered("LK-FIRST", jana, FIRST),
        registered("LK-ONLY", jana, ONLY),
        registered("LK-DIRECT", otto, DIRECT),
        registered("LK-SWITCH", otto, SWITCH),
        registered("LK-NONE", otto, None),
    )
    await service.start_worker()
    await eventually(lambda: len(kinds(mail, "welcome")) == 5, what="welcomes")

    planned = {}
    async with service.api() as api:
        for offset in (90, 30, 7):
            as_of = (TERM_END - dt.timedelta(days=offset)).isoformat()
            run = await api.post(f"/v1/admin/reminders/run?as_of={as_of}", headers=ADMIN_AUTH)
            assert run.status_code == 200, run.text
            again = await api.post(f"/v1/admin/reminders/run?as_of={as_of}", headers=ADMIN_AUTH)
            assert again.json()["new"] == 0
            planned[offset] = run.json()["new"]
    # -90: otto's direct, switch (still vendor_direct) and unattributed reminders, and an
    # opportunity for each of the four partners. -30: jana's steered reminder, otto's
    # direct and unattributed ones; second opportunities for Alpentech and Wechsel.
    # -7: the same three customer reminders.
    assert planned == {90: 3 + 4, 30: 3 + 2, 7: 3}
    await eventually(
        lambda: (
            len(kinds(mail, "renewal_reminder")) == 9
            and len(kinds(mail, "renewal_opportunity")) == 6
        ),
        what="reminders and opportunities",
    )

    to_jana = mail.to(jana.email, "renewal_reminder")
    assert sorted(str(m["Subject"]) for m in to_jana) == [
        "Your secure-pro licence ends in 30 days",
        "Your secure-pro licence ends in 7 days",
    ]
    for message in to_jana:
        text, html = body_text(message), body_html(message)
        assert "LK-FIRST" in text and "LK-ONLY" not in text
        assert "Please renew with your partner Nordlicht IT" in " ".join(text.split())
        assert "https://nordlicht-it.example" in text and "Phone: +49 30" in text
        assert "renew directly with" in " ".join(text.split())
        assert "Nordlicht IT" in html and "Alpentech" not in text + html
    to_otto = mail.to(otto.email, "renewal_reminder")
    assert len(to_otto) == 7  # direct x3, unattributed x3, switch at -90 only
    for message in to_otto:
        text = body_text(message)
        assert "renew with your partner" not in " ".join(text.split())
        assert "Direkt" not in text and "Wechsel" not in text  # vendor-branded, not steered

    opportunities = sorted(
        (str(m["To"]), str(m["Subject"]).split(" on ")[0])
        for m in kinds(mail, "renewal_opportunity")
    )
    assert [to.split("@")[1] for to, _ in opportunities] == sorted(
        [
            "alpentech-systems.example",
            "alpentech-systems.example",
            "direkt-handel.example",
            "nordlicht-it.example",
            "wechsel-data.example",
            "wechsel-data.example",
        ]
    )
    second = [m for m in kinds(mail, "renewal_opportunity") if "second notice" in body_text(m)]
    assert sorted(str(m["To"]) for m in second) == [
        "partners@alpentech-systems.example",
        "partners@wechsel-data.example",
    ]

    client, db = service.db()
    try:
        stored = await db.partners.find_one({"_id": SWITCH})
        modes = sorted((t["effective_at"], t["renewal_mode"]) for t in stored["terms"].values())
        assert [mode for _, mode in modes] == ["vendor_direct", "partner_only"]
        assert stored["renewal_mode"] == "partner_only"
    finally:
        await client.close()
    assert T0 < SWITCHED_AT


async def test_a_back_dated_change_read_late_still_counts_at_its_own_time(
    service: Service, mail: MailSink
) -> None:
    """Events of one partner can arrive out of effective order (a back-dated PATCH): the
    latest description stays, and the history still answers for the older instant."""
    jana = customer("jana")
    await service.produce(
        partner_event(FIRST, "Nordlicht IT", renewal_mode="vendor_direct"),
        partner_event(
            FIRST,
            "Nordlicht IT",
            renewal_mode="vendor_direct",
            at=dt.datetime(2027, 12, 1, tzinfo=dt.UTC),
            event_type="partner.updated",
        ),
        # Read last, in force from before the -90 pass on.
        partner_event(
            FIRST,
            "Nordlicht IT",
            renewal_mode="partner_only",
            at=dt.datetime(2027, 9, 1, tzinfo=dt.UTC),
            event_type="partner.updated",
        ),
        registered("LK-1", jana, FIRST),
    )
    await service.start_worker()
    await eventually(lambda: len(kinds(mail, "welcome")) == 1, what="welcome")
    async with service.api() as api:
        as_of = (TERM_END - dt.timedelta(days=90)).isoformat()
        run = await api.post(f"/v1/admin/reminders/run?as_of={as_of}", headers=ADMIN_AUTH)
        assert run.json()["new"] == 1  # partner_only then: the opportunity alone
        as_of = (TERM_END - dt.timedelta(days=7)).isoformat()
        run = await api.post(f"/v1/admin/reminders/run?as_of={as_of}", headers=ADMIN_AUTH)
        assert run.json()["new"] == 1  # vendor_direct again from December: a reminder
