"""The pure rules behind the pages: money, renewals, search, totals, brand contrast."""

from __future__ import annotations

import datetime as dt

from services.portal.adapters.session_cookies import SessionCookies
from services.portal.domain import presentation as p
from services.portal.domain.sessions import Branding, SignInCsrf


def test_money_is_exact_per_currency_exponent() -> None:
    assert p.format_money(123457, "EUR") == "EUR 1,234.57"
    assert p.format_money(-9259, "EUR") == "EUR -92.59"
    assert p.format_money(98765, "JPY") == "JPY 98,765"
    assert p.format_money(1005, "KWD") == "KWD 1.005"
    assert p.format_money(5, "USD") == "USD 0.05"


def test_up_for_renewal_is_today_to_90_days_soonest_first() -> None:
    today = dt.date(2027, 1, 15)
    rows = [
        {"license_key": k, "term_end": end}
        for k, end in [("late", "2027-04-15"), ("past", "2027-01-14"), ("soon", "2027-01-15"),
                       ("edge", "2027-04-16")]
    ]  # fmt: skip
    assert [r["license_key"] for r in p.up_for_renewal(rows, today)] == ["soon", "late"]


def test_search_matches_key_and_customer_case_insensitively() -> None:
    e = {"license_key": "LK-1", "customer": {"org_name": "Müller GmbH", "customer_id": "C-9"}}
    assert p.matches(e, "lk-1") and p.matches(e, "MÜLLER") and p.matches(e, "c-9")
    assert p.matches(e, "") and not p.matches(e, "bravo")


def test_totals_by_currency_and_status() -> None:
    lines = [
        {"currency": "EUR", "status": "accrued", "amount_minor": 100},
        {"currency": "EUR", "status": "accrued", "amount_minor": -40},
        {"currency": "CHF", "status": "paid", "amount_minor": 7},
    ]
    totals = p.totals_by_currency(lines)
    assert [t.currency for t in totals] == ["CHF", "EUR"]
    assert totals[1].by_status["accrued"] == 60 and totals[1].net == 60


def test_brand_text_colour_keeps_contrast() -> None:
    assert p.text_on("#0B5394") == "#FFFFFF"
    assert p.text_on("#FFD700") == "#000000"
    assert p.brand_color("red; background:url(x)") == p.DEFAULT_BRAND_COLOR
    assert p.brand_color("#abc") == "#abc"


def test_months() -> None:
    assert p.month_bounds("2024-02") == (dt.date(2024, 2, 1), dt.date(2024, 2, 29))
    assert p.recent_months(dt.date(2027, 1, 3), 3) == ["2027-01", "2026-12", "2026-11"]
    assert p.is_month("2027-12") and not p.is_month("2027-13") and not p.is_month("../x")


def test_session_cookies_bounds_and_expiry() -> None:
    now = [1000.0]
    cookies = SessionCookies(
        "a-long-enough-secret", lambda: now[0], idle_seconds=10, max_age_seconds=100, max_revoked=2
    )
    a = cookies.create("key-a", Branding())
    b = cookies.create("key-b", Branding())
    assert "key-a" not in repr(a) and "key-a" not in cookies.seal(a)
    sealed_a, sealed_b = cookies.seal(a), cookies.seal(b)
    cookies.revoke(a)
    assert cookies.open(sealed_a) is None  # revoked
    assert cookies.open(sealed_b) is not None
    c = cookies.create("key-c", Branding())
    cookies.revoke(b)
    cookies.revoke(c)
    assert cookies.open(sealed_a) is not None  # the revocation list is bounded (oldest out)
    d = cookies.create("key-d", Branding())
    sealed = cookies.seal(d)
    for _ in range(11):  # kept alive by use (re-sealed), until the absolute maximum age
        now[0] += 9
        session = cookies.open(sealed)
        assert session is not None and session.api_key == "key-d"
        sealed = cookies.seal(session)
    now[0] += 9
    assert cookies.open(sealed) is None
    idle = cookies.seal(cookies.create("key-e", Branding()))
    now[0] += 11
    assert cookies.open(idle) is None  # idle too long


def test_sign_in_csrf_tokens() -> None:
    csrf = SignInCsrf("a-long-enough-secret")
    nonce = csrf.new_nonce()
    assert csrf.valid(nonce, csrf.token_for(nonce))
    assert not csrf.valid(nonce, csrf.token_for("other"))
    assert not csrf.valid(None, csrf.token_for(nonce))
    assert not SignInCsrf("another-secret-value").valid(nonce, csrf.token_for(nonce))
