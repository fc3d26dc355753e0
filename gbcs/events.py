"""CS11 Clear ZigBee Device Event Log: the ZCL Events cluster (0x0709) in GBZ (CRIB §5.3).

The command is one GBZ component, cluster-specific client-to-server command
0x01 ClearEventLogRequest with a one-byte LogID; the response is command 0x02
ClearEventLogResponse with a bitmap of the logs cleared (ZCL Smart Energy
Events cluster). RTDS 3.3 asks for the general event log (LogID 3) and gets
``08`` (bit 3: cleared) or ``00`` (nothing cleared). The ZCL sequence number
of the response echoes the command's.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from gbcs.errors import DecodeError, EncodeError
from gbcs.gbz import (
    FC_CLUSTER_SPECIFIC,
    FC_SERVER_TO_CLIENT,
    GbzPayload,
    ZclFrame,
    one_component,
    single_frame,
    with_default_response_bit,
)

__all__ = [
    "CLEAR_EVENT_LOG",
    "EVENTS_CLUSTER",
    "ClearEventLog",
    "EventLogsCleared",
    "LogId",
]

LAYER = "gbz"
CLEAR_EVENT_LOG = 0x0015  # CS11 message code
EVENTS_CLUSTER = 0x0709
_REQUEST = 0x01  # ClearEventLogRequest
_RESPONSE = 0x02  # ClearEventLogResponse


class LogId(enum.IntEnum):
    """ZCL Events cluster LogID; bit ``n`` of the cleared bitmap is LogID ``n``."""

    ALL = 0
    TAMPER = 1
    FAULT = 2
    GENERAL = 3
    SECURITY = 4
    NETWORK = 5
    GBCS_GENERAL = 6
    GBCS_SECURITY = 7


def _only_frame(
    payload: GbzPayload, command_id: int, server_to_client: bool, what: str
) -> ZclFrame:
    """The single plain Events-cluster frame of a CS11 payload, checked."""
    expected = FC_CLUSTER_SPECIFIC | (FC_SERVER_TO_CLIENT if server_to_client else 0)
    frame = single_frame(payload, EVENTS_CLUSTER, expected, command_id, what)
    if len(frame.payload) != 1:
        raise DecodeError(
            LAYER, "payload", 0, f"{what} carries one byte, found {len(frame.payload)}"
        )
    return frame


def _component(
    command_id: int, frame_control: int, sequence: int, value: int, no_default_response: bool
) -> GbzPayload:
    if not 0 <= sequence <= 0xFF:
        raise EncodeError(f"ZCL sequence number {sequence} is not a byte")
    fc = with_default_response_bit(frame_control, no_default_response)
    frame = ZclFrame(fc, sequence, command_id, bytes((value,)))
    return one_component(EVENTS_CLUSTER, frame)


@dataclass(frozen=True, slots=True)
class ClearEventLog:
    """CS11 command: clear the log ``log_id`` (LogId; ALL asks for every log)."""

    log_id: int
    sequence: int = 0
    # The ZCL frame control's bit as sent (either is valid ZCL): kept so the bytes
    # round-trip.
    disable_default_response: bool = False

    MESSAGE_CODE = CLEAR_EVENT_LOG

    def __post_init__(self) -> None:
        if self.log_id not in LogId._value2member_map_:
            raise EncodeError(f"LogID {self.log_id} is not one of 0-7")

    def to_payload(self) -> GbzPayload:
        return _component(
            _REQUEST,
            FC_CLUSTER_SPECIFIC,
            self.sequence,
            self.log_id,
            self.disable_default_response,
        )

    @classmethod
    def from_payload(cls, payload: GbzPayload) -> ClearEventLog:
        frame = _only_frame(payload, _REQUEST, False, "a CS11 command")
        log_id = frame.payload[0]
        if log_id not in LogId._value2member_map_:
            raise DecodeError(LAYER, "LogID", 0, f"LogID {log_id} is not one of 0-7")
        return cls(log_id, frame.sequence, frame.disable_default_response)


@dataclass(frozen=True, slots=True)
class EventLogsCleared:
    """CS11 response: ``cleared`` is the bitmap of logs cleared (0: none)."""

    cleared: int
    sequence: int = 0
    disable_default_response: bool = False  # as sent, as for ClearEventLog

    def __post_init__(self) -> None:
        if not 0 <= self.cleared <= 0xFF:
            raise EncodeError(f"the cleared-logs bitmap {self.cleared} is not a byte")

    @classmethod
    def of(cls, logs: tuple[LogId, ...], sequence: int = 0) -> EventLogsCleared:
        return cls(sum(1 << int(log) for log in set(logs)), sequence)

    @property
    def logs(self) -> tuple[LogId, ...]:
        return tuple(log for log in LogId if self.cleared >> int(log) & 1)

    def to_payload(self) -> GbzPayload:
        fc = FC_CLUSTER_SPECIFIC | FC_SERVER_TO_CLIENT
        return _component(_RESPONSE, fc, self.sequence, self.cleared, self.disable_default_response)

    @classmethod
    def from_payload(cls, payload: GbzPayload) -> EventLogsCleared:
        frame = _only_frame(payload, _RESPONSE, True, "a CS11 response")
        return cls(frame.payload[0], frame.sequence, frame.disable_default_response)
