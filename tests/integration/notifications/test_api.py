"""The HTTP API: authentication, webhook targets, errors in the contract's shape."""

from __future__ import annotations

from cryptography.fernet import Fernet
from pydantic import SecretStr
from standardwebhooks import Webhook

from tests.integration.notifications.harness import ADMIN, Receiver, Service

ADMIN_AUTH = {"authorization": f"Bearer {ADMIN}"}
PARTNER_AUTH = {"authorization": "Bearer key-nord"}


async def test_tokens_of_the_wrong_kind_are_refused(service: Service) -> None:
    service.partner_keys["key-nord"] = "P-NORD01"
    async with service.api() as api:
        assert (await api.get("/v1/admin/deliveries")).status_code == 401
        unknown = await api.get("/v1/admin/deliveries", headers={"authorization": "Bearer nope"})
        assert unknown.status_code == 401 and unknown.json()["error"]["code"] == "unauthorized"
        assert (await api.get("/v1/admin/deliveries", headers=PARTNER_AUTH)).status_code == 403
        assert (await api.get("/v1/partner/deliveries", headers=ADMIN_AUTH)).status_code == 403
        mine = await api.get("/v1/partner/deliveries", headers=PARTNER_AUTH)
        assert mine.status_code == 200 and mine.json() == {"deliveries": [], "total": 0}
        run = await api.post("/v1/admin/reminders/run?as_of=2027-10-11", headers=PARTNER_AUTH)
        assert run.status_code == 403


async def test_webhook_targets_must_be_https_and_public_or_allowed_loopback(
    service: Service,
) -> None:
    service.partner_keys["key-nord"] = "P-NORD01"
    async with service.api() as api:
        for url, code in [
            ("http://hooks.partner.example/in", "webhook_url_not_https"),
            ("https://10.1.2.3/in", "webhook_url_not_public"),
            ("https://user:pw@hooks.partner.example/in", "webhook_url_invalid"),
        ]:
            answer = await api.put("/v1/partner/webhook", json={"url": url}, headers=PARTNER_AUTH)
            assert answer.status_code == 422, url
            assert answer.json()["error"] == {
                "code": code,
                "message": answer.json()["error"]["message"],
                "field": "url",
            }
        ok = await api.put(
            "/v1/partner/webhook", json={"url": "http://127.0.0.1:9/in"}, headers=PARTNER_AUTH
        )
        assert ok.status_code == 200 and ok.json()["secret"].startswith("whsec_")
        again = await api.put(
            "/v1/partner/webhook", json={"url": "http://127.0.0.1:9/in"}, headers=PARTNER_AUTH
        )
        assert again.json()["secret"] != ok.json()["secret"]
    client, db = service.db()
    try:
        stored = await db.webhooks.find_one({"_id": "P-NORD01"})
    finally:
        await client.close()
    assert stored["url"] == "http://127.0.0.1:9/in"
    assert again.json()["secret"] not in str(stored) and "whsec_" not in str(stored)


async def test_a_partner_reads_its_webhook_url_and_sends_a_signed_test_event(
    service: Service, receiver: Receiver
) -> None:
    service.partner_keys["key-nord"] = "P-NORD01"
    receiver.fail_first = 0  # a test event is not retried: the receiver works at once
    async with service.api() as api:
        unset = await api.post("/v1/partner/webhook/test", headers=PARTNER_AUTH)
        assert unset.status_code == 404 and unset.json()["error"]["code"] == "webhook_not_set"
        put = await api.put("/v1/partner/webhook", json={"url": receiver.url}, headers=PARTNER_AUTH)
        current = await api.get("/v1/partner/webhook", headers=PARTNER_AUTH)
        assert current.json()["url"] == receiver.url and "secret" not in current.json()
        sent = await api.post("/v1/partner/webhook/test", headers=PARTNER_AUTH)
        assert sent.status_code == 200 and sent.json()["delivered"] is True, sent.json()
        receiver.always_fail = True
        failed = await api.post("/v1/partner/webhook/test", headers=PARTNER_AUTH)
        assert failed.json() == {
            "delivered": False,
            "webhook_id": failed.json()["webhook_id"],
            "error": "webhook_http_503",
        }
    headers, body, status = receiver.requests[0]
    assert status == 204
    payload = Webhook(put.json()["secret"]).verify(body, headers)
    assert payload["type"] == "webhook.test"
    assert headers["webhook-id"] == sent.json()["webhook_id"]


async def test_a_rotated_key_keeps_old_secrets_readable_and_the_admin_rotation_reseals_them(
    service: Service, receiver: Receiver
) -> None:
    service.partner_keys["key-nord"] = "P-NORD01"
    receiver.fail_first = 0
    async with service.api() as api:  # sealed under the development key
        put = await api.put("/v1/partner/webhook", json={"url": receiver.url}, headers=PARTNER_AUTH)
    secret = put.json()["secret"]

    new_key = Fernet.generate_key().decode()
    old_keys = service.settings.webhook_secret_keys.get_secret_value()
    service.settings = service.settings.model_copy(
        update={"webhook_secret_keys": SecretStr(f"{new_key},{old_keys}")}
    )
    async with service.api() as api:
        # Before any rotation the old secret still signs (and is re-sealed on this use).
        sent = await api.post("/v1/partner/webhook/test", headers=PARTNER_AUTH)
        assert sent.json()["delivered"] is True, sent.json()
        refused = await api.post("/v1/admin/webhook-secrets/rotate", headers=PARTNER_AUTH)
        assert refused.status_code == 403
        rotated = await api.post("/v1/admin/webhook-secrets/rotate", headers=ADMIN_AUTH)
    # Re-sealed on use already: the admin pass finds it current.
    assert rotated.json() == {"resealed": 0, "current": 1, "unreadable": []}
    client, db = service.db()
    try:
        stored = await db.webhooks.find_one({"_id": "P-NORD01"})
        assert Fernet(new_key).decrypt(stored["secret"].encode()).decode() == secret
        # Another row still under the old key: the admin pass re-seals it.
        old_box = Fernet(old_keys.split(",")[0])
        await db.webhooks.insert_one(
            {"_id": "P-OTHER", "url": receiver.url, "secret": old_box.encrypt(b"whsec_x").decode()}
        )
        async with service.api() as api:
            again = await api.post("/v1/admin/webhook-secrets/rotate", headers=ADMIN_AUTH)
        assert again.json() == {"resealed": 1, "current": 1, "unreadable": []}
        other = await db.webhooks.find_one({"_id": "P-OTHER"})
        assert Fernet(new_key).decrypt(other["secret"].encode()) == b"whsec_x"
    finally:
        await client.close()

    # The old key dropped: every secret is still readable.
    service.settings = service.settings.model_copy(
        update={"webhook_secret_keys": SecretStr(new_key)}
    )
    async with service.api() as api:
        sent = await api.post("/v1/partner/webhook/test", headers=PARTNER_AUTH)
        assert sent.json()["delivered"] is True, sent.json()
    headers, body, _ = receiver.requests[-1]
    assert Webhook(secret).verify(body, headers)["type"] == "webhook.test"
