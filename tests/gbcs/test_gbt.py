from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gbcs.errors import DecodeError, EncodeError, GbtError
from gbcs.frame import CraFlag
from gbcs.gbt import GbtBlock, RoutingHeader, decode_block, missing_blocks, reassemble, split
from tests.gbcs.strategies import ids, u64

routings = st.builds(
    RoutingHeader,
    cra_flag=st.sampled_from(list(CraFlag)),
    originator_counter=u64,
    business_originator=ids,
    business_target=ids,
    message_code=st.integers(0, 0xFFFF),
)
blocks = st.builds(
    GbtBlock,
    routing=routings,
    block_number=st.integers(0, 0xFFFF),
    data=st.binary(max_size=300),
    last=st.booleans(),
    streaming=st.booleans(),
    window=st.integers(0, 63),
    block_number_ack=st.integers(0, 0xFFFF),
    security_control=st.integers(0, 255),
    invocation_counter=st.integers(0, 2**32 - 1),
)
ROUTING = RoutingHeader(
    CraFlag.RESPONSE,
    0x516,
    bytes.fromhex("00DB1234567890A2"),
    bytes.fromhex("90B3D51F30000002"),
    0x00FE,
)


@given(blocks)
def test_block_roundtrip(block: GbtBlock) -> None:
    wire = block.encode()
    assert decode_block(wire) == block
    assert decode_block(wire).encode() == wire


def test_block_layout() -> None:
    wire = GbtBlock(ROUTING, 1, b"\xaa\xbb", last=False, window=1).encode()
    assert wire.hex().upper() == (
        "DD09020000000000000516"
        "0800DB1234567890A2"
        "0890B3D51F30000002"
        "00"
        "0200FE"
        "00"
        "0E"
        "0000000000"
        "E0"
        "01"
        "0001"
        "0000"
        "02AABB"
    )


@given(st.binary(min_size=1, max_size=2000), st.integers(1, 300), st.randoms())
def test_split_shuffle_duplicate_reassemble(message: bytes, size: int, rnd: random.Random) -> None:
    parts = split(message, ROUTING, size)
    assert parts[-1].last and not any(b.last for b in parts[:-1])
    received = parts + rnd.sample(parts, k=min(len(parts), 3))
    rnd.shuffle(received)
    wires = [decode_block(b.encode()) for b in received]
    assert reassemble(wires) == message


def test_missing_blocks_reported() -> None:
    parts = split(bytes(range(50)), ROUTING, 10)
    with pytest.raises(GbtError) as info:
        reassemble([parts[0], parts[2], parts[4]])
    assert info.value.missing == (2, 4)
    assert missing_blocks(parts[:2]) == (3,)
    with pytest.raises(GbtError, match=r"missing blocks \[3\]"):
        reassemble(parts[:2])


@given(st.binary(min_size=1, max_size=200), st.integers(1, 50), st.randoms())
def test_missing_blocks_takes_a_one_shot_iterator(
    message: bytes, size: int, rnd: random.Random
) -> None:
    """The blocks are read twice; a generator must not look empty the second time."""
    parts = split(message, ROUTING, size)
    received = rnd.sample(parts, k=rnd.randint(0, len(parts)))
    assert missing_blocks(b for b in received) == missing_blocks(received)
    assert missing_blocks(iter(parts)) == ()


def test_inconsistent_blocks_rejected() -> None:
    parts = split(bytes(range(30)), ROUTING, 10)
    other = GbtBlock(ROUTING, 2, b"different", last=False)
    with pytest.raises(GbtError, match="different contents"):
        reassemble([*parts, other])
    stranger = GbtBlock(
        RoutingHeader(
            CraFlag.RESPONSE, 0x517, ROUTING.business_originator, ROUTING.business_target, 0x00FE
        ),
        2,
        parts[1].data,
    )
    with pytest.raises(GbtError, match="different messages"):
        reassemble([parts[0], stranger, parts[2]])
    with pytest.raises(GbtError, match="block number 0"):
        reassemble([GbtBlock(ROUTING, 0, b"x", last=True)])
    with pytest.raises(GbtError, match="follows the last"):
        reassemble([GbtBlock(ROUTING, 1, b"x", last=True), GbtBlock(ROUTING, 2, b"y")])
    with pytest.raises(GbtError):
        reassemble([])


def test_split_rejects_bad_arguments() -> None:
    with pytest.raises(EncodeError):
        split(b"abc", ROUTING, 0)
    with pytest.raises(EncodeError):
        split(b"", ROUTING, 10)
    with pytest.raises(EncodeError):
        GbtBlock(ROUTING, 1, b"", window=64).encode()


def test_block_truncation_and_trailing() -> None:
    wire = GbtBlock(ROUTING, 3, b"payload", last=True).encode()
    for cut in range(len(wire)):
        with pytest.raises(DecodeError):
            decode_block(wire[:cut])
    with pytest.raises(DecodeError, match="ciphered-service length"):
        decode_block(wire + b"\x00")
