"""Signed webhooks: Standard Webhooks signatures, an SSRF-safe HTTP client, sealed secrets.

The target's name is resolved and every address checked on each send, then
the request goes to the checked address (TLS still verifies the name), so a
name re-pointed inside the network between check and connect gets nowhere.
Redirects are not followed and at most `max_response_bytes` of an answer is read.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import secrets
import socket
from collections.abc import Sequence

import httpx
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from standardwebhooks.webhooks import Webhook

from services.notifications.domain.webhook_policy import (
    WebhookTarget,
    WebhookTargetRefused,
    check_addresses,
    parse_target,
)
from services.notifications.service_layer.ports import DeliveryError

SECRET_PREFIX = "whsec_"  # noqa: S105 (the scheme's prefix, not a secret)
USER_AGENT = "Channelkeep-Webhooks/1.0"


def new_signing_secret() -> str:
    """`whsec_` + base64 of 32 random bytes, the Standard Webhooks secret form."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, message_id: str, timestamp: dt.datetime, body: str) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` (the maintained reference library)."""
    return Webhook(secret).sign(message_id, timestamp.astimezone(dt.UTC), body)


def legacy_fernet(key_material: bytes) -> Fernet:
    """The key secrets were sealed under before WEBHOOK_SECRET_KEYS: a hash of settings.

    Kept to read (and re-seal) rows written by earlier releases; never used to seal.
    """
    digest = hashlib.sha256(b"channelkeep/webhook-secrets/v1\x00" + key_material).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


class FernetSecretBox:
    """Webhook secrets at rest: encrypted (AES + HMAC, Fernet) under WEBHOOK_SECRET_KEYS.

    The secret must be usable for signing, so it is encrypted rather than hashed. The
    first key seals; every key, and the legacy derived keys, open (MultiFernet), so a
    key is rotated by putting a new one first: old rows stay readable and are re-sealed
    under the new key when used (`reseal`) or by the admin rotation.
    """

    def __init__(self, keys: Sequence[str], legacy_key_material: Sequence[bytes] = ()) -> None:
        if not keys:
            raise ValueError("a webhook secret key is required")
        self._primary = Fernet(keys[0])
        legacy = [legacy_fernet(material) for material in legacy_key_material if material]
        self._any = MultiFernet([self._primary, *(Fernet(k) for k in keys[1:]), *legacy])

    def seal(self, plaintext: str) -> str:
        return self._primary.encrypt(plaintext.encode()).decode()

    def open(self, ciphertext: str) -> str:
        try:
            return self._any.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise DeliveryError("webhook_secret_unreadable", permanent=True) from None

    def reseal(self, ciphertext: str) -> str | None:
        """`ciphertext` sealed under the first key, or None when it already is."""
        try:
            self._primary.decrypt(ciphertext.encode())
            return None
        except InvalidToken:
            pass
        try:
            return self._any.rotate(ciphertext.encode()).decode()
        except InvalidToken:
            raise DeliveryError("webhook_secret_unreadable", permanent=True) from None


async def resolve(host: str, port: int) -> list[str]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (socket.gaierror, UnicodeError):
        return []
    return [str(info[4][0]) for info in infos]


class HttpWebhookSender:
    def __init__(
        self,
        *,
        timeout: float,
        max_response_bytes: int,
        allow_loopback: bool,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.allow_loopback = allow_loopback
        self.max_response_bytes = max_response_bytes
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            trust_env=False,  # no proxies from the environment: we pick the address
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=10),
        )

    async def target(self, url: str) -> tuple[WebhookTarget, str]:
        """The checked target and the address to connect to; DeliveryError when refused."""
        try:
            target = parse_target(url, allow_loopback=self.allow_loopback)
            addresses = check_addresses(target, await resolve(target.host, target.port))
        except WebhookTargetRefused as refused:
            permanent = refused.code != "webhook_unresolvable"
            raise DeliveryError(refused.code, permanent=permanent) from None
        return target, addresses[0]

    async def send(
        self, url: str, secret: str, message_id: str, timestamp: dt.datetime, body: str
    ) -> None:
        target, address = await self.target(url)
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": message_id,
            "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": sign(secret, message_id, timestamp, body),
        }
        request_url = httpx.URL(target.url)
        extensions = {}
        if address != target.host:
            shown = f"[{address}]" if ":" in address else address
            request_url = request_url.copy_with(host=shown.strip("[]"))
            headers["host"] = (
                target.host if request_url.port is None else f"{target.host}:{target.port}"
            )
            if target.scheme == "https":
                extensions["sni_hostname"] = target.host
        try:
            async with self._client.stream(
                "POST",
                request_url,
                content=body.encode("utf-8"),
                headers=headers,
                extensions=extensions,
            ) as response:
                received = 0
                async for chunk in response.aiter_raw():
                    received += len(chunk)
                    if received >= self.max_response_bytes:
                        break  # we only need the status; never buffer a large answer
                status = response.status_code
        except httpx.TimeoutException:
            raise DeliveryError("webhook_timeout") from None
        except httpx.HTTPError as error:
            raise DeliveryError(f"webhook_{type(error).__name__}") from None
        if not 200 <= status < 300:
            raise DeliveryError(f"webhook_http_{status}")

    async def close(self) -> None:
        await self._client.aclose()
