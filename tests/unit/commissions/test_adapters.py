"""Pure parts of the adapters: the stored form round-trips; partner-key failures are 503s."""

from __future__ import annotations

import httpx
import pytest

from chassis.auth import PartnerPrincipal
from chassis.errors import ApiError
from services.commissions.adapters.documents import (
    aggregate_from_doc,
    aggregate_to_doc,
    rate_table_from_doc,
    rate_table_to_doc,
)
from services.commissions.adapters.partner_keys import partner_resolver
from services.commissions.domain.periods import Month
from services.commissions.domain.rates import DEFAULT_RATE_TABLE
from tests.unit.commissions.builders import (
    POLICY,
    RATES,
    aggregate_for,
    at,
    order,
    partner,
    raw,
    refund,
    refund_into,
    source,
)

NOW = at("2027-06-01T00:00:00Z")


def test_an_aggregate_survives_storage_unchanged() -> None:
    line = aggregate_for(order())
    held = refund("RF-0", 5, currency="USD")
    line.apply_refund(held, source("r"), raw(held))
    line.apply_order(order(por=partner(customer_ids=("C-1", "C-2"))), source(), RATES, POLICY)
    refund_into(line, refund("RF-1", 61728))
    line.release_payables(at("2027-03-01T00:00:00Z"), NOW)
    line.mark_paid("P-GOLD", Month(2027, 1), NOW)
    line.version = 3
    doc = aggregate_to_doc(line, 3)
    assert doc["due_at"] is None
    back = aggregate_from_doc(doc)
    assert back == line
    assert back.rejections[0].held == raw(held)
    assert all(type(entry.amount_minor) is int for entry in back.lines)


def test_a_rate_table_survives_storage_unchanged() -> None:
    assert rate_table_from_doc(rate_table_to_doc(DEFAULT_RATE_TABLE)) == DEFAULT_RATE_TABLE


async def test_the_operator_token_is_never_sent_out_as_a_partner_key() -> None:
    asked: list[str] = []

    async def remote(token: str) -> PartnerPrincipal | None:
        asked.append(token)
        return PartnerPrincipal("P-1") if token == "good" else None

    resolve = partner_resolver(remote, "operator-token-123")
    assert await resolve("operator-token-123") is None
    assert await resolve("good") == PartnerPrincipal("P-1")
    assert await resolve("bad") is None
    assert asked == ["good", "bad"]


async def test_registration_unreachable_is_503_not_401() -> None:
    async def remote(token: str) -> PartnerPrincipal | None:
        raise httpx.ConnectError("registration down")

    with pytest.raises(ApiError) as error:
        await partner_resolver(remote, "operator-token-123")("some-key")
    assert error.value.status == 503
    assert "some-key" not in error.value.message
