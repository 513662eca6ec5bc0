"""Request bounds (CONTRACT 6.9): dates, instants, amounts, names; and CSV cells."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from chassis.bounds import AmountMinor, BoundedDate, BoundedInstant, forbidden_character
from chassis.spreadsheets import neutralise, to_csv
from services.registration.entrypoints.schemas import CustomerIn, PartnerCreate


class Body(BaseModel):
    day: BoundedDate | None = None
    at: BoundedInstant | None = None
    amount: AmountMinor | None = None


@pytest.mark.parametrize(
    ("field", "value", "ok"),
    [
        ("day", "2000-01-01", True),
        ("day", "2199-12-31", True),
        ("day", "1999-12-31", False),
        ("day", "2200-01-01", False),
        ("day", "9999-12-31", False),
        ("day", "0999-01-01", False),
        ("at", "2000-01-01T00:00:00Z", True),
        ("at", "2199-12-31T23:59:59.999Z", True),
        ("at", "2199-12-31T23:00:00-05:00", False),  # 2200-01-01 in UTC
        ("at", "2000-01-01T00:30:00+01:00", False),  # 1999-12-31 in UTC
        ("at", "9999-12-31T23:59:59Z", False),
        ("amount", 0, True),
        ("amount", 10**15, True),
        ("amount", 10**15 + 1, False),
        ("amount", -1, False),
        ("amount", 1.5, False),
        ("amount", "100", False),
    ],
)
def test_bounds(field: str, value: object, ok: bool) -> None:
    if ok:
        Body.model_validate({field: value})
    else:
        with pytest.raises(ValidationError) as error:
            Body.model_validate({field: value})
        assert error.value.errors()[0]["loc"] == (field,)


@pytest.mark.parametrize(
    "name",
    [
        "Nordlicht\u202eTI",  # right-to-left override
        "Nord\u200blicht",  # zero-width space
        "Nord\u200dlicht",  # zero-width joiner
        "Nord\u2066licht\u2069",  # isolates
        "Nord\u200flicht",  # right-to-left mark
        "Nord\ufefflicht",  # BOM / zero-width no-break space
        "Nord\u2060licht",  # word joiner
        "Nord\x00licht",
        "Nord\x1blicht",
        "Nord\nlicht",
        "Nord\u2028licht",
        "Nord\u00adlicht",  # soft hyphen
    ],
)
def test_names_refuse_control_bidi_and_zero_width_characters(name: str) -> None:
    assert forbidden_character(name) is not None
    for field in ("display_name", "legal_name"):
        body = {
            "display_name": "Nordlicht IT",
            "legal_name": "Nordlicht IT GmbH",
            "type": "var",
            "tier": "gold",
            "contact_email": "p@nordlicht.example",
            field: name,
        }
        with pytest.raises(ValidationError) as error:
            PartnerCreate.model_validate(body)
        assert error.value.errors()[0]["loc"] == (field,)
    with pytest.raises(ValidationError):
        CustomerIn.model_validate(
            {"org_name": name, "contact_name": "J", "email": "j@x.example", "country": "DE"}
        )


@pytest.mark.parametrize(
    "name", ["Müller Logistik GmbH", "Ørsted & Søn", "株式会社テスト", "O'Neil-Smith"]
)
def test_ordinary_names_pass(name: str) -> None:
    assert forbidden_character(name) is None


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ("=1+1", "'=1+1"),
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+SUM(A1)", "'+SUM(A1)"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("-150", "-150"),
        ("+150", "+150"),
        ("-1.5", "-1.5"),
        ("18519", "18519"),
        ("", ""),
        ("WEB-1", "WEB-1"),
        ("2027-01-05T10:00:00Z", "2027-01-05T10:00:00Z"),
    ],
)
def test_csv_cells_are_neutralised_except_numbers(cell: str, written: str) -> None:
    assert neutralise(cell) == written


@given(st.text(max_size=30))
def test_no_csv_cell_starts_a_formula_unless_it_is_a_number(cell: str) -> None:
    out = neutralise(cell)
    if out.startswith(("=", "+", "-", "@", "\t", "\r")):
        float(out)  # only a number may
    assert out in (cell, "'" + cell)


def test_to_csv_neutralises_every_row() -> None:
    text = to_csv(("a", "b"), [("=x", "-5"), ("ok", "@y")])
    assert text == "a,b\r\n'=x,-5\r\nok,'@y\r\n"


def test_bounded_date_rejects_before_any_arithmetic() -> None:
    assert Body.model_validate({"day": "2199-12-31"}).day == dt.date(2199, 12, 31)
