"""General Block Transfer: long GBCS messages split into blocks (CRIB §4).

No RTDS vector uses GBT, so the layout follows the mainline Wireshark
dissector's reading [U]: a general-ciphering *routing* header with populated
fields, a security header, then a DLMS general-block-transfer APDU (0xE0).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gbcs.errors import EncodeError, GbtError
from gbcs.frame import CraFlag, GbcsMessage, encode_parties, read_parties
from gbcs.primitives import Reader, encode_length

__all__ = ["GbtBlock", "RoutingHeader", "decode_block", "missing_blocks", "reassemble", "split"]

GBT_TAG = 0xE0
LAYER = "gbt"


@dataclass(frozen=True, slots=True)
class RoutingHeader:
    """Who a block belongs to: blocks of one message share this header."""

    cra_flag: CraFlag
    originator_counter: int
    business_originator: bytes
    business_target: bytes
    message_code: int

    @classmethod
    def of(cls, message: GbcsMessage) -> RoutingHeader:
        h = message.header
        return cls(
            h.cra_flag,
            h.originator_counter,
            h.business_originator,
            h.business_target,
            h.other_information.message_code,
        )


@dataclass(frozen=True, slots=True)
class GbtBlock:
    """One block; ``window`` is the 6-bit window size of the block-control byte."""

    routing: RoutingHeader
    block_number: int
    data: bytes
    last: bool = False
    streaming: bool = False
    window: int = 1
    block_number_ack: int = 0
    security_control: int = 0x00
    invocation_counter: int = 0

    def encode(self) -> bytes:
        r = self.routing
        if not 0 <= self.window <= 0x3F:
            raise EncodeError(f"window size {self.window} does not fit in 6 bits")
        for name in ("block_number", "block_number_ack"):
            if not 0 <= getattr(self, name) <= 0xFFFF:
                raise EncodeError(f"{name} {getattr(self, name)} is not a uint16")
        if not 0 <= r.message_code <= 0xFFFF:
            raise EncodeError(f"message code {r.message_code} is not a uint16")
        if not 0 <= self.security_control <= 0xFF:
            raise EncodeError("security control is one byte")
        if not 0 <= self.invocation_counter <= 0xFFFFFFFF:
            raise EncodeError("invocation counter is a uint32")
        control = (0x80 if self.last else 0) | (0x40 if self.streaming else 0) | self.window
        apdu = (
            bytes((GBT_TAG, control))
            + self.block_number.to_bytes(2, "big")
            + self.block_number_ack.to_bytes(2, "big")
            + encode_length(len(self.data))
            + self.data
        )
        service = (
            bytes((self.security_control,)) + self.invocation_counter.to_bytes(4, "big") + apdu
        )
        return b"".join(
            (
                b"\xdd",
                encode_parties(
                    r.cra_flag, r.originator_counter, r.business_originator, r.business_target
                ),
                b"\x00\x02",
                r.message_code.to_bytes(2, "big"),
                b"\x00",
                encode_length(len(service)),
                service,
            )
        )


def decode_block(data: bytes, base: int = 0) -> GbtBlock:
    r = Reader(bytes(data), LAYER, base=base)
    r.expect(0xDD, "general-ciphering tag")
    cra_flag, counter, originator, target = read_parties(
        r, "originator-system-title length", "recipient-system-title length"
    )
    r.expect(0x00, "date-time length")
    r.expect(0x02, "other-information length")
    code = r.uint(2, "message code")
    r.expect(0x00, "key-info")
    pos = r.pos
    length = r.length("ciphered-service length")
    if length != r.remaining:
        raise r.error("ciphered-service length", f"declares {length}, {r.remaining} follow", pos)
    security_control = r.u8("security control")
    invocation = r.uint(4, "invocation counter")
    r.expect(GBT_TAG, "general-block-transfer tag")
    control = r.u8("block-control")
    number = r.uint(2, "block-number")
    ack = r.uint(2, "block-number-ack")
    size = r.length("block-data length")
    block_data = r.take(size, "block-data")
    r.finish()
    routing = RoutingHeader(cra_flag, counter, originator, target, code)
    return GbtBlock(
        routing,
        number,
        block_data,
        bool(control & 0x80),
        bool(control & 0x40),
        control & 0x3F,
        ack,
        security_control,
        invocation,
    )


def split(
    message: bytes, routing: RoutingHeader, block_size: int, window: int = 1
) -> list[GbtBlock]:
    """Cut an encoded GBCS message into blocks of at most ``block_size`` data bytes."""
    if block_size < 1:
        raise EncodeError("block size must be at least 1")
    if not message:
        raise EncodeError("nothing to split")
    chunks = [message[i : i + block_size] for i in range(0, len(message), block_size)]
    if len(chunks) > 0xFFFF:
        raise EncodeError(f"{len(chunks)} blocks exceed the 16-bit block number")
    return [
        GbtBlock(routing, n, chunk, last=n == len(chunks), window=window)
        for n, chunk in enumerate(chunks, start=1)
    ]


def missing_blocks(blocks: Iterable[GbtBlock]) -> tuple[int, ...]:
    """Block numbers not yet received; unknown total counts up to the highest seen + 1."""
    blocks = list(blocks)  # read twice below: a one-shot iterator would look empty the second time
    seen = {b.block_number for b in blocks}
    last = [b.block_number for b in blocks if b.last]
    top = min(last) if last else (max(seen, default=0) + 1)
    return tuple(n for n in range(1, top + 1) if n not in seen)


def reassemble(blocks: Iterable[GbtBlock]) -> bytes:
    """Join the blocks of one message in block-number order.

    Duplicates with identical data are dropped (a retransmission); any other
    disagreement, or a gap, raises :class:`GbtError` naming what is wrong.
    """
    blocks = list(blocks)
    if not blocks:
        raise GbtError("no blocks", missing=(1,))
    routing = blocks[0].routing
    by_number: dict[int, GbtBlock] = {}
    for block in blocks:
        if block.routing != routing:
            raise GbtError("blocks belong to different messages (routing headers differ)")
        if block.block_number == 0:
            raise GbtError("block number 0 is not valid: the first block is 1")
        prior = by_number.get(block.block_number)
        if prior is not None:
            if prior.data != block.data or prior.last != block.last:
                raise GbtError(f"block {block.block_number} received twice with different contents")
            continue
        by_number[block.block_number] = block
    last = sorted(n for n, b in by_number.items() if b.last)
    if len(last) > 1:
        raise GbtError(f"more than one last block: {last}")
    if last and max(by_number) > last[0]:
        raise GbtError(f"block {max(by_number)} follows the last block {last[0]}")
    missing = missing_blocks(by_number.values())
    if missing or not last:
        raise GbtError(f"incomplete message: missing blocks {list(missing)}", missing=missing)
    return b"".join(by_number[n].data for n in range(1, last[0] + 1))
