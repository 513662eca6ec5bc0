"""Who is calling, for per-client rate limits: the peer, or a trusted proxy's word for it.

CONTRACT 6.9: a client's address comes from the connection, or from
`X-Forwarded-For` only when the peer is one of `TRUSTED_PROXIES`. The header
is read from the right: each trusted proxy appended the address it saw, so the
rightmost address that is not itself a trusted proxy is the first one no proxy
of ours vouches for; everything to its left is whatever the client wrote.
uvicorn's own handling is off (chassis/run.py): it trusts 127.0.0.1 by default,
and takes the leftmost address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from starlette.requests import HTTPConnection

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

UNKNOWN = "unknown"


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """`10.0.0.1`, `10.0.0.0/8`, `fd00::/8`; a bad entry raises ValueError naming it."""
    networks: list[Network] = []
    for raw in values:
        value = raw.strip()
        if not value:
            continue
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or CIDR: {value!r}") from None
    return tuple(networks)


def _address(value: str) -> Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, proxies: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def client_address(
    peer: str | None, forwarded_for: Sequence[str], proxies: Sequence[Network]
) -> str:
    """The address a rate limit counts: see the module docstring."""
    if peer is None:
        return UNKNOWN
    current = _address(peer)
    if current is None or not proxies or not _trusted(current, proxies):
        return peer
    hops = [hop for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            # Garbage where an address should be: the proxy that wrote it is
            # the last one we can name.
            return str(current)
        current = address
        if not _trusted(address, proxies):
            return str(address)
    # Every hop is a proxy of ours (or there is no header): the leftmost one.
    return str(current)


def request_client(connection: HTTPConnection, proxies: Sequence[Network]) -> str:
    peer = connection.client.host if connection.client is not None else None
    return client_address(peer, connection.headers.getlist("x-forwarded-for"), proxies)
