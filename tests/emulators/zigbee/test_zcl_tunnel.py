"""ZCL header, Smart Energy Tunneling commands and the GBCS tunnel header."""

from __future__ import annotations

import pytest
from hypothesis import given

from emulators.zigbee.tunnel import (
    GBCS_MANUFACTURER_CODE,
    GBCS_PROTOCOL_ID,
    GbcsGet,
    GbcsGetResponse,
    GbcsPut,
    GbcsTunnelCommand,
    RequestTunnel,
    RequestTunnelResponse,
    TransferData,
    TransferDataError,
    TransferDataStatus,
    TunnelCommand,
    decode_gbcs_tunnel,
    encode_gbcs_tunnel,
    parse_tunnel,
    tunnel_frame,
)
from emulators.zigbee.zcl import Direction, ZclFrame, ZclFrameType, decode_zcl, encode_zcl
from gbcs.errors import DecodeError, EncodeError

from .checks import every_prefix_fails
from .strategies import (
    client_tunnel_commands,
    gbcs_tunnel_commands,
    server_tunnel_commands,
    zcl_frames,
)


@given(zcl_frames)
def test_zcl_round_trip(frame: ZclFrame) -> None:
    data = encode_zcl(frame)
    assert decode_zcl(data) == frame
    assert encode_zcl(decode_zcl(data)) == data
    header = 3 + 2 * (frame.manufacturer_code is not None)
    every_prefix_fails(decode_zcl, data[:header])


def test_zcl_header_bytes() -> None:
    frame = ZclFrame(ZclFrameType.CLUSTER, Direction.TO_CLIENT, 0x42, 0x01, b"", True, 0x1234)
    assert encode_zcl(frame).hex() == "1d34124201"


@pytest.mark.parametrize("control", [0x02, 0x03, 0x0A, 0x1B])
def test_zcl_reserved_frame_types_are_refused(control: int) -> None:
    """ZCL frame types 0b10 and 0b11 are reserved (ZCL 2.4.1.1.1): not read as 0 or 1."""
    with pytest.raises(DecodeError, match="reserved frame type"):
        decode_zcl(bytes((control, 0x42, 0x01)))


@pytest.mark.parametrize("bit", [0x20, 0x40, 0x80])
def test_zcl_reserved_frame_control_bits_are_refused(bit: int) -> None:
    """ZCL frame control bits 5-7 are reserved (ZCL 2.4.1.1)."""
    with pytest.raises(DecodeError, match="reserved bits 5-7"):
        decode_zcl(bytes((0x01 | bit, 0x42, 0x02)) + b"\x07\x00\x03x")


@given(client_tunnel_commands)
def test_client_commands_round_trip(command: TunnelCommand) -> None:
    both_ways = isinstance(command, TransferData | TransferDataError)
    direction = Direction.TO_SERVER if both_ways else None
    frame = tunnel_frame(command, sequence=5, direction=direction)
    assert frame.direction == Direction.TO_SERVER
    wire = encode_zcl(frame)
    assert parse_tunnel(decode_zcl(wire)) == command


@given(server_tunnel_commands)
def test_server_commands_round_trip(command: TunnelCommand) -> None:
    both_ways = isinstance(command, TransferData | TransferDataError)
    direction = Direction.TO_CLIENT if both_ways else None
    frame = tunnel_frame(command, sequence=5, direction=direction)
    assert frame.direction == Direction.TO_CLIENT
    assert parse_tunnel(decode_zcl(encode_zcl(frame))) == command


def test_gbcs_request_tunnel_bytes() -> None:
    """GB-HRGP (6), manufacturer code unused (0xFFFF), no flow control, and the 1500-octet
    MaximumIncomingTransferSize GBCS 10.2.2 fixes."""
    assert (GBCS_PROTOCOL_ID, GBCS_MANUFACTURER_CODE) == (6, 0xFFFF)
    frame = tunnel_frame(RequestTunnel(), sequence=1)
    assert encode_zcl(frame).hex() == "01010006ffff00dc05"


def test_transfer_data_command_ids_depend_on_direction() -> None:
    data = TransferData(7, b"\x01")
    to_server = tunnel_frame(data, sequence=1, direction=Direction.TO_SERVER)
    to_client = tunnel_frame(data, sequence=1, direction=Direction.TO_CLIENT)
    assert (to_server.command_id, to_client.command_id) == (0x02, 0x01)
    assert encode_zcl(to_server).hex() == "010102070001"
    with pytest.raises(EncodeError, match="direction"):
        tunnel_frame(data, sequence=1)
    with pytest.raises(EncodeError):
        tunnel_frame(RequestTunnel(), sequence=1, direction=Direction.TO_CLIENT)


def test_transfer_data_error_bytes_both_ways() -> None:
    """ZCL 10.6 / SE 1.2: client to server 0x03, server to client 0x02; tunnel id, status."""
    error = TransferDataError(0x0107, TransferDataStatus.NO_SUCH_TUNNEL)
    to_server = tunnel_frame(error, sequence=9, direction=Direction.TO_SERVER)
    to_client = tunnel_frame(error, sequence=9, direction=Direction.TO_CLIENT)
    assert encode_zcl(to_server).hex() == "0109030701" + "00"
    assert encode_zcl(to_client).hex() == "0909020701" + "00"
    assert parse_tunnel(decode_zcl(encode_zcl(to_client))) == error
    with pytest.raises(EncodeError, match="TransferDataError needs an explicit direction"):
        tunnel_frame(error, sequence=1)


@pytest.mark.parametrize(
    ("command", "direction"),
    [
        (RequestTunnel(), None),
        (RequestTunnelResponse(7), None),
        (TransferDataError(7, 2), Direction.TO_SERVER),
        (TransferDataError(7, 2), Direction.TO_CLIENT),
    ],
)
def test_fixed_commands_truncate_to_decode_errors(
    command: TunnelCommand, direction: Direction | None
) -> None:
    wire = encode_zcl(tunnel_frame(command, sequence=1, direction=direction))
    every_prefix_fails(lambda b: parse_tunnel(decode_zcl(b)), wire)


def test_trailing_bytes_and_unknown_commands() -> None:
    frame = tunnel_frame(RequestTunnelResponse(7), sequence=1)
    long = ZclFrame(frame.frame_type, frame.direction, 1, 0x00, frame.payload + b"\x00")
    with pytest.raises(DecodeError, match="trailing"):
        parse_tunnel(long)
    with pytest.raises(DecodeError, match="unsupported tunnel command"):
        parse_tunnel(ZclFrame(ZclFrameType.CLUSTER, Direction.TO_SERVER, 1, 0x09))


def test_manufacturer_specific_commands_are_not_tunnel_commands() -> None:
    """A manufacturer-specific command id means whatever that manufacturer says (ZCL
    2.4.1.1.2): 0x02 with a manufacturer code is not TransferData."""
    frame = ZclFrame(
        ZclFrameType.CLUSTER, Direction.TO_SERVER, 1, 0x02, b"\x07\x00\x03x", False, 0x1234
    )
    with pytest.raises(DecodeError, match="not a standard cluster-specific command"):
        parse_tunnel(frame)


@pytest.mark.parametrize("flag", [0x02, 0xFF])
def test_request_tunnel_flow_control_must_be_a_boolean(flag: int) -> None:
    """FlowControlSupport is a ZCL Boolean (0 or 1; 0xFF is "invalid", ZCL 2.6.2): any
    other byte is refused, not read as TRUE."""
    payload = bytes((GBCS_PROTOCOL_ID,)) + b"\xff\xff" + bytes((flag,)) + b"\xdc\x05"
    request = ZclFrame(ZclFrameType.CLUSTER, Direction.TO_SERVER, 1, 0x00, payload)
    with pytest.raises(DecodeError, match="boolean value"):
        parse_tunnel(request)


@given(gbcs_tunnel_commands)
def test_gbcs_tunnel_round_trip(command: GbcsTunnelCommand) -> None:
    data = encode_gbcs_tunnel(command)
    assert decode_gbcs_tunnel(data) == command
    assert encode_gbcs_tunnel(decode_gbcs_tunnel(data)) == data


def test_gbcs_tunnel_bytes() -> None:
    """As Wireshark's gbcs_tunnel reads them: command, GET-RESPONSE adds a remaining count."""
    assert encode_gbcs_tunnel(GbcsGet()) == b"\x01"
    assert encode_gbcs_tunnel(GbcsGetResponse(2, b"\xdd\x00")) == b"\x02\x02\xdd\x00"
    assert encode_gbcs_tunnel(GbcsPut(b"\xdd\x00")) == b"\x03\xdd\x00"
    every_prefix_fails(decode_gbcs_tunnel, b"\x02\x00")
    with pytest.raises(DecodeError, match="trailing"):
        decode_gbcs_tunnel(b"\x01\x00")
    with pytest.raises(DecodeError, match="GET"):
        decode_gbcs_tunnel(b"\x04")
