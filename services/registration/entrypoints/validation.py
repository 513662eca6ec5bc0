"""Input checks the contract's types leave loose: ISO 3166-1 country codes, URLs, phones."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, EmailStr, Field, StringConstraints
from pydantic_core import PydanticCustomError

from chassis.bounds import CleanText

# ISO 3166-1 alpha-2, officially assigned codes.
_COUNTRY_CODES = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS YE YT ZA ZM ZW
"""
ISO_COUNTRIES = frozenset(_COUNTRY_CODES.split())


def _country(code: str) -> str:
    if code not in ISO_COUNTRIES:
        raise PydanticCustomError(
            "country", "{code} is not an ISO 3166-1 alpha-2 country code", {"code": code}
        )
    return code


Country = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{2}$"),
    AfterValidator(_country),
    Field(description="ISO 3166-1 alpha-2, upper case", examples=["DE"]),
]
Email = Annotated[EmailStr, Field(max_length=320)]
# CONTRACT 6.9: display, legal, organisation and contact names carry no control,
# bidirectional or zero-width character.
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), CleanText
]
Identifier = Annotated[
    str,
    StringConstraints(pattern=r"^[\x21-\x7e]{1,100}$"),
    Field(description="printable ASCII without spaces, 1-100 characters"),
]
Url = Annotated[str, StringConstraints(pattern=r"^https?://[^\s]{1,2040}$", max_length=2048)]
Color = Annotated[str, StringConstraints(pattern=r"^#[0-9A-Fa-f]{6}$")]
Phone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 ()./-]{2,39}$")]
SellerCodeText = Annotated[
    str,
    StringConstraints(max_length=20),
    Field(description="XXXX-XXXX; case, spaces and hyphens do not matter", examples=["7K3M-9QXF"]),
]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
