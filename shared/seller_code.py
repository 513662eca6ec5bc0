"""The seller-code codec: normalise, check and mint partner seller codes (CONTRACT 2.1).

A seller code is 8 Crockford base32 symbols shown as ``XXXX-XXXX``; the last is
a Damm-style check symbol over GF(32) (polynomial x^5 + x^2 + 1, multiplier x).
The check is linear: the final state is sum(x^(7-i) * d_i), so changing one
symbol by e != 0 changes it by x^k * e != 0, and swapping neighbours a != b
changes it by x^k * (x + 1) * (a + b) != 0. Both are therefore always caught,
and a checkout page can run the same check offline.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Protocol

__all__ = [
    "ALPHABET",
    "INPUT_PATTERN",
    "InvalidSellerCode",
    "RandomSource",
    "check_symbol",
    "format_code",
    "generate",
    "is_valid",
    "normalize",
    "validate",
]

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford base32: no I, L, O (read as 1, 1, 0) and no U."""

CODE_LENGTH = 8
BODY_LENGTH = CODE_LENGTH - 1

_VALUE = {symbol: value for value, symbol in enumerate(ALPHABET)}
# Crockford's reading of look-alike letters; applied after upper-casing.
_ALIASES = {"O": "0", "I": "1", "L": "1"}
_DROPPED = frozenset(" -")
_MODULUS = 0b100101  # x^5 + x^2 + 1

INPUT_PATTERN = r"^[ -]*(?:[0-9A-TV-Za-tv-z][ -]*){8}$"
"""What ``normalize`` accepts, as a regular expression: 8 symbols of the alphabet or
its aliases (any case; every ASCII letter but U), spaces and hyphens anywhere.

For JSON Schemas, which cannot run the check symbol: a text this rejects, ``validate``
rejects too.
"""


class InvalidSellerCode(ValueError):
    """The text is not a well-formed seller code or its check symbol is wrong."""


class RandomSource(Protocol):
    """What ``generate`` needs from its randomness: the ``secrets`` module fits."""

    def choice(self, seq: Sequence[str], /) -> str: ...


def _mul_x(state: int) -> int:
    state <<= 1
    if state & 0b100000:
        state ^= _MODULUS
    return state


def _checksum(values: Sequence[int]) -> int:
    state = 0
    for value in values:
        state = _mul_x(state) ^ value
    return state


def _symbols(code: str) -> str:
    """Upper-case, drop spaces and hyphens, map O/I/L; reject anything else."""
    if not isinstance(code, str):
        raise InvalidSellerCode(f"seller code must be text, got {type(code).__name__}")
    out: list[str] = []
    for char in code:
        if char in _DROPPED:
            continue
        # Only ASCII is upper-cased: str.upper() maps e.g. dotless i to "I".
        upper = char.upper() if char.isascii() else char
        upper = _ALIASES.get(upper, upper)
        if upper not in _VALUE:
            raise InvalidSellerCode(f"seller code contains an invalid character {char!r}")
        out.append(upper)
    return "".join(out)


def normalize(code: str) -> str:
    """Return the 8 bare symbols of ``code`` (check symbol not verified).

    Raises InvalidSellerCode on a character outside the alphabet (e.g. ``U``)
    or when there are not exactly 8 symbols.
    """
    symbols = _symbols(code)
    if len(symbols) != CODE_LENGTH:
        raise InvalidSellerCode(f"seller code must have {CODE_LENGTH} symbols, got {len(symbols)}")
    return symbols


def check_symbol(body: str) -> str:
    """The check symbol completing a 7-symbol body (normalised first)."""
    symbols = _symbols(body)
    if len(symbols) != BODY_LENGTH:
        raise InvalidSellerCode(
            f"seller code body must have {BODY_LENGTH} symbols, got {len(symbols)}"
        )
    return ALPHABET[_mul_x(_checksum([_VALUE[s] for s in symbols]))]


def format_code(code: str) -> str:
    """Show an 8-symbol code as ``XXXX-XXXX`` (normalised, check not verified)."""
    symbols = normalize(code)
    return f"{symbols[:4]}-{symbols[4:]}"


def validate(code: str) -> str:
    """Return ``code`` in its canonical ``XXXX-XXXX`` form, or raise InvalidSellerCode."""
    symbols = normalize(code)
    if _checksum([_VALUE[s] for s in symbols]) != 0:
        raise InvalidSellerCode("seller code check symbol does not match; check for a typo")
    return f"{symbols[:4]}-{symbols[4:]}"


def is_valid(code: str) -> bool:
    """True when ``code`` normalises to 8 symbols with a matching check symbol."""
    try:
        validate(code)
    except InvalidSellerCode:
        return False
    return True


def generate(rng: RandomSource = secrets) -> str:
    """Mint a random valid code, formatted ``XXXX-XXXX``.

    Uniqueness is the caller's job (registration retries on a collision);
    32^7 bodies make collisions rare but not impossible.
    """
    body = "".join(rng.choice(ALPHABET) for _ in range(BODY_LENGTH))
    return format_code(body + check_symbol(body))
