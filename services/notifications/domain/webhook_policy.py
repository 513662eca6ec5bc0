"""Which webhook targets a partner may set, and which addresses we may connect to.

HTTPS to public addresses only; with loopback allowed (`./dev up`, tests), also
`http://127.0.0.1`. The address check runs again on every send, on the
addresses the name resolves to then, so a name that later points inside the
network is refused (SSRF).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
LOOPBACK_HOSTS = frozenset({"127.0.0.1"})


class WebhookTargetRefused(ValueError):
    """The URL or the address it resolves to may not be called; `code` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    url: str
    scheme: str
    host: str
    port: int
    loopback: bool


def parse_target(url: str, *, allow_loopback: bool) -> WebhookTarget:
    """Checks the URL's form; the resolved addresses are checked by `check_addresses`."""
    if len(url) > MAX_URL_LENGTH:
        raise WebhookTargetRefused("webhook_url_invalid", "url is too long")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise WebhookTargetRefused("webhook_url_invalid", "url is not a valid URL") from None
    host = (parts.hostname or "").lower()
    if not host or parts.scheme not in ("https", "http"):
        raise WebhookTargetRefused("webhook_url_invalid", "url must be an absolute https URL")
    if parts.username is not None or parts.password is not None:
        raise WebhookTargetRefused("webhook_url_invalid", "url must not carry credentials")
    if parts.fragment:
        raise WebhookTargetRefused("webhook_url_invalid", "url must not carry a fragment")
    loopback = allow_loopback and host in LOOPBACK_HOSTS
    if parts.scheme == "http" and not loopback:
        raise WebhookTargetRefused(
            "webhook_url_not_https", "url must be https (http only to 127.0.0.1 in development)"
        )
    literal = _ip_or_none(host)
    if literal is not None and not loopback and not is_public(literal):
        raise WebhookTargetRefused("webhook_url_not_public", "url must point to a public address")
    default_port = 443 if parts.scheme == "https" else 80
    return WebhookTarget(
        url=url.strip(),
        scheme=parts.scheme,
        host=host,
        port=port or default_port,
        loopback=loopback,
    )


def check_addresses(target: WebhookTarget, addresses: Iterable[str]) -> list[str]:
    """The addresses we may connect to; refused when any of them is not public.

    All must pass, not one: a name resolving to a public and a private address
    must not be a way in.
    """
    resolved = [a for a in dict.fromkeys(addresses)]
    if not resolved:
        raise WebhookTargetRefused("webhook_unresolvable", "the webhook host does not resolve")
    for address in resolved:
        ip = _ip_or_none(address)
        if ip is None:
            raise WebhookTargetRefused("webhook_url_not_public", "unexpected address form")
        if target.loopback and ip == ipaddress.ip_address("127.0.0.1"):
            continue
        if not is_public(ip):
            raise WebhookTargetRefused(
                "webhook_url_not_public", "the webhook host resolves to a non-public address"
            )
    return resolved


def is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return is_public(ip.ipv4_mapped)
    return ip.is_global and not ip.is_multicast


def _ip_or_none(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
