"""The console's pure rules: partner search, the payables queue, tier-rule forms."""

from __future__ import annotations

import datetime as dt

from services.portal.domain import console


def test_search_by_name_id_code_and_email_any_case() -> None:
    partners = [
        {"partner_id": "P-1", "display_name": "Nordlicht IT", "seller_code": "7K3M-9QXF",
         "contact_email": "a@nordlicht.example", "tier": "gold", "status": "active"},
        {"partner_id": "P-2", "display_name": "bravo", "seller_code": "ABCD-EFGH",
         "contact_email": "b@bravo.example", "tier": "silver", "status": "suspended"},
    ]  # fmt: skip
    names = lambda found: [p["display_name"] for p in found]  # noqa: E731
    assert names(console.search_partners(partners, "")) == ["bravo", "Nordlicht IT"]
    assert names(console.search_partners(partners, "NORD")) == ["Nordlicht IT"]
    assert names(console.search_partners(partners, "7k3m9qxf")) == ["Nordlicht IT"]
    assert names(console.search_partners(partners, "p-2")) == ["bravo"]
    assert names(console.search_partners(partners, "", status="suspended")) == ["bravo"]
    assert names(console.search_partners(partners, "", tier="gold")) == ["Nordlicht IT"]


def test_payable_statements_group_by_partner_month_currency() -> None:
    lines = [
        {"partner_id": "P-1", "occurred_at": "2026-12-05T00:00:00Z", "currency": "EUR",
         "amount_minor": 100, "status": "payable"},
        {"partner_id": "P-1", "occurred_at": "2026-12-20T00:00:00Z", "currency": "EUR",
         "amount_minor": -30, "status": "payable"},
        {"partner_id": "P-1", "occurred_at": "2026-12-20T00:00:00Z", "currency": "USD",
         "amount_minor": 5, "status": "payable"},
        {"partner_id": "P-1", "occurred_at": "2026-12-20T00:00:00Z", "currency": "EUR",
         "amount_minor": 999, "status": "paid"},
    ]  # fmt: skip
    assert console.payable_statements(lines) == [
        console.PayableStatement("P-1", "2026-12", "EUR", 70, 2),
        console.PayableStatement("P-1", "2026-12", "USD", 5, 1),
    ]


def test_rules_in_force_from_any_envelope() -> None:
    v1 = {"version": 1, "tiers": {}}
    v2 = {"version": 2, "tiers": {"gold": {}}}
    assert console.rules_in_force({"versions": [v1, v2], "in_force": 1}) == v1
    assert console.rules_in_force({"versions": [v1, v2]}) == v2
    assert console.rules_in_force(v2) == v2
    assert console.rules_in_force({"items": [v1]}) == v1
    assert console.rules_in_force(None) is None and console.rules_in_force({}) is None


def test_fx_is_kept_as_exact_decimal_strings() -> None:
    assert console.parse_fx("USD=0.92, gbp = 1.17\nJPY=0.0061") == (
        {"USD": "0.92", "GBP": "1.17", "JPY": "0.0061"},
        None,
    )
    assert console.parse_fx("")[0] == {}
    for bad in ("USD", "US=1", "USD=x", "USD=0", "USD=-1", "USD=NaN"):
        assert console.parse_fx(bad)[1], bad


def test_tier_rules_form_round_trips_exactly() -> None:
    rules = {
        "effective_from": "2027-02-01",
        "currency": "EUR",
        "fx": {"USD": "0.92"},
        "tiers": {
            "platinum": {"min_revenue_minor": 50000000, "min_certified": 4},
            "gold": {"min_revenue_minor": 10000050, "min_certified": 2},
            "silver": {"min_revenue_minor": 2500000, "min_certified": 1},
            "bronze": {"min_revenue_minor": 0, "min_certified": 0},
        },
        "demotion_grace_days": 90,
    }
    values = console.tier_rules_form_values(rules, dt.date(2027, 1, 15))
    assert values["gold_revenue"] == "100000.50"
    values["effective_from"] = "2027-02-01"
    parsed, errors = console.tier_rules_from_form(values)
    assert errors == {} and parsed == rules


def test_tier_rules_form_names_each_bad_field() -> None:
    _, errors = console.tier_rules_from_form(
        {"effective_from": "soon", "currency": "EU", "fx": "USD=abc",
         "demotion_grace_days": "-1", "gold_revenue": "1", "gold_certified": "x"}
    )  # fmt: skip
    assert {"effective_from", "currency", "fx", "demotion_grace_days", "gold_certified",
            "platinum_revenue"} <= set(errors)  # fmt: skip


def test_the_preview_lists_only_partners_an_evaluation_would_move() -> None:
    """Registration's preview (CONTRACT 6.4) answers every partner; the page lists moves."""
    body = {
        "as_of": "2027-01-31",
        "changes": [
            {"partner_id": "P-A", "tier": "silver", "move": "promotion", "new_tier": "gold"},
            {"partner_id": "P-B", "tier": "gold", "move": "none", "new_tier": None},
            {"partner_id": "P-C", "tier": "gold", "move": "pending_demotion", "new_tier": None},
            {"partner_id": "P-D", "tier": "gold", "move": "demotion", "new_tier": "bronze"},
        ],
    }
    assert console.preview_moves(body) == [
        {"partner_id": "P-A", "display_name": "", "from": "silver", "to": "gold"},
        {"partner_id": "P-D", "display_name": "", "from": "gold", "to": "bronze"},
    ]
    assert console.preview_moves(None) == []
