"""Portal sessions live in the sealed cookie: any replica sharing PORTAL_SESSION_SECRET, or
the same one restarted, takes them; another secret, a changed cookie or an old one do not."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from services.portal.config import Settings
from services.portal.entrypoints.app import build_app
from tests.unit.portal.fake_apis import (
    COMMISSIONS,
    NOTIFICATIONS,
    REGISTRATION,
    FakePartnerApis,
    entitlement,
)
from tests.unit.portal.test_portal_web import TODAY, Clock, sign_in

SECRET = "shared-by-every-replica"


@pytest.fixture
def fake() -> FakePartnerApis:
    apis = FakePartnerApis()
    apis.entitlements["P-A"] = [entitlement("LK-A-1", "P-A", "2027-02-20", "Alpha Logistik GmbH")]
    return apis


def replica(fake: FakePartnerApis, clock: Clock, secret: str = SECRET) -> Iterator[TestClient]:
    """One portal process: its own app, lifespan and memory; only the secret is shared."""
    settings = Settings(
        environment="dev",
        registration_url=REGISTRATION,
        commissions_url=COMMISSIONS,
        notifications_url=NOTIFICATIONS,
        portal_session_secret=secret,
    )
    app = build_app(settings, transport=fake.transport(), clock=clock, today=lambda: TODAY)
    with TestClient(app, base_url="http://portal.test", follow_redirects=False) as client:
        yield client


def _visit(client: TestClient, cookie: str, path: str = "/overview") -> int:
    client.cookies.set("portal_session", cookie, domain="portal.test")
    return client.get(path).status_code


def test_a_session_made_by_one_replica_is_accepted_by_another_and_after_a_restart(
    fake: FakePartnerApis,
) -> None:
    clock = Clock()
    for first in replica(fake, clock):
        csrf = sign_in(first, "key-A")
        cookie = first.cookies.get("portal_session") or ""
        assert "key-A" not in cookie
    # `first` has shut down (its lifespan ended): a restart, then a second replica.
    for restarted in replica(fake, clock):
        clock.now += 60
        assert _visit(restarted, cookie) == 200
        assert "Alpha Logistik" in restarted.get("/entitlements").text
    for other in replica(fake, clock):
        assert _visit(other, cookie) == 200
        # The session's CSRF token travels with it: a form posted to another replica works.
        response = other.post("/sign-out", data={"csrf_token": csrf})
        assert response.status_code == 303 and response.headers["location"] == "/sign-in"
    assert {key for key in fake.keys_sent()} == {"Bearer key-A"}


def test_another_secret_a_changed_cookie_or_an_idle_one_is_refused(
    fake: FakePartnerApis,
) -> None:
    clock = Clock()
    for first in replica(fake, clock):
        sign_in(first, "key-A")
        cookie = first.cookies.get("portal_session") or ""
    for stranger in replica(fake, clock, secret="some-other-portal-secret"):
        assert _visit(stranger, cookie) == 303
    for other in replica(fake, clock):
        flipped = cookie[:20] + ("A" if cookie[20] != "A" else "B") + cookie[21:]
        assert _visit(other, flipped) == 303
        clock.now += 31 * 60  # longer than PORTAL_SESSION_IDLE_MINUTES (30)
        response = other.get("/overview")
        assert response.status_code == 303
        assert response.headers["location"] == "/sign-in?expired=1"


def test_use_keeps_a_session_alive_on_any_replica_until_its_maximum_age(
    fake: FakePartnerApis,
) -> None:
    clock = Clock()
    replicas = [replica(fake, clock), replica(fake, clock)]
    clients = [next(r) for r in replicas]
    try:
        sign_in(clients[0], "key-A")
        cookie = clients[0].cookies.get("portal_session") or ""
        for step in range(23):  # every 29 minutes, alternating replicas: 11 h 7 min
            clock.now += 29 * 60
            client = clients[step % 2]
            client.cookies.set("portal_session", cookie, domain="portal.test")
            response = client.get("/overview")
            assert response.status_code == 200, step
            cookie = client.cookies.get("portal_session") or ""  # re-sealed: idle timer restarts
        clock.now += 60 * 60  # past PORTAL_SESSION_MAX_HOURS (12) since sign-in
        assert _visit(clients[0], cookie) == 303
    finally:
        for r in replicas:
            r.close()


def test_production_requires_the_session_secret() -> None:
    with pytest.raises(ValidationError, match="PORTAL_SESSION_SECRET must be set in production"):
        Settings(environment="production")
    assert Settings(environment="production", portal_session_secret=SECRET).secure_cookies
    Settings(environment="dev")  # dev: a random secret per process
