"""Webhook signing (Standard Webhooks), sealed secrets, target policy, tokens, backoff."""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest
from cryptography.fernet import Fernet
from standardwebhooks.webhooks import Webhook

from services.notifications.adapters.webhooks import FernetSecretBox, new_signing_secret, sign
from services.notifications.domain import unsubscribe
from services.notifications.domain.retry import RetryPolicy
from services.notifications.domain.webhook_policy import (
    WebhookTargetRefused,
    check_addresses,
    is_public,
    parse_target,
)
from services.notifications.service_layer.ports import DeliveryError


def test_signature_matches_the_specifications_example() -> None:
    # The example of the Standard Webhooks specification and its reference libraries.
    signature = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        dt.datetime.fromtimestamp(1614265330, dt.UTC),
        '{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_receiver_verifies_what_we_sign() -> None:
    secret = new_signing_secret()
    assert secret.startswith("whsec_") and len(secret) > 40
    now = dt.datetime.now(dt.UTC)
    body = '{"type":"commission_earned","data":{}}'
    headers = {
        "webhook-id": "n-1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": sign(secret, "n-1", now, body),
    }
    assert Webhook(secret).verify(body, headers) == {"type": "commission_earned", "data": {}}


def test_secrets_are_stored_sealed_and_open_only_with_the_key() -> None:
    box = FernetSecretBox([Fernet.generate_key().decode()])
    secret = new_signing_secret()
    sealed = box.seal(secret)
    assert secret not in sealed and box.open(sealed) == secret
    with pytest.raises(DeliveryError):
        FernetSecretBox([Fernet.generate_key().decode()]).open(sealed)


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://hooks.partner.example/in", "webhook_url_not_https"),
        ("http://127.0.0.1:9000/in", "webhook_url_not_https"),
        ("https://10.0.0.5/in", "webhook_url_not_public"),
        ("https://169.254.169.254/latest", "webhook_url_not_public"),
        ("https://[::ffff:10.0.0.1]/in", "webhook_url_not_public"),
        ("https://user:pw@hooks.partner.example/in", "webhook_url_invalid"),
        ("ftp://hooks.partner.example/in", "webhook_url_invalid"),
        ("not a url", "webhook_url_invalid"),
    ],
)
def test_production_refuses_anything_but_https_to_public_addresses(url: str, code: str) -> None:
    with pytest.raises(WebhookTargetRefused) as refused:
        parse_target(url, allow_loopback=False)
    assert refused.value.code == code


def test_loopback_is_allowed_only_when_configured() -> None:
    target = parse_target("http://127.0.0.1:9000/in", allow_loopback=True)
    assert target.loopback and target.port == 9000
    assert check_addresses(target, ["127.0.0.1"]) == ["127.0.0.1"]
    with pytest.raises(WebhookTargetRefused):
        parse_target("http://localhost:9000/in", allow_loopback=True)


def test_every_resolved_address_must_be_public() -> None:
    target = parse_target("https://hooks.partner.example/in", allow_loopback=False)
    assert check_addresses(target, ["93.184.216.34"]) == ["93.184.216.34"]
    for bad in (["93.184.216.34", "192.168.1.2"], ["127.0.0.1"], ["::1"], []):
        with pytest.raises(WebhookTargetRefused):
            check_addresses(target, bad)


def test_unsubscribe_tokens_cannot_be_forged_or_moved() -> None:
    token = unsubscribe.sign("contact-1", b"secret")
    assert unsubscribe.verify(token, b"secret") == "contact-1"
    assert unsubscribe.verify(token, b"other") is None
    forged = "contact-2." + token.split(".", 1)[1]
    assert unsubscribe.verify(forged, b"secret") is None
    assert unsubscribe.verify("garbage", b"secret") is None


def test_backoff_grows_exponentially_within_jitter_and_gives_up() -> None:
    policy = RetryPolicy(max_attempts=8, base_seconds=5, cap_seconds=600)
    assert policy.delay(1, 0.0) == dt.timedelta(seconds=2.5)
    assert policy.delay(1, 0.999).total_seconds() == pytest.approx(5, abs=0.01)
    assert policy.delay(3, 0.0) == dt.timedelta(seconds=10)
    assert policy.delay(20, 0.0) == dt.timedelta(seconds=300)
    assert not policy.gives_up_after(7) and policy.gives_up_after(8)


# IPv6 addresses that embed an IPv4 one are judged by the IPv4 inside (CONTRACT 6.9):
# each form once around the metadata address 169.254.169.254 and once around 8.8.8.8.
EMBEDDING_FORMS = [
    ("ipv4_mapped", "::ffff:a9fe:a9fe", "::ffff:808:808"),
    ("ipv4_compatible", "::a9fe:a9fe", "::808:808"),
    ("nat64_well_known", "64:ff9b::a9fe:a9fe", "64:ff9b::808:808"),
    ("nat64_well_known_dotted", "64:ff9b::169.254.169.254", "64:ff9b::8.8.8.8"),
    ("6to4", "2002:a9fe:a9fe::1", "2002:808:808::1"),
    # Teredo: server 65.54.227.120, client obfuscated (bits inverted) in the last 32 bits.
    (
        "teredo_client",
        "2001:0:4136:e378:8000:63bf:5601:5601",
        "2001:0:4136:e378:8000:63bf:f7f7:f7f7",
    ),
    ("teredo_server", "2001:0:a9fe:a9fe:8000:63bf:f7f7:f7f7", "2001:0:808:808:8000:63bf:f7f7:f7f7"),
]


@pytest.mark.parametrize(("form", "inner_private", "inner_public"), EMBEDDING_FORMS)
def test_ipv6_forms_are_judged_by_the_ipv4_they_embed(
    form: str, inner_private: str, inner_public: str
) -> None:
    assert not is_public(ipaddress.ip_address(inner_private)), form
    assert is_public(ipaddress.ip_address(inner_public)), form
    with pytest.raises(WebhookTargetRefused):
        parse_target(f"https://[{inner_private}]/hook", allow_loopback=False)
    assert parse_target(f"https://[{inner_public}]/hook", allow_loopback=False).host
    target = parse_target("https://hooks.partner.example/in", allow_loopback=False)
    with pytest.raises(WebhookTargetRefused):
        check_addresses(target, [inner_private])
    assert check_addresses(target, [inner_public]) == [inner_public]


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b:1::808:808",  # NAT64 local use (RFC 8215): private whatever it embeds
        "64:ff9b:1:808:8:800::",
        "::ffff:127.0.0.1",
        "::7f00:1",
        "2002:7f00:1::1",
        "2002:a00:1::1",
        "2001:0:808:808:8000:63bf:80ff:fffe",  # Teredo client 127.0.0.1
    ],
)
def test_every_private_ipv4_behind_an_ipv6_prefix_is_refused(address: str) -> None:
    target = parse_target("https://hooks.partner.example/in", allow_loopback=False)
    with pytest.raises(WebhookTargetRefused):
        check_addresses(target, [address])
    with pytest.raises(WebhookTargetRefused):
        parse_target(f"https://[{address}]/", allow_loopback=False)
