"""The seller-code codec: the contract example, normalisation and error-detection properties."""

from __future__ import annotations

import random
import secrets

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.seller_code import (
    ALPHABET,
    InvalidSellerCode,
    check_symbol,
    format_code,
    generate,
    is_valid,
    normalize,
    validate,
)

pytestmark = pytest.mark.unit

bodies = st.text(alphabet=ALPHABET, min_size=7, max_size=7)
codes = bodies.map(lambda body: body + check_symbol(body))

# A fixed sample for the exhaustive test: the contract's example and a spread
# of bodies, including the all-zero and all-Z extremes.
SAMPLE_BODIES = ["7K3M9QX", "0000000", "ZZZZZZZ", "D15TR1B", "4CME5EC", "A1B2C3D", "QRSTVWX"]


def test_contract_example() -> None:
    assert check_symbol("7K3M9QX") == "F"
    assert validate("7K3M9QXF") == "7K3M-9QXF"
    assert is_valid("7K3M-9QXF")
    assert format_code("7K3M9QXF") == "7K3M-9QXF"


@pytest.mark.parametrize(
    "typed",
    ["7k3m-9qxf", " 7K3M 9QXF ", "7K3M--9QXF", "7k3m9qxf", "7K3M-9QXF"],
)
def test_normalisation_of_spacing_and_case(typed: str) -> None:
    assert normalize(typed) == "7K3M9QXF"
    assert validate(typed) == "7K3M-9QXF"


def test_look_alike_letters_are_read_as_digits() -> None:
    # O reads as 0 and I/L as 1, so a code with 0 and 1 survives a misreading.
    code = "10" + "A0B1C"
    full = code + check_symbol(code)
    assert is_valid(full.replace("0", "O").replace("1", "I"))
    assert is_valid(full.replace("0", "o").replace("1", "l"))
    assert validate(full.replace("1", "L")) == format_code(full)


@pytest.mark.parametrize(
    "bad", ["7K3U-9QXF", "7K3M-9QX!", "7K3M_9QXF", "7K3M-9QX\u0131", "7K3M\t9QXF"]
)
def test_rejects_foreign_characters(bad: str) -> None:
    with pytest.raises(InvalidSellerCode, match="invalid character"):
        normalize(bad)
    assert not is_valid(bad)


@pytest.mark.parametrize("bad", ["", "7K3M-9QX", "7K3M-9QXFF", "----"])
def test_rejects_wrong_length(bad: str) -> None:
    with pytest.raises(InvalidSellerCode, match="8 symbols"):
        validate(bad)


def test_rejects_wrong_check_symbol() -> None:
    with pytest.raises(InvalidSellerCode, match="check symbol"):
        validate("7K3M-9QXE")


def test_check_symbol_needs_seven_symbols() -> None:
    with pytest.raises(InvalidSellerCode, match="7 symbols"):
        check_symbol("7K3M9Q")


def test_invalid_seller_code_is_a_value_error() -> None:
    assert issubclass(InvalidSellerCode, ValueError)


@pytest.mark.parametrize("body", SAMPLE_BODIES)
def test_every_single_substitution_is_rejected_exhaustively(body: str) -> None:
    code = body + check_symbol(body)
    assert is_valid(code)
    for position in range(8):
        for symbol in ALPHABET:
            if symbol == code[position]:
                continue
            typo = code[:position] + symbol + code[position + 1 :]
            assert not is_valid(typo), typo


@pytest.mark.parametrize("body", SAMPLE_BODIES)
def test_every_adjacent_swap_is_rejected_exhaustively(body: str) -> None:
    code = body + check_symbol(body)
    for position in range(7):
        a, b = code[position], code[position + 1]
        if a != b:
            assert not is_valid(code[:position] + b + a + code[position + 2 :])


@given(codes, st.integers(0, 7), st.sampled_from(ALPHABET))
def test_single_substitution_is_rejected(code: str, position: int, symbol: str) -> None:
    typo = code[:position] + symbol + code[position + 1 :]
    assert is_valid(typo) == (typo == code)


@given(codes, st.integers(0, 6))
def test_adjacent_swap_is_rejected(code: str, position: int) -> None:
    swapped = code[:position] + code[position + 1] + code[position] + code[position + 2 :]
    assert is_valid(swapped) == (swapped == code)


@given(codes, st.booleans(), st.booleans())
def test_normalisation_round_trips(code: str, lower: bool, spaced: bool) -> None:
    shown = format_code(code)
    assert shown == f"{code[:4]}-{code[4:]}"
    typed = shown.lower() if lower else shown
    typed = typed.replace("-", " ") if spaced else typed
    assert normalize(typed) == code
    assert validate(typed) == shown
    assert normalize(validate(typed)) == code


@given(st.randoms(use_true_random=False))
def test_generated_codes_are_valid(rng: random.Random) -> None:
    code = generate(rng)
    assert len(code) == 9 and code[4] == "-"
    assert validate(code) == code


def test_generate_defaults_to_secrets() -> None:
    generated = {generate() for _ in range(50)}
    assert all(is_valid(code) for code in generated)
    assert len(generated) > 1
    assert validate(generate(secrets)) is not None
