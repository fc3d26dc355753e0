"""Install codes: the published ZigBee test vector and the errors for bad input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulators.zigbee.install_code import (
    install_code_crc,
    link_key_from_install_code,
    parse_install_code,
)
from gbcs.errors import DecodeError

CODE = bytes.fromhex("83FED3407A939723A5C639B26916D505")
CRC = bytes.fromhex("C3B5")
LINK_KEY = bytes.fromhex("66B6900981E1EE3CA4206B6B861C02BB")


def test_published_vector_crc() -> None:
    assert install_code_crc(CODE) == CRC


def test_published_vector_link_key_from_gbcs_form() -> None:
    assert link_key_from_install_code(CODE) == LINK_KEY


def test_published_vector_link_key_with_crc() -> None:
    assert link_key_from_install_code(CODE + CRC) == LINK_KEY


def test_bad_crc_names_both_values() -> None:
    with pytest.raises(DecodeError) as info:
        link_key_from_install_code(CODE + b"\xb5\xc3")
    assert info.value.field == "crc"
    assert info.value.offset == 16
    assert "B5C3" in info.value.reason and "C3B5" in info.value.reason


@pytest.mark.parametrize("length", [0, 6, 8, 12, 15, 17, 19])
def test_wrong_length(length: int) -> None:
    with pytest.raises(DecodeError) as info:
        link_key_from_install_code(bytes(length))
    assert info.value.field == "length"
    assert str(length) in info.value.reason


def test_crc_needs_sixteen_bytes() -> None:
    with pytest.raises(DecodeError, match="length"):
        install_code_crc(CODE[:-1])


@pytest.mark.parametrize(
    "text",
    [
        "83FED3407A939723A5C639B26916D505",
        "83 FE D3 40 7A 93 97 23 A5 C6 39 B2 69 16 D5 05",
        "83fe-d340-7a93-9723-a5c6-39b2-6916-d505",
        "83:FE:D3:40:7A:93:97:23:A5:C6:39:B2:69:16:D5:05",
    ],
)
def test_parse_tolerates_separators(text: str) -> None:
    assert parse_install_code(text) == CODE


def test_parse_with_crc_checks_it() -> None:
    assert parse_install_code("83FED3407A939723A5C639B26916D505 C3B5") == CODE + CRC
    with pytest.raises(DecodeError, match="crc"):
        parse_install_code("83FED3407A939723A5C639B26916D505 C3B6")


def test_parse_names_the_bad_digit() -> None:
    with pytest.raises(DecodeError) as info:
        parse_install_code("83FED3407A939723A5C639B26916D5G5")
    assert info.value.field == "hex digit"
    assert "'G'" in info.value.reason
    assert info.value.offset == 15


def test_parse_odd_digits_and_short_code() -> None:
    with pytest.raises(DecodeError, match="odd"):
        parse_install_code("83F")
    with pytest.raises(DecodeError, match="length"):
        parse_install_code("83FE")


@given(st.binary(min_size=16, max_size=16))
def test_crc_appended_code_always_verifies(code: bytes) -> None:
    assert link_key_from_install_code(code + install_code_crc(code)) == (
        link_key_from_install_code(code)
    )
