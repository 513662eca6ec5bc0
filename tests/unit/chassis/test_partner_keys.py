"""Partner-key introspection against registration: answers, caching, failures."""

from __future__ import annotations

import json

import httpx
import pytest

from chassis.auth import PartnerPrincipal
from chassis.errors import ApiError
from chassis.partner_keys import INTROSPECT_PATH, RegistrationKeyIntrospector


def registration(calls: list[dict[str, str]]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == INTROSPECT_PATH
        if request.headers["authorization"] != "Bearer admin-token-123":
            return httpx.Response(401)
        key = json.loads(request.content)["api_key"]
        calls.append({"key": key})
        if key == "down":
            return httpx.Response(503)
        if key == "good":
            return httpx.Response(200, json={"active": True, "partner_id": "P-1"})
        return httpx.Response(200, json={"active": False})

    return httpx.MockTransport(answer)


def introspector(calls: list[dict[str, str]], **kw: float) -> RegistrationKeyIntrospector:
    client = httpx.AsyncClient(transport=registration(calls), base_url="http://reg")
    return RegistrationKeyIntrospector("http://reg", "admin-token-123", client=client, **kw)


async def test_a_known_key_resolves_to_its_partner_and_is_cached() -> None:
    calls: list[dict[str, str]] = []
    resolve = introspector(calls)
    assert await resolve("good") == PartnerPrincipal("P-1")
    assert await resolve("good") == PartnerPrincipal("P-1")
    assert len(calls) == 1


async def test_an_unknown_key_is_none_and_cached_briefly() -> None:
    calls: list[dict[str, str]] = []
    resolve = introspector(calls, negative_ttl_s=0.0)
    assert await resolve("nope") is None
    assert await resolve("nope") is None
    assert len(calls) == 2


async def test_registration_down_is_a_503_not_an_unknown_key() -> None:
    resolve = introspector([])
    with pytest.raises(ApiError) as raised:
        await resolve("down")
    assert raised.value.status == 503


async def test_the_cache_is_bounded_and_forgets_the_least_recently_used() -> None:
    calls: list[dict[str, str]] = []
    resolve = introspector(calls, max_entries=2)
    for key in ("good", "a", "b", "good"):
        await resolve(key)
    assert [c["key"] for c in calls] == ["good", "a", "b", "good"]


# ------------------------------------------------------------ roles and revocation (6.7)


def _with_role(role: str | None) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        body = {"active": True, "partner_id": "P-1"}
        if role is not None:
            body |= {"role": role, "key_id": "K-1"}
        return httpx.Response(200, json=body)

    return httpx.MockTransport(answer)


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("finance", PartnerPrincipal("P-1", role="finance", key_id="K-1")),
        # A registration from before roles: its one key per partner is the admin key.
        (None, PartnerPrincipal("P-1", role="admin", key_id=None)),
    ],
)
async def test_the_answer_carries_the_keys_role_and_id(
    role: str | None, expected: PartnerPrincipal
) -> None:
    client = httpx.AsyncClient(transport=_with_role(role), base_url="http://reg")
    resolve = RegistrationKeyIntrospector("http://reg", "t", client=client)
    assert await resolve("good") == expected


async def test_a_revoked_key_stops_working_when_its_answer_expires() -> None:
    now = [0.0]
    revoked = {"flag": False}

    def answer(request: httpx.Request) -> httpx.Response:
        if revoked["flag"]:
            return httpx.Response(200, json={"active": False})
        return httpx.Response(200, json={"active": True, "partner_id": "P-1", "role": "sales"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer), base_url="http://reg")
    resolve = RegistrationKeyIntrospector(
        "http://reg", "t", client=client, ttl_s=60.0, monotonic=lambda: now[0]
    )
    assert await resolve("k") is not None
    revoked["flag"] = True
    now[0] = 59.9
    assert await resolve("k") is not None  # still trusted inside the TTL
    now[0] = 60.0
    assert await resolve("k") is None


def test_a_positive_ttl_above_the_revocation_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="revocation"):
        RegistrationKeyIntrospector("http://reg", "t", ttl_s=61.0)
