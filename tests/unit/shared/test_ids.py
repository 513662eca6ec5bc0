"""Deterministic ids: UUIDv5 over the natural key under the contract's namespace."""

from __future__ import annotations

import uuid

import pytest

from shared.ids import NS, clawback_line_id, commission_line_id, derive_id

pytestmark = pytest.mark.unit


def test_namespace_is_the_contracts() -> None:
    assert str(NS) == "6abe1a86-42d3-5d78-9c97-01a95d4dfdcc"


def test_commission_line_id_follows_contract_key() -> None:
    expected = uuid.uuid5(NS, "WEB-100017/1/P-GOLD01/partner_of_record")
    line_id = commission_line_id("WEB-100017", "1", "P-GOLD01", "partner_of_record")
    assert line_id == str(expected)
    assert uuid.UUID(line_id).version == 5


def test_clawback_line_id_follows_contract_key() -> None:
    expected = uuid.uuid5(NS, "RF-5001/P-DIST01/distributor_override")
    assert clawback_line_id("RF-5001", "P-DIST01", "distributor_override") == str(expected)


def test_derive_id_is_deterministic_and_key_sensitive() -> None:
    assert derive_id("a", "b") == derive_id("a", "b")
    assert derive_id("a", "b") != derive_id("b", "a")
    assert commission_line_id("O", "1", "P", "partner_of_record") != commission_line_id(
        "O", "1", "P", "distributor_override"
    )


def test_derive_id_rejects_no_parts_and_non_strings() -> None:
    with pytest.raises(ValueError):
        derive_id()
    with pytest.raises(TypeError):
        derive_id("O", 1)  # type: ignore[arg-type]
