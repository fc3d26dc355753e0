"""The catalogue's ``critical`` flag agrees with how the RTDS authorises each command."""

from __future__ import annotations

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
