"""Exact money arithmetic: the one rounding function and the minor-unit table.

Money crosses the suite as an integer count of minor units plus an ISO 4217
code (CONTRACT 1). Nothing here ever touches a float.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["MINOR_DIGITS", "is_currency", "round_half_even"]


def round_half_even(numerator: int, denominator: int) -> int:
    """Round the exact fraction ``numerator / denominator`` to the nearest integer.

    Ties go to the even neighbour (banker's rounding), symmetrically for
    negative values, so ``round_half_even(-x, d) == -round_half_even(x, d)``.
    Integers in, integer out: the caller never builds the quotient as a float,
    which would lose cents on large amounts.
    """
    # bool is an int subclass; a True slipping in as "1" would hide a bug.
    for name, value in (("numerator", numerator), ("denominator", denominator)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if denominator == 0:
        raise ZeroDivisionError("denominator must not be zero")
    if denominator < 0:
        numerator, denominator = -numerator, -denominator
    # floor division with denominator > 0 gives 0 <= remainder < denominator.
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        return quotient + 1
    return quotient


# ISO 4217 codes with a defined minor unit (List One). Codes whose minor unit is
# "N.A." (precious metals, XDR, test codes) are left out: nothing is sold in them.
# ANG and BGN stay for now because refunds of orders placed before their
# replacement (XCG, EUR) may still arrive.
def _codes(text: str) -> list[str]:
    return text.split()


_TABLE: dict[str, int] = {
    **dict.fromkeys(
        _codes(
            "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV"
            " BRL BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK"
            " DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL"
            " HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL"
            " MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO"
            " NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK"
            " SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS"
            " UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG"
        ),
        2,
    ),
    **dict.fromkeys(
        _codes("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"), 0
    ),
    **dict.fromkeys(_codes("BHD IQD JOD KWD LYD OMR TND"), 3),
    **dict.fromkeys(_codes("CLF UYW"), 4),
}

MINOR_DIGITS: Mapping[str, int] = MappingProxyType(dict(sorted(_TABLE.items())))
"""Number of decimal digits of the minor unit, per ISO 4217 alphabetic code."""


def is_currency(code: str) -> bool:
    """True when ``code`` is an upper-case ISO 4217 code listed in MINOR_DIGITS."""
    return code in MINOR_DIGITS
