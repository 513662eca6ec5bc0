"""Renewal mode (CONTRACT 6.1): effective-dated like the tier, audited, in partner.* events;
and the checkout's steer-back read."""

from __future__ import annotations

import pytest

from services.registration.config import ApiSettings, Settings
from services.registration.domain.partners import AUDIT_KEPT
from services.registration.service_layer import secrets
from services.registration.service_layer.entitlements import EntitlementService
from services.registration.service_layer.errors import UseCaseError
from services.registration.service_layer.orders import OrderApplier
from services.registration.service_layer.partners import NewPartner, PartnerChanges, PartnerService
from shared.events import PartnerUpdated
from tests.unit.registration.builders import at, enrol, incoming, line, order
from tests.unit.registration.fakes import Clock, Store, factory


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def clock() -> Clock:
    return Clock(at("2026-03-01T12:00:00Z"))


@pytest.fixture
def partners(store: Store, clock: Clock) -> PartnerService:
    return PartnerService(factory(store), clock)


async def test_the_default_is_partner_first_and_created_events_carry_it(
    partners: PartnerService, store: Store
) -> None:
    pid, _, _ = await enrol(partners)
    partner = await partners.get(pid)
    assert partner.renewal_mode_at(at("2030-01-01T00:00:00Z")) == "partner_first"
    assert store.outbox[-1].envelope.data.renewal_mode == "partner_first"
    other, _ = await partners.create(
        NewPartner("B", "B GmbH", "var", "gold", "b@example.com", renewal_mode="vendor_direct")
    )
    assert store.outbox[-1].envelope.data.renewal_mode == "vendor_direct"
    assert other.renewal_mode_at(at("2026-03-01T12:00:00Z")) == "vendor_direct"


async def test_an_admin_change_is_effective_dated_like_the_tier(
    partners: PartnerService, store: Store
) -> None:
    pid, _, _ = await enrol(partners, effective_at=at("2026-01-01T00:00:00Z"))
    await partners.update(
        pid,
        PartnerChanges(renewal_mode="partner_only", effective_at=at("2026-06-01T00:00:00Z")),
    )
    partner = await partners.get(pid)
    assert partner.renewal_mode_at(at("2026-05-31T23:59:59Z")) == "partner_first"
    assert partner.renewal_mode_at(at("2026-06-01T00:00:00Z")) == "partner_only"
    event = store.outbox[-1].envelope
    assert isinstance(event.data, PartnerUpdated)
    assert (event.data.renewal_mode, event.data.effective_at) == (
        "partner_only",
        at("2026-06-01T00:00:00Z"),
    )
    [entry] = partner.audit
    assert (entry.actor, entry.before, entry.after) == ("admin", "partner_first", "partner_only")
    # The same mode again changes nothing and emits nothing.
    count = len(store.outbox)
    await partners.update(
        pid, PartnerChanges(renewal_mode="partner_only", effective_at=at("2026-07-01T00:00:00Z"))
    )
    assert len(store.outbox) == count


async def test_a_partner_sets_its_own_mode_now_and_the_key_id_is_audited(
    partners: PartnerService, store: Store, clock: Clock
) -> None:
    pid, _, key = await enrol(partners)
    actor = "K-0A1B2C3D4E5F"  # the calling key's public id (CONTRACT 6.7)
    partner = await partners.set_renewal_mode(pid, "vendor_direct", actor=actor)
    assert partner.renewal_mode_at(clock()) == "vendor_direct"
    [entry] = partner.audit
    assert (entry.action, entry.actor, entry.at, entry.effective_at) == (
        "renewal_mode.changed",
        actor,
        clock(),
        clock(),
    )
    assert key not in actor and secrets.hash_secret(key) not in actor
    assert store.outbox[-1].envelope.data.renewal_mode == "vendor_direct"
    with pytest.raises(UseCaseError) as missing:
        await partners.set_renewal_mode("P-NOPE", "vendor_direct", actor=actor)
    assert missing.value.kind == "not_found"


async def test_a_stored_partner_without_a_mode_history_is_on_the_default(
    partners: PartnerService, store: Store, clock: Clock
) -> None:
    pid, _, _ = await enrol(partners, effective_at=at("2026-01-01T00:00:00Z"))
    store.partners[pid].renewal_mode_history.clear()  # as stored before CONTRACT 6.1
    partner = await partners.set_renewal_mode(pid, "partner_only", actor="admin")
    assert partner.renewal_mode_at(at("2026-02-01T00:00:00Z")) == "partner_first"
    assert partner.renewal_mode_at(clock()) == "partner_only"


async def test_the_audit_kept_on_the_partner_is_bounded(
    partners: PartnerService, clock: Clock
) -> None:
    pid, _, _ = await enrol(partners)
    modes = ("partner_only", "vendor_direct")
    for n in range(AUDIT_KEPT + 5):
        clock.advance(days=1)
        await partners.set_renewal_mode(pid, modes[n % 2], actor="admin")
    assert len((await partners.get(pid)).audit) == AUDIT_KEPT


async def test_steer_back_names_an_active_partner_of_record_only(
    partners: PartnerService, store: Store, clock: Clock
) -> None:
    pid, code, _ = await enrol(partners)
    applier = OrderApplier(factory(store), clock, window_months=36)
    await applier.apply(
        [
            incoming(
                order("O-1", line("LK-1"), channel="partner", partner_code=code),
                "2026-02-01T00:00:00Z",
            )
        ]
    )
    await applier.apply([incoming(order("O-2", line("LK-2")), "2026-02-01T00:00:00Z")])
    entitlements = EntitlementService(factory(store), clock)
    found = await entitlements.steer_back("LK-1")
    assert found.partner is not None and found.partner.partner_id == pid
    assert (await entitlements.steer_back("LK-2")).partner is None
    with pytest.raises(UseCaseError) as unknown:
        await entitlements.steer_back("LK-NOPE")
    assert unknown.value.code == "unknown_license_key"
    await partners.update(pid, PartnerChanges(status="suspended"))
    assert (await entitlements.steer_back("LK-1")).partner is None


def test_the_api_refuses_to_start_without_a_checkout_token_outside_dev(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", "an-operator-token")
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "kafka:9092")
    monkeypatch.setenv("MONGO_URL", "mongodb://mongo/?replicaSet=rs0")
    monkeypatch.delenv("CHECKOUT_TOKEN", raising=False)
    monkeypatch.setenv("ENVIRONMENT", "production")
    from chassis.settings import load_settings

    with pytest.raises(SystemExit):
        load_settings(ApiSettings)
    refused = capsys.readouterr().err.strip()
    assert "CHECKOUT_TOKEN" in refused and "\n" not in refused
    assert Settings().checkout_token.get_secret_value() == ""  # the worker does not need it
    monkeypatch.setenv("CHECKOUT_TOKEN", "an-operator-token")
    with pytest.raises(SystemExit):
        load_settings(ApiSettings)
    assert "CHECKOUT_TOKEN must differ from ADMIN_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("CHECKOUT_TOKEN", "a-checkout-service-token")
    token = load_settings(ApiSettings).checkout_token.get_secret_value()
    assert token == "a-checkout-service-token"
    monkeypatch.setenv("ENVIRONMENT", "dev")
    monkeypatch.delenv("CHECKOUT_TOKEN")
    assert load_settings(ApiSettings).checkout_token.get_secret_value() == ""
