"""The GSME reads a triage bench makes, in GBZ (CRIB §5.3): GCS38 and CS10a.

* GCS38 (0x0084) GSME firmware version: a ZCL Read Attributes of the Metering
  cluster's attribute 0x0206, answered with an octet string [O: 11.2_GCS38].
* CS10a (0x0014) read ZigBee device event log: the Events cluster's GetEventLog
  (LogID, event id, UTC time range [start, end), how many and from which offset), answered by
  PublishEventLog with the matching events oldest first [O: 6.13_CS10a]; none
  matching is a ZCL Default Response "not found" (:func:`gbcs.gbz.default_response`).

Times are GBZ UTCTime (seconds since 2000, little-endian inside ZCL). The ZCL
sequence number of a response echoes the command's.
"""

from __future__ import annotations

import datetime as _dt
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from gbcs.errors import DecodeError, EncodeError
from gbcs.events import EVENTS_CLUSTER
from gbcs.gbz import (
    FC_CLUSTER_SPECIFIC,
    FC_SERVER_TO_CLIENT,
    ZCL_UNSUPPORTED_ATTRIBUTE,
    GbzPayload,
    ReadAttributesResponse,
    ZclFrame,
    one_component,
    single_frame,
    with_default_response_bit,
    zcl_view,
)
from gbcs.primitives import utc_from_gbz, utc_to_gbz

__all__ = [
    "GSME_FIRMWARE_VERSION_ATTRIBUTE",
    "METERING_CLUSTER",
    "GsmeFirmwareVersion",
    "ReadGsmeFirmwareVersion",
    "ReadZigbeeEventLog",
    "ZigbeeEventLog",
    "ZigbeeEventLogEntry",
    "read_attributes_answer",
]

LAYER = "gbz"
METERING_CLUSTER = 0x0702
GSME_FIRMWARE_VERSION_ATTRIBUTE = 0x0206  # [O: 11.2_GCS38]
_READ_ATTRIBUTES = 0x00
_READ_ATTRIBUTES_RESPONSE = 0x01
_OCTET_STRING = 0x41
_GET_EVENT_LOG = 0x00
_PUBLISH_EVENT_LOG = 0x01
_GET_EVENT_LOG_BODY = struct.Struct("<BHIIBH")  # control/LogID, id, start, end, count, offset
_EVENT_HEADER = struct.Struct("<BHIB")  # LogID, event id, time, data length


def _attributes_response(
    sequence: int, records: bytes, disable_default_response: bool = False
) -> GbzPayload:
    fc = with_default_response_bit(FC_SERVER_TO_CLIENT, disable_default_response)
    frame = ZclFrame(fc, sequence, _READ_ATTRIBUTES_RESPONSE, records)
    return one_component(METERING_CLUSTER, frame)


def _record(attribute: bytes, value: bytes | None, status: int) -> bytes:
    """A Read Attributes Response record (ZCL 2.5.2): the 2-byte id as on the wire, then
    success and the value as an octet string, or ``status`` where there is no value."""
    if value is None:
        return attribute + bytes((status,))
    if len(value) > 0xFE:
        raise EncodeError(f"a ZCL octet string holds 254 bytes, not {len(value)}")
    return attribute + bytes((0, _OCTET_STRING, len(value))) + value


def _byte(value: int, what: str) -> None:
    if not 0 <= value <= 0xFF:
        raise EncodeError(f"{what} {value} is not a byte")


# GCS38 ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadGsmeFirmwareVersion:
    """GCS38 command: Read Attributes (0x0206) on the Metering cluster."""

    sequence: int = 0
    # The ZCL frame control's bit as sent (either is valid ZCL): kept so the bytes
    # round-trip; so for every type here.
    disable_default_response: bool = False

    MESSAGE_CODE = 0x0084

    def __post_init__(self) -> None:
        _byte(self.sequence, "ZCL sequence number")

    def to_payload(self) -> GbzPayload:
        body = GSME_FIRMWARE_VERSION_ATTRIBUTE.to_bytes(2, "little")
        fc = with_default_response_bit(0x00, self.disable_default_response)
        return one_component(METERING_CLUSTER, ZclFrame(fc, self.sequence, _READ_ATTRIBUTES, body))

    @classmethod
    def from_payload(cls, payload: GbzPayload) -> ReadGsmeFirmwareVersion:
        frame = single_frame(payload, METERING_CLUSTER, 0x00, _READ_ATTRIBUTES, "a GCS38 command")
        wanted = GSME_FIRMWARE_VERSION_ATTRIBUTE.to_bytes(2, "little")
        if frame.payload != wanted:
            raise DecodeError(
                LAYER,
                "attribute",
                0,
                f"a GCS38 command reads attribute 0x0206 alone, not {frame.payload.hex()}",
            )
        return cls(frame.sequence, frame.disable_default_response)


def read_attributes_answer(payload: GbzPayload, values: Mapping[int, bytes]) -> GbzPayload:
    """A ZCL server's answer to a Read Attributes on the Metering cluster (GCS38's frame):
    one record per attribute asked for, in order, the octet string of one it holds, else
    status "unsupported attribute" (ZCL 2.5.2), not a refusal of the whole read. For
    GCS38 itself this is :class:`GsmeFirmwareVersion`'s payload, byte for byte."""
    frame = single_frame(payload, METERING_CLUSTER, 0x00, _READ_ATTRIBUTES, "a GCS38 command")
    asked = frame.payload
    if not asked or len(asked) % 2:
        raise DecodeError(
            LAYER, "payload", 0, f"attribute ids are 2 bytes each, found {len(asked)} bytes"
        )
    records = bytearray()
    for i in range(0, len(asked), 2):
        value = values.get(int.from_bytes(asked[i : i + 2], "little"))
        records += _record(asked[i : i + 2], value, ZCL_UNSUPPORTED_ATTRIBUTE)
    return _attributes_response(frame.sequence, bytes(records))


@dataclass(frozen=True, slots=True)
class GsmeFirmwareVersion:
    """GCS38 response: the version octets, or None with the ZCL status that says why."""

    version: bytes | None
    status: int = 0
    sequence: int = 0
    disable_default_response: bool = False

    def __post_init__(self) -> None:
        _byte(self.status, "ZCL status")
        _byte(self.sequence, "ZCL sequence number")
        if (self.version is None) != (self.status != 0):
            raise EncodeError("a GCS38 response has a version exactly when its status is 0")
        if self.version is not None and len(self.version) > 0xFE:
            raise EncodeError(f"a ZCL octet string holds 254 bytes, not {len(self.version)}")

    def to_payload(self) -> GbzPayload:
        attribute = GSME_FIRMWARE_VERSION_ATTRIBUTE.to_bytes(2, "little")
        record = _record(attribute, self.version, self.status)
        return _attributes_response(self.sequence, record, self.disable_default_response)

    @classmethod
    def from_payload(cls, payload: GbzPayload) -> GsmeFirmwareVersion:
        frame = single_frame(
            payload,
            METERING_CLUSTER,
            FC_SERVER_TO_CLIENT,
            _READ_ATTRIBUTES_RESPONSE,
            "a GCS38 response",
        )
        view = zcl_view(METERING_CLUSTER, frame)
        if not isinstance(view, ReadAttributesResponse) or len(view.records) != 1:
            raise DecodeError(LAYER, "records", 0, "a GCS38 response is one attribute record")
        (record,) = view.records
        if record.attribute_id != GSME_FIRMWARE_VERSION_ATTRIBUTE:
            raise DecodeError(
                LAYER, "attribute", 0, f"attribute 0x{record.attribute_id:04X}, not 0x0206"
            )
        ddr = frame.disable_default_response
        if record.status != 0:
            return cls(None, record.status, frame.sequence, ddr)
        value = record.value
        if value is None or value.data_type != _OCTET_STRING or not isinstance(value.value, bytes):
            raise DecodeError(LAYER, "value", 0, "the firmware version is an octet string")
        return cls(value.value, 0, frame.sequence, ddr)


# CS10a ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadZigbeeEventLog:
    """CS10a command (GetEventLog). ``log_id`` 0 asks for every log, ``event_id`` 0 for
    every event, ``count`` 0 for all of them. The range includes its start, not its end:
    "events with a timestamp equal to that of the End Time shall not be returned" (ZSE
    Events cluster), so consecutive windows never return an event twice.
    ``control`` is the high nibble of the first byte (1 in the RTDS: full details)."""

    log_id: int
    start: int  # GBZ UTCTime
    end: int
    event_id: int = 0
    count: int = 0
    offset: int = 0
    control: int = 1
    sequence: int = 0
    disable_default_response: bool = False

    MESSAGE_CODE = 0x0014

    def __post_init__(self) -> None:
        if not 0 <= self.log_id <= 0x0F or not 0 <= self.control <= 0x0F:
            raise EncodeError("LogID and event control are 4 bits each")
        for value, top, what in (
            (self.start, 0xFFFFFFFF, "start time"),
            (self.end, 0xFFFFFFFF, "end time"),
            (self.event_id, 0xFFFF, "event id"),
            (self.count, 0xFF, "number of events"),
            (self.offset, 0xFFFF, "event offset"),
            (self.sequence, 0xFF, "ZCL sequence number"),
        ):
            if not 0 <= value <= top:
                raise EncodeError(f"{what} {value} is outside 0..{top}")

    @classmethod
    def between(cls, start: _dt.datetime, end: _dt.datetime, log_id: int = 3) -> ReadZigbeeEventLog:
        return cls(log_id, utc_to_gbz(start), utc_to_gbz(end))

    def to_payload(self) -> GbzPayload:
        body = _GET_EVENT_LOG_BODY.pack(
            self.control << 4 | self.log_id,
            self.event_id,
            self.start,
            self.end,
            self.count,
            self.offset,
        )
        fc = with_default_response_bit(FC_CLUSTER_SPECIFIC, self.disable_default_response)
        frame = ZclFrame(fc, self.sequence, _GET_EVENT_LOG, body)
        return one_component(EVENTS_CLUSTER, frame)

    @classmethod
    def from_payload(cls, payload: GbzPayload) -> ReadZigbeeEventLog:
        frame = single_frame(
            payload, EVENTS_CLUSTER, FC_CLUSTER_SPECIFIC, _GET_EVENT_LOG, "a CS10a command"
        )
        if len(frame.payload) != _GET_EVENT_LOG_BODY.size:
            raise DecodeError(
                LAYER,
                "payload",
                0,
                f"a GetEventLog carries {_GET_EVENT_LOG_BODY.size} bytes, "
                f"found {len(frame.payload)}",
            )
        first, event_id, start, end, count, offset = _GET_EVENT_LOG_BODY.unpack(frame.payload)
        return cls(
            first & 0x0F,
            start,
            end,
            event_id,
            count,
            offset,
            first >> 4,
            frame.sequence,
            frame.disable_default_response,
        )

    def wants(self, entry: ZigbeeEventLogEntry) -> bool:
        return (
            (self.log_id == 0 or entry.log_id == self.log_id)
            and (self.event_id == 0 or entry.event_id == self.event_id)
            and self.start <= entry.time < self.end
        )


@dataclass(frozen=True, slots=True)
class ZigbeeEventLogEntry:
    log_id: int
    event_id: int
    time: int  # GBZ UTCTime
    data: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.log_id <= 0xFF or not 0 <= self.event_id <= 0xFFFF:
            raise EncodeError("an event's LogID is a byte and its id 16 bits")
        if not 0 <= self.time <= 0xFFFFFFFF:
            raise EncodeError(f"event time {self.time} is not a GBZ UTCTime")
        if len(self.data) > 0xFE:
            raise EncodeError(f"event data holds 254 bytes, not {len(self.data)}")

    @property
    def when(self) -> _dt.datetime:
        return utc_from_gbz(self.time)

    def encode(self) -> bytes:
        header = _EVENT_HEADER.pack(self.log_id, self.event_id, self.time, len(self.data))
        return header + self.data


@dataclass(frozen=True, slots=True)
class ZigbeeEventLog:
    """CS10a response (PublishEventLog): ``matching`` counts every event the query
    matched, ``entries`` are those this command carries, oldest first.
    ``payload_control`` is the byte after the command index and total ("number of
    events / log payload control"): 0 in the RTDS with 32 events [O/U: 6.13_CS10a]."""

    matching: int
    entries: tuple[ZigbeeEventLogEntry, ...]
    sequence: int = 0
    payload_control: int = 0
    disable_default_response: bool = True  # as the RTDS sends it

    def __post_init__(self) -> None:
        if not len(self.entries) <= self.matching <= 0xFFFF:
            raise EncodeError(
                f"{self.matching} matching events cannot carry {len(self.entries)} entries"
            )
        _byte(self.sequence, "ZCL sequence number")
        _byte(self.payload_control, "log payload control")

    @classmethod
    def answer(
        cls, query: ReadZigbeeEventLog, log: tuple[ZigbeeEventLogEntry, ...]
    ) -> ZigbeeEventLog:
        """The entries ``query`` asks for, from ``log`` in its (oldest first) order."""
        matched = [e for e in log if query.wants(e)]
        chosen = matched[query.offset :]
        if query.count:
            chosen = chosen[: query.count]
        return cls(len(matched), tuple(chosen), query.sequence)

    def to_payload(self) -> GbzPayload:
        body = self.matching.to_bytes(2, "little") + bytes((0, 1, self.payload_control))
        body += b"".join(e.encode() for e in self.entries)
        fc = with_default_response_bit(
            FC_CLUSTER_SPECIFIC | FC_SERVER_TO_CLIENT, self.disable_default_response
        )
        return one_component(EVENTS_CLUSTER, ZclFrame(fc, self.sequence, _PUBLISH_EVENT_LOG, body))

    @classmethod
    def from_payload(cls, payload: GbzPayload) -> ZigbeeEventLog:
        frame = single_frame(
            payload,
            EVENTS_CLUSTER,
            FC_CLUSTER_SPECIFIC | FC_SERVER_TO_CLIENT,
            _PUBLISH_EVENT_LOG,
            "a CS10a response",
        )
        data = frame.payload
        if len(data) < 5:
            raise DecodeError(LAYER, "payload", 0, "a PublishEventLog header is 5 bytes")
        matching = int.from_bytes(data[:2], "little")
        if data[2:4] != b"\x00\x01":
            raise DecodeError(
                LAYER, "payload", 2, "a CS10a response is command 0 of 1 (one GBZ response)"
            )
        entries = []
        pos = 5
        while pos < len(data):
            if pos + _EVENT_HEADER.size > len(data):
                raise DecodeError(LAYER, "event", pos, "truncated event header")
            log_id, event_id, time, length = _EVENT_HEADER.unpack_from(data, pos)
            pos += _EVENT_HEADER.size
            if pos + length > len(data):
                raise DecodeError(LAYER, "event", pos, f"event data of {length} bytes truncated")
            entries.append(ZigbeeEventLogEntry(log_id, event_id, time, data[pos : pos + length]))
            pos += length
        if len(entries) > matching:
            raise DecodeError(
                LAYER, "payload", 0, f"{len(entries)} events, but {matching} said to match"
            )
        return cls(
            matching, tuple(entries), frame.sequence, data[4], frame.disable_default_response
        )
