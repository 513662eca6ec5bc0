"""Signed unsubscribe tokens: `<contact_id>.<signature>`, HMAC-SHA256 under a server secret.

The token names the contact by its opaque id (never the address) and cannot be
forged or moved to another contact without the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

_PURPOSE = b"channelkeep/unsubscribe/v1\x00"


def _signature(contact_id: str, secret: bytes) -> str:
    digest = hmac.new(secret, _PURPOSE + contact_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign(contact_id: str, secret: bytes) -> str:
    if not secret:
        raise ValueError("an unsubscribe secret is required")
    return f"{contact_id}.{_signature(contact_id, secret)}"


def verify(token: str, secret: bytes) -> str | None:
    """The contact id a valid token stands for, or None."""
    contact_id, dot, signature = token.rpartition(".")
    if not dot or not contact_id or len(token) > 200:
        return None
    if not hmac.compare_digest(signature.encode(), _signature(contact_id, secret).encode()):
        return None
    return contact_id
