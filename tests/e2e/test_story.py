"""The whole flow on the suite as `./dev up` runs it, checked against the contract's rules.

A partner-channel sale by a reseller under a distributor; the customer registers
with the seller code; a partner-first renewal (the reseller told at -90, the
customer steered to it at -30, checkout's steer-back), then a direct web renewal
anyway, a retail upgrade, a partial refund and a security advisory; a customer of
two resellers signing in and granting access; a service-pack notice; a deal won by
a direct order; a tier promotion; an adjustment on the statement. Asserts the
partner of record, what finance sees on commissions.ledger.v1 (read_committed),
the mails in the sink, the webhooks, and that `./dev demo` tells each new step's
key fact (`StoryResult.narration`, what the demo prints).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import time
from collections import Counter
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from devkit.story import StoryResult, Suite, WebhookReceiver, tell
from devkit.up import DEV_CHECKOUT_TOKEN, RunningSuite, fresh_env, start_ready_suite
from shared.ids import clawback_line_id, commission_line_id


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningSuite, Path]]:
    data_dir = tmp_path_factory.mktemp("story")
    suite = start_ready_suite(data_dir, fresh_env(dict(os.environ)))
    try:
        yield suite, data_dir
    finally:
        suite.stop()


@pytest.fixture(scope="module")
def story(
    running: tuple[RunningSuite, Path],
) -> Iterator[tuple[StoryResult, WebhookReceiver, list[EmailMessage]]]:
    suite, data_dir = running
    ports = suite.ports
    target = Suite(
        registration=f"http://127.0.0.1:{ports['registration']}",
        commissions=f"http://127.0.0.1:{ports['commissions']}",
        notifications=f"http://127.0.0.1:{ports['notifications']}",
        kafka_bootstrap=suite.embedded.kafka_bootstrap,
        admin_token=fresh_admin_token(),
        checkout_token=os.environ.get("CHECKOUT_TOKEN", DEV_CHECKOUT_TOKEN),
    )
    with WebhookReceiver() as receiver:
        result = asyncio.run(
            tell(target, lambda _: None, mail_dir=data_dir / "mail", webhook_url=receiver.url)
        )
        mail = wait_for_mail(data_dir / "mail", expect=25)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(receiver.received) < 5:
            time.sleep(0.5)
        yield result, receiver, mail


def fresh_admin_token() -> str:
    return os.environ.get("ADMIN_TOKEN", "dev-admin-token")


def wait_for_mail(directory: Path, expect: int, wait_s: float = 30.0) -> list[EmailMessage]:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and len(list(directory.glob("*.eml"))) < expect:
        time.sleep(0.5)
    time.sleep(1.0)  # anything beyond `expect` (a duplicate) shows up too
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for p in sorted(directory.glob("*.eml"))
    ]


def body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    return str(part.get_content()) if part is not None else ""


def test_the_reseller_is_partner_of_record_since_its_sale(story: tuple) -> None:  # type: ignore[type-arg]
    result, _, _ = story
    por = result.entitlement["partner_of_record"]
    assert por["partner_id"] == result.reseller["partner_id"]
    assert por["source"] == "partner_sale"
    assert por["since"].startswith("2026-01-10T09:00:00")
    assert result.entitlement["product"] == "vault-enterprise"  # upgraded at the counter
    assert result.registration["registration_token"]


def test_finance_sees_each_line_and_transition_once_with_the_contract_amounts(
    story: tuple,  # type: ignore[type-arg]
) -> None:
    result, _, _ = story
    ledger = result.ledger
    assert len({(line["line_id"], line["event_type"]) for line in ledger}) == len(ledger)
    reseller, distributor = result.reseller["partner_id"], result.distributor["partner_id"]
    renewal, upgrade = result.orders["renewal"], result.orders["upgrade"]
    accrued = {
        (line["partner_id"], line["order_id"], line["role"]): line
        for line in ledger
        if line["event_type"] == "commission.accrued"
    }
    # CONTRACT 3, worked example: gold renewal 123457 at 1500 bps, override at 200 bps.
    assert accrued[(reseller, renewal, "partner_of_record")]["amount_minor"] == 18519
    assert accrued[(distributor, renewal, "distributor_override")]["amount_minor"] == 2469
    # Gold upgrade 250000 at 1000 bps; override 200 bps.
    assert accrued[(reseller, upgrade, "partner_of_record")]["amount_minor"] == 25000
    assert accrued[(distributor, upgrade, "distributor_override")]["amount_minor"] == 5000
    assert accrued[(reseller, renewal, "partner_of_record")]["line_id"] == commission_line_id(
        renewal, "1", reseller, "partner_of_record"
    )
    assert accrued[(reseller, renewal, "partner_of_record")]["payable_at"].startswith(
        "2027-02-04T10:00:00"
    )
    clawbacks = {
        line["partner_id"]: line
        for line in ledger
        if line["event_type"] == "commission.clawed_back"
    }
    # A refund of 61728 of 123457: round_half_even(18519 * 61728 / 123457) = 9259.
    assert clawbacks[reseller]["amount_minor"] == -9259
    assert clawbacks[distributor]["amount_minor"] == -1234
    assert clawbacks[reseller]["line_id"] == clawback_line_id(
        result.refund_id, reseller, "partner_of_record"
    )
    payable = Counter(
        line["line_id"] for line in ledger if line["event_type"] == "commission.payable"
    )
    assert set(payable) == {line["line_id"] for line in [*accrued.values(), *clawbacks.values()]}
    assert all(count == 1 for count in payable.values())
    # CONTRACT 6.5: the adjustment is on the ledger once, payable as booked, with no rate.
    [adjusted] = [line for line in ledger if line["event_type"] == "commission.adjusted"]
    assert adjusted["line_id"] == result.adjustment["line_id"]
    assert (adjusted["partner_id"], adjusted["amount_minor"]) == (reseller, 5000)
    assert adjusted["status"] == "payable" and adjusted["order_id"] is None


def test_customer_mail_is_branded_by_rule_and_advisories_name_no_partner(story: tuple) -> None:  # type: ignore[type-arg]
    result, _, mail = story
    to_customer = [m for m in mail if result.customer_email in str(m["To"])]
    welcome = [
        m
        for m in to_customer
        if "registered" in str(m["Subject"]) and result.license_key in body(m)
    ]
    assert len(welcome) == 1
    assert "Alpine IT Services" in str(welcome[0]["From"])  # active PoR, co-branding on
    assert "List-Unsubscribe" in welcome[0]
    [advisory] = [m for m in to_customer if "Security advisory" in str(m["Subject"])]
    assert "Alpine IT" not in str(advisory["From"]) + body(advisory)
    assert "Nordic" not in body(advisory)
    assert "List-Unsubscribe" not in advisory
    assert result.license_key in body(advisory)


def test_partners_hear_about_their_own_business_only(story: tuple) -> None:  # type: ignore[type-arg]
    result, _, mail = story
    reseller_mail = [m for m in mail if result.reseller["contact_email"] in str(m["To"])]
    distributor_mail = [m for m in mail if result.distributor["contact_email"] in str(m["To"])]
    subjects = " | ".join(str(m["Subject"]) for m in reseller_mail)
    assert "Commission earned: 185.19 EUR" in subjects
    assert "Commission reversed: 92.59 EUR" in subjects
    assert "VSA-2027-" in subjects  # the advisory digest
    for message in distributor_mail:
        text = body(message)
        assert "Alpine IT" not in text and result.reseller["seller_code"] not in text
        assert result.customer_email not in text
    assert any("24.69 EUR" in str(m["Subject"]) for m in distributor_mail)


def test_webhooks_are_signed_once_each_to_the_standard_webhooks_scheme(story: tuple) -> None:  # type: ignore[type-arg]
    result, receiver, _ = story
    verifier = Webhook(result.webhook_secret)
    ids = []
    for request in receiver.received:
        payload = verifier.verify(request["body"], request["headers"])
        ids.append(request["headers"]["webhook-id"])
        assert payload["type"] in {
            "attribution_changed",
            "commission_earned",
            "commission_reversed",
            "advisory_partner_digest",
            "renewal_opportunity",
            "notice_partner_digest",
            "deal_decided",
            "tier_changed",
        }
    assert len(ids) == len(set(ids))
    assert {"commission_earned", "commission_reversed", "advisory_partner_digest"} <= set(
        receiver.types()
    )


def test_no_personal_data_or_secret_reaches_the_logs(
    story: tuple,  # type: ignore[type-arg]
    running: tuple[RunningSuite, Path],
) -> None:
    result, _, _ = story
    _, data_dir = running
    logs = {p.name: p.read_text(errors="replace") for p in (data_dir / "logs").glob("*.log")}
    assert {"registration-api.log", "commissions-worker.log", "notifications-worker.log"} <= set(
        logs
    )
    assert sum(len(text) for text in logs.values()) > 0
    secrets = {
        "customer e-mail": result.customer_email,
        "reseller e-mail": result.reseller["contact_email"],
        "distributor e-mail": result.distributor["contact_email"],
        "reseller API key": result.reseller["api_key"],
        "distributor API key": result.distributor["api_key"],
        "registration token": result.registration["registration_token"],
        "customer sign-in token": result.sign_in_token,
        "customer session": result.session_token,
        "webhook secret": result.webhook_secret,
        "admin token": fresh_admin_token(),
    }
    for what, value in secrets.items():
        assert value, what
        leaks = [name for name, text in logs.items() if value in text]
        assert leaks == [], f"{what} found in {leaks}"


def told(result: StoryResult, *facts: str) -> str:
    """The narrated line (what `./dev demo` prints) that says all these facts."""
    for line in result.narration:
        if all(fact in line for fact in facts):
            return line
    raise AssertionError(f"no step says {facts}: {result.narration}")


def test_partner_first_renewal_tells_the_partner_at_90_and_steers_the_customer_at_30(
    story: tuple,  # type: ignore[type-arg]
) -> None:
    result, _, mail = story
    # partner_first: at -90 the partner hears of it (mail and webhook), the customer not yet
    assert {d["notification_type"] for d in result.reminders[90]} == {"renewal_opportunity"}
    assert {d["channel"] for d in result.reminders[90]} == {"email", "webhook"}
    assert result.reseller["renewal_mode"] == "partner_first"
    reminders_30 = [d for d in result.reminders[30] if d["notification_type"] == "renewal_reminder"]
    assert len(reminders_30) == 1
    assert "Please renew with your partner Alpine IT Services" in result.steered_reminder
    assert "+43 1 555 0199" in result.steered_reminder
    assert "https://alpine-it.example" in result.steered_reminder
    reminders = [
        m
        for m in mail
        if result.customer_email in str(m["To"]) and "licence ends in" in str(m["Subject"])
    ]
    assert [str(m["Subject"]) for m in reminders] == [
        "Alpine IT Services: Your secure-pro licence ends in 30 days"
    ]
    told(result, "-90 days (2026-10-11)", "renewal_opportunity", "the customer is NOT mailed")
    told(result, "-30 days (2026-12-10)", "Please renew with your partner Alpine IT Services")


def test_checkout_steers_back_yet_the_direct_renewal_pays_the_partner(story: tuple) -> None:  # type: ignore[type-arg]
    result, _, _ = story
    partner = result.steer_back["partner"]
    assert partner["display_name"] == "Alpine IT Services"
    assert partner["seller_code"] == result.reseller["seller_code"]
    assert "partner_id" not in partner and result.customer_email not in str(result.steer_back)
    told(result, "Checkout: renew with Alpine IT Services")
    renewal = result.orders["renewal"]
    assert any(
        line["order_id"] == renewal and line["partner_id"] == result.reseller["partner_id"]
        for line in result.ledger
        if line["event_type"] == "commission.accrued"
    )
    steer_at = next(i for i, t in enumerate(result.narration) if "Checkout: renew with" in t)
    renews_at = next(i for i, t in enumerate(result.narration) if "renews direct" in t)
    assert steer_at < renews_at


def test_a_customer_of_two_resellers_signs_in_and_grants_access(story: tuple) -> None:  # type: ignore[type-arg]
    result, _, _ = story
    by_key = {e["license_key"]: e for e in result.customer_licences}
    assert set(by_key) == {result.license_key, result.second_license_key}
    assert by_key[result.license_key]["partner_of_record"]["display_name"] == "Alpine IT Services"
    second = by_key[result.second_license_key]["partner_of_record"]
    assert second["display_name"] == "Bergtal Systemhaus"
    assert "partner_id" not in str(result.customer_licences)
    assert result.granted["license_key"] == result.second_license_key
    assert result.granted["partners_with_access"] == [
        {
            "display_name": "Alpine IT Services",
            "seller_code": result.reseller["seller_code"],
            "permission": "view",
        }
    ]
    told(result, "Signed in with the link from the mail (2 licences)", "Bergtal Systemhaus")
    told(result, "grants Alpine IT Services view access", result.second_license_key)


def test_a_service_pack_notice_reaches_the_customer_and_the_partners(story: tuple) -> None:  # type: ignore[type-arg]
    result, _, mail = story
    [notice] = [
        m
        for m in mail
        if result.customer_email in str(m["To"]) and "Service Pack 2" in str(m["Subject"])
    ]
    assert str(notice["Subject"]).startswith("[Service pack]")
    assert "Alpine IT" not in str(notice["From"]) + body(notice)
    assert "Bergtal" not in body(notice)
    digests = [m for m in mail if result.notice_id in str(m["Subject"])]
    assert {str(m["To"]) for m in digests} >= {
        result.reseller["contact_email"],
        result.second_reseller["contact_email"],
    }
    told(result, "Product notice (service_pack) mailed", "Service Pack 2")


def test_a_registered_deal_is_won_by_a_direct_new_order(story: tuple) -> None:  # type: ignore[type-arg]
    result, _, _ = story
    assert result.deal["status"] == "won"
    assert result.deal["order_id"] == result.orders["deal"]
    por = result.deal_entitlement["partner_of_record"]
    assert por["partner_id"] == result.reseller["partner_id"]
    assert por["source"] == "deal_registration"
    told(result, "wins deal", "status won", "source deal_registration")


def test_a_tier_evaluation_promotes_the_reseller(story: tuple) -> None:  # type: ignore[type-arg]
    result, _, mail = story
    assert result.reseller["tier"] == "gold"
    assert result.tier["tier"] == "platinum"
    assert any(
        result.reseller["contact_email"] in str(m["To"])
        and "Your partner tier is now Platinum" in str(m["Subject"])
        for m in mail
    )
    told(result, "Tier evaluation", "promoted from gold to platinum")


def test_the_adjustment_appears_on_the_partner_statement(story: tuple) -> None:  # type: ignore[type-arg]
    result, _, _ = story
    [line] = [line for line in result.statement["lines"] if line["role"] == "adjustment"]
    assert line["line_id"] == result.adjustment["line_id"]
    assert line["amount_minor"] == 5000 and line["currency"] == "EUR"
    assert line["reason"] == "Co-marketing bonus for the Seeblick Hotels win"
    told(result, "Statement of Alpine IT Services", "adjustment 50.00 EUR")
