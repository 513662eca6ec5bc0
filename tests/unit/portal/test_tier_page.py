"""The Tier page (CONTRACT 6.4): current tier, what it qualifies for, what the next tier needs."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.unit.portal.fake_apis import FakePartnerApis
from tests.unit.portal.test_portal_web import client, clock, fake, sign_in

__all__ = ["client", "clock", "fake"]  # the fixtures, shared with the page tests


def standing(**fields: Any) -> dict[str, Any]:
    return {
        "as_of": "2027-01-15",
        "tier": "silver",
        "qualifies_for": "gold",
        "revenue": {
            "amount_minor": 1_100_000,
            "currency": "EUR",
            "by_currency": {"EUR": 1_100_000},
            "unconverted": [],
        },
        "certified": 2,
        "certifications": [
            {
                "certification_id": "c1",
                "partner_id": "P-A",
                "name": "Secure Pro Engineer",
                "holder": "Ana Example",
                "expires_on": "2027-06-30",
            }
        ],
        "next_tier": {
            "tier": "platinum",
            "min_revenue_minor": 10_000_000,
            "min_certified": 5,
            "revenue_minor_missing": 8_900_000,
            "certified_missing": 3,
        },
        "below_since": None,
        "demotion_grace_days": 90,
        "rules_version": 1,
        **fields,
    }


def test_tier_page_shows_tier_qualification_and_the_gap(
    client: TestClient, fake: FakePartnerApis
) -> None:
    fake.tiers["P-A"] = standing()
    sign_in(client, "key-A")
    response = client.get("/tier")
    assert response.status_code == 200
    html = response.text
    assert 'data-testid="tier-current"><strong>Silver' in html
    assert 'data-testid="tier-qualifies">Gold' in html
    assert "EUR 11,000.00" in html and "EUR 89,000.00" in html
    assert 'data-testid="gap-certified">3' in html
    assert "Secure Pro Engineer" in html and "Ana Example" in html
    assert "The next evaluation moves you to Gold" in html
    assert 'href="/tier" aria-current="page"' in html
    tier_calls = [r for r in fake.partner_calls() if r.url.path == "/v1/partner/tier"]
    assert {r.headers["authorization"] for r in tier_calls} == {"Bearer key-A"}


def test_tier_page_at_the_top_and_pending_demotion(
    client: TestClient, fake: FakePartnerApis
) -> None:
    fake.tiers["P-A"] = standing(
        tier="platinum", qualifies_for="gold", below_since="2027-01-01", next_tier=None
    )
    sign_in(client, "key-A")
    html = client.get("/tier").text
    assert "Below your tier since 2027-01-01" in html and "90 days" in html


def test_tier_page_without_rules(client: TestClient) -> None:
    sign_in(client, "key-A")
    response = client.get("/tier")
    assert response.status_code == 200
    assert "no rules yet" in response.text


def test_tier_page_needs_a_session(client: TestClient) -> None:
    response = client.get("/tier")
    assert response.status_code == 303 and response.headers["location"].startswith("/sign-in")
