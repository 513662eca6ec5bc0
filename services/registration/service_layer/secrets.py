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
CONTACT_TOKEN_PREFIX = "ckc_"  # noqa: S105 - a prefix, not a secret
SIGN_IN_TOKEN_PREFIX = "cki_"  # noqa: S105 - a prefix, not a secret
CUSTOMER_SESSION_PREFIX = "cks_"


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def new_registration_token() -> str:
    return REGISTRATION_TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_contact_token() -> str:
    """The one-time link that confirms a new customer contact (CONTRACT 6.9)."""
    return CONTACT_TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_sign_in_token() -> str:
    """A customer's one-time sign-in link (CONTRACT 6.2)."""
    return SIGN_IN_TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_customer_session_token() -> str:
    return CUSTOMER_SESSION_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret).encode(), stored_hash.encode())


def new_partner_id() -> str:
    # Random, not sequential: a partner id reveals nothing about how many there are.
    return "P-" + secrets.token_hex(6).upper()


def new_key_id() -> str:
    """A partner key's public id (CONTRACT 6.7): names the key, reveals nothing of it."""
    return "K-" + secrets.token_hex(6).upper()
