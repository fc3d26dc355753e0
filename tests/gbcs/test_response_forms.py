"""Responses the kit builds from RTDS commands, protected with the RTDS keys, are the RTDS bytes."""

from __future__ import annotations

from pathlib import Path

from gbcs.frame import decode, response_to
from gbcs.keys import FileKeyStore
from gbcs.rtds import RtdsVector
from gbcs.security import SecurityContext


def _vector(corpus: list[RtdsVector], name: str) -> bytes:
    (data,) = [v.data for v in corpus if v.name == f"{name}_GBCS.HEX"]
    return data


def test_response_to_a_command_with_a_certificate_drops_it(
    corpus: list[RtdsVector], rtds_root: Path
) -> None:
    """RTDS GCS61: the command's 424-byte other-information (party, counter, KA
    certificate) is answered with the 18-byte form, MAC'd by the GPF (CRIB §2.3)."""
    command = decode(_vector(corpus, "GCS61_4.17_SUCCESS_COMMAND"))
    expected = _vector(corpus, "GCS61_4.17_SUCCESS_RESPONSE")
    assert command.header.other_information.certificate is not None
    reference = decode(expected)
    ctx = SecurityContext(FileKeyStore(rtds_root / "keystore"))
    response = ctx.add_mac(response_to(command, reference.payload))
    assert len(response.header.other_information.encode()) == 18
    assert response.encode() == expected


def test_every_reference_mac_is_rebuilt_byte_for_byte(
    corpus: list[RtdsVector], rtds_root: Path
) -> None:
    """Each MAC'd RTDS message (commands, responses, alerts of every device, the
    18/26/424-byte other-information forms, dated responses), its MAC stripped and
    recomputed with the RTDS keys, is the RTDS bytes again (CRIB §3.2, §3.3)."""
    ctx = SecurityContext(FileKeyStore(rtds_root / "keystore"))
    rebuilt = skipped = 0
    for vector in corpus:
        message = decode(vector.data)
        if not message.has_mac:
            continue
        if vector.name.startswith(("PCS01_", "PCS02_")):  # device to device: no device keys
            skipped += 1
            continue
        assert ctx.add_mac(message.with_mac(None)).encode() == vector.data, vector.name
        rebuilt += 1
    assert (rebuilt, skipped) == (438, 4)
