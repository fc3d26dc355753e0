"""The block size the nodes fragment GBCS messages into fills a 127-byte PSDU, no more."""

from __future__ import annotations

import pytest

from emulators.node import MAX_BLOCK
from emulators.zigbee import air
from emulators.zigbee.air import NwkSecurity
from emulators.zigbee.mac import MAX_PSDU
from emulators.zigbee.tunnel import TUNNELING_CLUSTER
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
