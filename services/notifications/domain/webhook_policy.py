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


NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")
SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
TEREDO = ipaddress.IPv6Network("2001::/32")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address] | None:
    """The IPv4 addresses an IPv6 address leads to, or None when it embeds none.

    `ip.is_global` judges these by their IPv6 prefix (NAT64 `64:ff9b::/96` and
    `::a.b.c.d` count as public) while a packet to them reaches the IPv4 inside:
    `64:ff9b::a9fe:a9fe` is 169.254.169.254 behind a NAT64 gateway.
    """
    if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d
        return [ip.ipv4_mapped]
    if ip in NAT64_WELL_KNOWN:  # RFC 6052: the last 32 bits
        return [ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)]
    if ip in NAT64_LOCAL_USE:  # RFC 6052 /48 layout: bits 48-63 and 72-87
        packed = ip.packed
        return [ipaddress.IPv4Address(packed[6:8] + packed[9:11])]
    if ip.sixtofour is not None:  # 2002:AABB:CCDD::/48
        return [ip.sixtofour]
    if ip.teredo is not None:  # (server, client), the client de-obfuscated
        return list(ip.teredo)
    if int(ip) >> 32 == 0 and int(ip) > 1:  # IPv4-compatible ::a.b.c.d (deprecated)
        return [ipaddress.IPv4Address(int(ip))]
    return None


def is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A public unicast address, judged by the IPv4 inside when it embeds one.

    The NAT64 local-use prefix (RFC 8215) only ever leads into a private
    network, so it is refused whatever it embeds.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in NAT64_LOCAL_USE:
            return False
        embedded = embedded_ipv4(ip)
        if embedded is not None:
            return all(is_public(inner) for inner in embedded)
    return ip.is_global and not ip.is_multicast


def _ip_or_none(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
