"""Delivery searches name `recipient` alone: the `(recipient, created_at)` index answers."""

from __future__ import annotations

from services.notifications.adapters.delivery_log import (
    criteria_query,
    partner_log_query,
    recipient_query,
)
from services.notifications.service_layer.ports import DeliveryCriteria


def test_an_address_is_looked_up_lower_cased_and_as_given() -> None:
    assert recipient_query("jana@kunde.example") == {"recipient": "jana@kunde.example"}
    assert recipient_query(" Jana@Kunde.example") == {
        "recipient": {"$in": ["jana@kunde.example", " Jana@Kunde.example"]}
    }


def test_a_partner_id_is_found_as_given() -> None:
    # A partner record's recipient is the partner id itself, case kept.
    assert recipient_query("P-NORD01") == {"recipient": {"$in": ["p-nord01", "P-NORD01"]}}


def test_a_partner_log_is_its_own_records_only() -> None:
    # Customer records hold lower-cased addresses: an id with an upper-case letter
    # can only be a partner record's recipient.
    assert partner_log_query("P-NORD01") == {"recipient": "P-NORD01"}
    assert partner_log_query("p-lower") == {"recipient": "p-lower", "audience": "partner"}


def test_the_operators_search_names_each_criterion_given() -> None:
    assert criteria_query(DeliveryCriteria()) == {}
    assert criteria_query(
        DeliveryCriteria(
            license_key="LK-1", recipient="Jana@Kunde.example", status="failed", error="x"
        )
    ) == {
        "license_keys": "LK-1",
        "recipient": {"$in": ["jana@kunde.example", "Jana@Kunde.example"]},
        "status": "failed",
        "error": "x",
    }
