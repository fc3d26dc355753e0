"""The block size the nodes fragment GBCS messages into fills a 127-byte PSDU, no more."""

from __future__ import annotations

import pytest

from emulators.node import MAX_BLOCK, MAX_GBCS_MESSAGE
from emulators.zigbee import air
from emulators.zigbee.air import NwkSecurity
from emulators.zigbee.aps import MAX_BLOCKS
from emulators.zigbee.mac import MAX_PSDU
from emulators.zigbee.tunnel import (
    MAX_TRANSFER_SIZE,
    TUNNELING_CLUSTER,
    TransferData,
    tunnel_frame,
)
from emulators.zigbee.zcl import Direction, encode_zcl
from gbcs.errors import EncodeError

SECURITY = NwkSecurity(bytes(16), 0, 0xFFFFFFFF, bytes.fromhex("00DB1234567890A0"))


def _psdu(block: int, index: int) -> bytes:
    frames = air.application_frames(
        bytes(3 * block), cluster_id=TUNNELING_CLUSTER, counter=9, max_block=block
    )
    return air.nwk_data(
        frames[index],
        mac_sequence=1,
        nwk_sequence=1,
        pan_id=0x1234,
        src=0x8DC4,
        dst=0x0000,
        security=SECURITY,
    )


@pytest.mark.parametrize("index", [0, 1])  # the first block carries the block count too
def test_a_full_block_fills_the_psdu(index: int) -> None:
    assert len(_psdu(MAX_BLOCK, index)) == MAX_PSDU


def test_one_byte_more_does_not_fit() -> None:
    with pytest.raises(EncodeError, match="exceeds aMaxPHYPacketSize"):
        _psdu(MAX_BLOCK + 1, 0)


def test_the_longest_transfer_fits_the_blocks_a_message_may_take() -> None:
    """A TransferData of the 1500 octets both ends advertise (GBCS 10.2.2), in its ZCL
    frame, fits in MAX_BLOCKS APS blocks; the longest GBCS message leaves room for a
    GET-RESPONSE's 2-byte tunnel header."""
    assert MAX_GBCS_MESSAGE == MAX_TRANSFER_SIZE - 2
    zcl = encode_zcl(
        tunnel_frame(
            TransferData(0xFFFF, bytes(MAX_TRANSFER_SIZE)),
            sequence=0,
            direction=Direction.TO_CLIENT,
            disable_default_response=True,
        )
    )
    assert len(zcl) <= MAX_BLOCKS * MAX_BLOCK
