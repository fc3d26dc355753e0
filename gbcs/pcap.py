"""Capture files for Wireshark: classic libpcap bytes and Exported-PDU frames.

Pure functions, no I/O: the caller writes the bytes wherever it likes. Lab
engineers open the result in Wireshark to see GBCS messages the kit made or
received exactly as Wireshark's own GBCS dissectors read them (DESIGN §1).

Layouts (facts, from the libpcap file-format description and Wireshark's
Exported-PDU link type):

* file header, 24 bytes, written little-endian: magic ``0xA1B2C3D4``
  (microsecond timestamps), version 2.4, thiszone 0, sigfigs 0, snaplen,
  link type;
* per record, 16 bytes: seconds, microseconds, captured length, original
  length, then the frame;
* Exported-PDU (link type 252) frame: a list of tags, each ``type (2, BE)
  length (2, BE) value``, ending with the end-of-options tag (type 0,
  length 0), then the PDU. Tag 12 names the dissector to call on the PDU.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable

from gbcs.errors import EncodeError

__all__ = [
    "DEFAULT_SNAPLEN",
    "EXP_PDU_TAG_DISSECTOR_NAME",
    "EXP_PDU_TAG_END_OF_OPTIONS",
    "LINKTYPE_IEEE802_15_4_NOFCS",
    "LINKTYPE_IEEE802_15_4_TAP",
    "LINKTYPE_WIRESHARK_UPPER_PDU",
    "PCAP_MAGIC",
    "exported_pdu",
    "exported_pdu_tag",
    "pcap_file",
    "pcap_header",
    "pcap_record",
    "pcapng_file",
]

PCAP_MAGIC = 0xA1B2C3D4  # microsecond resolution; written little-endian
PCAP_VERSION = (2, 4)
DEFAULT_SNAPLEN = 0x40000  # the snapshot length Wireshark itself writes

# Link types (tcpdump.org LINKTYPE_* registry). The 802.15.4 ones are here for
# the HAN capture writer that builds on this module.
LINKTYPE_WIRESHARK_UPPER_PDU = 252
LINKTYPE_IEEE802_15_4_NOFCS = 230
LINKTYPE_IEEE802_15_4_WITHFCS = 195
LINKTYPE_IEEE802_15_4_TAP = 283

# Exported-PDU tag types used here (values verified against tshark 4.0).
EXP_PDU_TAG_END_OF_OPTIONS = 0
EXP_PDU_TAG_DISSECTOR_NAME = 12

_FILE_HEADER = struct.Struct("<IHHiIII")
_RECORD_HEADER = struct.Struct("<IIII")


def _check_snaplen(snaplen: int) -> None:
    if not 0 <= snaplen <= 0xFFFFFFFF:
        raise EncodeError(f"snapshot length {snaplen} is not a uint32")


def _micros(timestamp: float) -> int:
    """Microseconds since 1970; NaN and infinity have none (round() would raise)."""
    if not math.isfinite(timestamp):
        raise EncodeError(f"timestamp {timestamp} is not a finite number")
    if timestamp < 0:
        raise EncodeError(f"timestamp {timestamp} is before 1970")
    return round(timestamp * 1_000_000)


def pcap_header(link_type: int, snaplen: int = DEFAULT_SNAPLEN) -> bytes:
    """The 24-byte global header of a classic pcap file."""
    if not 0 <= link_type <= 0xFFFF:
        raise EncodeError(f"link type {link_type} is out of range")
    _check_snaplen(snaplen)
    return _FILE_HEADER.pack(PCAP_MAGIC, *PCAP_VERSION, 0, 0, snaplen, link_type)


def pcap_record(timestamp: float, frame: bytes, snaplen: int = DEFAULT_SNAPLEN) -> bytes:
    """One record header plus frame; frames over ``snaplen`` are refused, not cut.

    A silently truncated frame would show as malformed in Wireshark, which is
    worse than an error here.
    """
    micros = _micros(timestamp)
    if len(frame) > snaplen:
        raise EncodeError(f"frame of {len(frame)} bytes exceeds the snapshot length {snaplen}")
    seconds, micros = divmod(micros, 1_000_000)
    if seconds > 0xFFFFFFFF:
        raise EncodeError(f"timestamp {timestamp} does not fit a 32-bit pcap field")
    return _RECORD_HEADER.pack(seconds, micros, len(frame), len(frame)) + bytes(frame)


def pcap_file(
    link_type: int, records: Iterable[tuple[float, bytes]], snaplen: int = DEFAULT_SNAPLEN
) -> bytes:
    """A whole classic pcap file: header, then ``(timestamp, frame)`` records in order."""
    parts = [pcap_header(link_type, snaplen)]
    parts.extend(pcap_record(ts, frame, snaplen) for ts, frame in records)
    return b"".join(parts)


def exported_pdu_tag(tag_type: int, value: bytes) -> bytes:
    """One Exported-PDU tag; the value is zero-padded to a multiple of 4 bytes.

    The length field carries the padded length, which is what Wireshark writes
    and reads for its string tags (the string is read up to its first NUL).
    """
    if not 0 <= tag_type <= 0xFFFF:
        raise EncodeError(f"tag type {tag_type} is out of range")
    padded = bytes(value) + b"\x00" * (-len(value) % 4)
    if len(padded) > 0xFFFF:
        raise EncodeError(f"tag value of {len(value)} bytes is too long")
    return struct.pack(">HH", tag_type, len(padded)) + padded


def exported_pdu(protocol_name: str, payload: bytes) -> bytes:
    """A link-type-252 frame asking Wireshark to dissect ``payload`` with ``protocol_name``.

    For a GBCS message the name is ``gbcs_message`` (its registered dissector).
    """
    try:
        name = protocol_name.encode("ascii")
    except UnicodeEncodeError:
        raise EncodeError(f"dissector name {protocol_name!r} is not ASCII") from None
    if not name or b"\x00" in name:
        raise EncodeError(f"bad dissector name {protocol_name!r}")
    return (
        exported_pdu_tag(EXP_PDU_TAG_DISSECTOR_NAME, name)
        + struct.pack(">HH", EXP_PDU_TAG_END_OF_OPTIONS, 0)
        + bytes(payload)
    )


# --- pcapng (several interfaces, each with its own link type) -----------------------
# Block layouts from the pcapng specification (draft-ietf-opsawg-pcapng): every
# block is type (4) total-length (4) body total-length (4), little-endian here;
# options are code (2) length (2) value padded to 4, ended by code 0.
_SHB, _IDB, _EPB = 0x0A0D0D0A, 0x00000001, 0x00000006
_BYTE_ORDER_MAGIC = 0x1A2B3C4D
_OPT_IF_NAME = 2


def _pad4(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % 4)


def _block(block_type: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", block_type, total) + body + struct.pack("<I", total)


def _option(code: int, value: bytes) -> bytes:
    if len(value) > 0xFFFF:
        raise EncodeError(f"option of {len(value)} bytes exceeds its 16-bit length")
    return struct.pack("<HH", code, len(value)) + _pad4(value)


def pcapng_file(
    interfaces: Iterable[tuple[int, str]],
    packets: Iterable[tuple[int, float, bytes]],
    snaplen: int = DEFAULT_SNAPLEN,
) -> bytes:
    """A pcapng section: ``interfaces`` as ``(link type, name)``, then
    ``(interface index, timestamp, frame)`` packets in order (microsecond times).

    One file can then hold the HAN's 802.15.4 air and the WAN's GBCS messages,
    each on an interface of its own link type, for Wireshark to show together.
    """
    _check_snaplen(snaplen)
    parts = [
        _block(_SHB, struct.pack("<IHHq", _BYTE_ORDER_MAGIC, 1, 0, -1)),
    ]
    count = 0
    for link_type, name in interfaces:
        if not 0 <= link_type <= 0xFFFF:
            raise EncodeError(f"link type {link_type} is out of range")
        try:
            encoded = name.encode("utf-8")
        except UnicodeEncodeError:
            raise EncodeError(f"interface name {name!r} is not encodable UTF-8") from None
        options = _option(_OPT_IF_NAME, encoded) + struct.pack("<HH", 0, 0)
        parts.append(_block(_IDB, struct.pack("<HHI", link_type, 0, snaplen) + options))
        count += 1
    for index, timestamp, frame in packets:
        if not 0 <= index < count:
            raise EncodeError(f"packet names interface {index}, but there are {count}")
        micros = _micros(timestamp)
        if micros > 0xFFFF_FFFF_FFFF_FFFF:
            raise EncodeError(f"timestamp {timestamp} does not fit a 64-bit pcapng field")
        if len(frame) > snaplen:
            raise EncodeError(f"frame of {len(frame)} bytes exceeds the snapshot length {snaplen}")
        body = struct.pack(
            "<IIIII", index, micros >> 32, micros & 0xFFFFFFFF, len(frame), len(frame)
        ) + _pad4(bytes(frame))
        parts.append(_block(_EPB, body))
    return b"".join(parts)
