"""Install codes and the trust-centre link key derived from them.

GBCS carries a device's 16-byte install code without a CRC; ZigBee (spec
annex F / SE 1.x 5.4.8.1) appends a CRC-16/X.25, little-endian, and the
preconfigured trust-centre link key is the AES-MMO hash (spec B.6) of code
plus CRC. zigpy already implements both (``CrcX25``, ``aes_mmo_hash``), so this
module only adapts GBCS's CRC-less form to them: one CRC, checked or appended,
then the hash (zigpy's ``convert_install_code`` would compute the CRC again).

Published test vector: code ``83FED3407A939723A5C639B26916D505``, CRC ``C3B5``,
link key ``66B6900981E1EE3CA4206B6B861C02BB``.
"""

from __future__ import annotations

import re

from zigpy.util import CrcX25, aes_mmo_hash

from gbcs.errors import DecodeError

__all__ = [
    "INSTALL_CODE_LENGTH",
    "install_code_crc",
    "link_key_from_install_code",
    "parse_install_code",
]

LAYER = "install code"
INSTALL_CODE_LENGTH = 16  # the length GBCS uses; ZigBee also allows 6, 8 and 12
_SEPARATORS = re.compile(r"[\s:\-]")


def _check_length(code: bytes, allowed: tuple[int, ...]) -> None:
    if len(code) not in allowed:
        wanted = " or ".join(str(n) for n in allowed)
        raise DecodeError(LAYER, "length", 0, f"{len(code)} bytes, expected {wanted}")


def install_code_crc(code: bytes) -> bytes:
    """The two CRC bytes ZigBee appends to a 16-byte install code (CRC-16/X.25, LE)."""
    _check_length(code, (INSTALL_CODE_LENGTH,))
    crc = CrcX25()
    crc.process(bytes(code))
    return bytes(crc.finalbytes(byteorder="little"))


def link_key_from_install_code(code: bytes) -> bytes:
    """The 16-byte trust-centre link key for a GBCS install code.

    Accepts the 16-byte code as GBCS carries it, or 18 bytes of code plus CRC,
    whose CRC is checked.
    """
    _check_length(code, (INSTALL_CODE_LENGTH, INSTALL_CODE_LENGTH + 2))
    crc = install_code_crc(code[:INSTALL_CODE_LENGTH])
    if len(code) == INSTALL_CODE_LENGTH:
        code = bytes(code) + crc
    elif code[INSTALL_CODE_LENGTH:] != crc:
        raise DecodeError(
            LAYER,
            "crc",
            INSTALL_CODE_LENGTH,
            f"CRC is {code[INSTALL_CODE_LENGTH:].hex().upper()}, expected {crc.hex().upper()}",
        )
    return bytes(aes_mmo_hash(bytes(code)))


def parse_install_code(text: str) -> bytes:
    """Install code bytes from hex text; spaces, dashes and colons between digits are ignored.

    Returns 16 bytes, or 18 when the text carries the CRC (which is then checked).
    """
    digits = _SEPARATORS.sub("", text)
    for i, ch in enumerate(digits):
        if ch not in "0123456789abcdefABCDEF":
            raise DecodeError(LAYER, "hex digit", i // 2, f"{ch!r} is not a hex digit")
    if len(digits) % 2:
        raise DecodeError(LAYER, "length", len(digits) // 2, "odd number of hex digits")
    code = bytes.fromhex(digits)
    if len(code) == INSTALL_CODE_LENGTH + 2:
        link_key_from_install_code(code)  # checks the CRC
    else:
        _check_length(code, (INSTALL_CODE_LENGTH, INSTALL_CODE_LENGTH + 2))
    return code
