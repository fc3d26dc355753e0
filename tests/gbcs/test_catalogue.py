"""The catalogue's ``critical`` flag agrees with how the RTDS authorises each command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gbcs.catalogue import CATALOGUE
from gbcs.frame import CraFlag, decode
from gbcs.rtds import RtdsVector


def test_critical_matches_the_rtds_success_commands(corpus: list[RtdsVector]) -> None:
    """Signed and MAC'd SUCCESS command: critical. MAC-only: not, unless the answer is signed.

    That exception is the ACB's own credential update (CS02b accessControlBrokerByACB),
    authorised by the ACB's MAC, whose response is still signed. Signed-only commands
    (General Signing, no MAC: the CS02aSignature/CS02fSignature reads) are another way
    to authorise a read and say nothing about criticality.
    """
    responses = {}
    commands = []
    for vector in corpus:
        if "SUCCESS" not in vector.name:
            continue
        message = decode(vector.data)
        stem = vector.name.split("_SUCCESS")[0]
        if message.cra_flag is CraFlag.RESPONSE:
            responses[stem] = message
        elif message.cra_flag is CraFlag.COMMAND and message.has_mac:
            commands.append((stem, message))
    checked = []
    for stem, command in commands:
        use_case = CATALOGUE.get(command.message_code)
        if use_case is None or use_case.critical is None:
            continue
        response = responses.get(stem)
        signed_answer = response is not None and bool(response.signature)
        expected = bool(command.signature) or signed_answer
        assert use_case.critical is expected, (stem, use_case)
        checked.append(use_case.use_case)
    assert {"CS02a", "CS02f", "CS02b", "CCS01", "CS03A1"} <= set(checked)


def test_codes_and_names_agree_with_the_crib_and_presence_with_the_rtds(
    rtds_root: Path, corpus: list[RtdsVector]
) -> None:
    """CRIB §7's table: every single code is catalogued under its use case; ``in_rtds`` says
    whether the RTDS subset beside the kit has a message with that code (the CRIB's ``*``
    marks the full RTDS 4.5.0, which has 92 codes more)."""
    crib = rtds_root.parent / "GBCS-CRIB.md"
    if not crib.is_file():
        pytest.skip(f"{crib} is not beside the RTDS")
    rows = re.findall(r"^\| ([0-9A-F]{4})\*? \| ([^|]+) \|", crib.read_text(), re.MULTILINE)
    assert len(rows) > 200
    present = {decode(vector.data).message_code for vector in corpus}
    for code, use_case in rows:
        entry = CATALOGUE.get(int(code, 16))
        assert entry is not None, code
        name = use_case.strip().strip("()")
        if name == "\u2013":  # no use-case name (alert-only codes): the kit names it by its code
            name = f"ALERT-{code}"
        assert name in entry.use_case or entry.use_case in use_case, (code, use_case, entry)
        assert entry.in_rtds is (entry.message_code in present), entry
