"""pcapng: several interfaces with their own link types in one file (the HAN plus the WAN)."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest

from gbcs.errors import EncodeError
from gbcs.pcap import exported_pdu, pcap_header, pcap_record, pcapng_file


def _blocks(data: bytes) -> list[tuple[int, bytes]]:
    out, p = [], 0
    while p < len(data):
        kind, total = struct.unpack_from("<II", data, p)
        assert total % 4 == 0 and struct.unpack_from("<I", data, p + total - 4)[0] == total
        out.append((kind, data[p + 8 : p + total - 4]))
        p += total
    return out


def test_layout() -> None:
    data = pcapng_file([(195, "han:bench"), (252, "wan")], [(1, 1.5, b"\x01\x02\x03")])
    blocks = _blocks(data)
    assert [k for k, _ in blocks] == [0x0A0D0D0A, 1, 1, 6]
    assert blocks[0][1] == struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
    link, _, snap = struct.unpack_from("<HHI", blocks[1][1])
    assert (link, snap) == (195, 0x40000)
    assert blocks[1][1][8:12] == struct.pack("<HH", 2, 9) and blocks[1][1][12:21] == b"han:bench"
    iface, high, low, cap, orig = struct.unpack_from("<IIIII", blocks[3][1])
    assert (iface, (high << 32) | low, cap, orig) == (1, 1_500_000, 3, 3)
    assert blocks[3][1][20:] == b"\x01\x02\x03\x00"


@pytest.mark.parametrize(
    ("packets", "reason"),
    [
        ([(2, 0.0, b"x")], "there are 2"),
        ([(0, -1.0, b"x")], "before 1970"),
        ([(0, 0.0, b"x" * 300_000)], "exceeds the snapshot length"),
    ],
)
def test_refusals(packets: list, reason: str) -> None:
    with pytest.raises(EncodeError, match=reason):
        pcapng_file([(195, "a"), (252, "b")], packets)
    with pytest.raises(EncodeError, match="out of range"):
        pcapng_file([(70000, "a")], [])


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: pcap_header(252, -1), "snapshot length -1"),
        (lambda: pcap_header(252, 2**32), "not a uint32"),
        (lambda: pcap_record(NAN, b"x"), "not a finite number"),
        (lambda: pcap_record(INF, b"x"), "not a finite number"),
        (lambda: exported_pdu("gbcs_é", b"x"), "not ASCII"),
        (lambda: pcapng_file([(1, "a" * 70_000)], []), "16-bit length"),
        (lambda: pcapng_file([(1, "\udc80")], []), "not encodable"),
        (lambda: pcapng_file([(1, "a")], [], snaplen=-1), "snapshot length -1"),
        (lambda: pcapng_file([(1, "a")], [(0, NAN, b"x")]), "not a finite number"),
        (lambda: pcapng_file([(1, "a")], [(0, INF, b"x")]), "not a finite number"),
        (lambda: pcapng_file([(1, "a")], [(0, 1e14, b"x")]), "64-bit pcapng field"),
    ],
)
def test_unencodable_values_are_encode_errors(make: Callable[[], bytes], reason: str) -> None:
    """struct.error, ValueError, OverflowError and UnicodeEncodeError used to escape."""
    with pytest.raises(EncodeError, match=reason):
        make()
