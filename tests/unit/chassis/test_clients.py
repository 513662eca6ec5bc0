"""Client addresses for rate limits: the peer, or X-Forwarded-For from a trusted proxy."""

from __future__ import annotations

import pytest

from chassis.clients import client_address, parse_networks
from services.registration.config import Settings

PROXIES = parse_networks(["10.0.0.0/8", "192.0.2.1", "fd00::/8"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "proxies", "expected"),
    [
        # No trusted proxies (the default): the header is never read.
        ("203.0.113.9", ["198.51.100.1"], (), "203.0.113.9"),
        ("127.0.0.1", ["198.51.100.1"], (), "127.0.0.1"),
        # An untrusted peer: its header is its own word, ignored.
        ("203.0.113.9", ["198.51.100.1"], PROXIES, "203.0.113.9"),
        # A trusted peer: the rightmost address that is not a proxy of ours.
        ("10.1.2.3", ["198.51.100.1"], PROXIES, "198.51.100.1"),
        ("10.1.2.3", ["6.6.6.6, 198.51.100.1"], PROXIES, "198.51.100.1"),
        ("10.1.2.3", ["6.6.6.6, 198.51.100.1, 192.0.2.1"], PROXIES, "198.51.100.1"),
        ("10.1.2.3", ["6.6.6.6", "198.51.100.1, 10.9.9.9"], PROXIES, "198.51.100.1"),
        ("fd00::1", ["2001:db8::7"], PROXIES, "2001:db8::7"),
        ("10.1.2.3", ["198.51.100.1:4711"], PROXIES, "198.51.100.1"),
        ("10.1.2.3", ["[2001:db8::7]:4711"], PROXIES, "2001:db8::7"),
        # A trusted peer without a header, or with only our proxies in it.
        ("10.1.2.3", [], PROXIES, "10.1.2.3"),
        ("10.1.2.3", ["10.4.4.4"], PROXIES, "10.4.4.4"),
        # Garbage in the chain stops the walk at the last proxy we can name.
        ("10.1.2.3", ["198.51.100.1, not-an-ip"], PROXIES, "10.1.2.3"),
        ("10.1.2.3", ["not-an-ip, 10.4.4.4"], PROXIES, "10.4.4.4"),
        (None, ["198.51.100.1"], PROXIES, "unknown"),
    ],
)
def test_client_address(
    peer: str | None, forwarded: list[str], proxies: tuple[object, ...], expected: str
) -> None:
    assert client_address(peer, forwarded, proxies) == expected  # type: ignore[arg-type]


def test_rotating_forwarded_for_from_an_untrusted_peer_is_one_client() -> None:
    seen = {client_address("127.0.0.1", [f"198.51.100.{i}"], ()) for i in range(40)}
    assert seen == {"127.0.0.1"}


def test_trusted_proxies_setting_takes_a_comma_separated_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", "test-admin-token-123")
    monkeypatch.setenv("ENVIRONMENT", "dev")
    assert Settings().trusted_proxies == ()
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1,fd00::/8")
    assert Settings().trusted_proxies == PROXIES
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8,proxy.internal")
    with pytest.raises(ValueError, match=r"proxy\.internal"):
        Settings()
