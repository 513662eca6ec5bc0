"""Secrets we hand out once and keep only as hashes: partner API keys, registration tokens.

Both are 32 random bytes (URL-safe base64), so a fast SHA-256 is enough to store
them (no dictionary to attack) and lets a key be found by its hash in one
indexed read; the final comparison is constant-time anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

API_KEY_PREFIX = "ckp_"
REGISTRATION_TOKEN_PREFIX = "ckr_"  # noqa: S105 - a prefix, not a secret


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def new_registration_token() -> str:
    return REGISTRATION_TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret).encode(), stored_hash.encode())


def new_partner_id() -> str:
    # Random, not sequential: a partner id reveals nothing about how many there are.
    return "P-" + secrets.token_hex(6).upper()


def key_id(api_key: str) -> str:
    """A stable, public id of a partner key for audit entries: never the key, nor its full hash.

    Until partners hold several named keys (CONTRACT 6.7) this is derived from the
    key's hash, so the same key always shows as the same id.
    """
    return "key_" + hash_secret(api_key)[:16]
