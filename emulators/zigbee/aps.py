"""ZigBee APS frames (spec 2.2.5), Transport Key, fragmentation and the ZDO Device_annce.

Frame control (1 byte): frame type bits 0-1 (data, command, ack), delivery
mode 2-3 (unicast 0, broadcast 2, group 3), ack format 4, security 5, ack
request 6, extended header 7. Data frames (and acks of data) carry the
destination endpoint (or group address), cluster, profile and source endpoint;
every frame carries the APS counter. The extended header (2.2.5.1.8) holds the
fragmentation kind (first block / later block) and a block number, which in
the first block is the total number of blocks (2.2.8.4.5); acks of fragments
add an acknowledgement bitfield.

APS security (4.4.1) is CCM* over the APS header plus auxiliary header, with
the payload (a command's id included) encrypted. A Transport Key carrying the
network key is secured with the key-transport key of the trust-centre link key
and an extended nonce naming the trust centre (4.4.1.1, 4.4.9.2).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum

from gbcs.errors import DecodeError, EncodeError, GbcsError, VerificationError

from . import security
from ._wire import Reader, builder, check_range, eui64, octets, u8, u16
from .mac import Capability, _capability
from .security import AuxHeader, EncryptedPayload, KeyId, _decrypt_received, _peek_aux

__all__ = [
    "DEVICE_ANNOUNCE_CLUSTER",
    "MAX_BLOCKS",
    "ZDO_PROFILE",
    "AckFragment",
    "ApsAck",
    "ApsCommand",
    "ApsCommandId",
    "ApsData",
    "ApsFrame",
    "ApsFrameType",
    "DeliveryMode",
    "DeviceAnnounce",
    "Fragment",
    "FragmentError",
    "KeyType",
    "RawApsCommand",
    "TransportKey",
    "decode_aps",
    "device_announce_frame",
    "encode_aps",
    "fragment",
    "missing_blocks",
    "parse_device_announce",
    "reassemble",
]

LAYER = "aps"
ZDO_PROFILE = 0x0000
DEVICE_ANNOUNCE_CLUSTER = 0x0013
MAX_BLOCKS = 255  # the block number is one byte


class ApsFrameType(IntEnum):
    DATA = 0
    COMMAND = 1
    ACK = 2


class DeliveryMode(IntEnum):
    UNICAST = 0
    BROADCAST = 2
    GROUP = 3


class ApsCommandId(IntEnum):
    TRANSPORT_KEY = 0x05
    UPDATE_DEVICE = 0x06
    REMOVE_DEVICE = 0x07
    REQUEST_KEY = 0x08
    SWITCH_KEY = 0x09
    VERIFY_KEY = 0x0F
    CONFIRM_KEY = 0x10


class KeyType(IntEnum):
    """Key types of the Transport Key command that this codec models (spec 4.4.9.2.3)."""

    NETWORK = 0x01
    TRUST_CENTER_LINK = 0x04


_MODELLED_KEY_TYPES = frozenset(bytes((k,)) for k in KeyType)
_KEY_TYPES = {int(k): k for k in KeyType}
_KEY_TYPE_VALUES = tuple(KeyType)


class FragmentError(GbcsError):
    """Blocks of a fragmented APS transfer that cannot be reassembled; ``missing`` lists gaps."""

    def __init__(self, reason: str, missing: tuple[int, ...] = ()) -> None:
        self.reason = reason
        self.missing = missing
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class Fragment:
    """Fragmentation fields of the extended header.

    Block 0 is the first block and carries ``total_blocks``; later blocks carry
    only their number (``total_blocks`` is then ``None``).
    """

    block_number: int
    total_blocks: int | None = None


@dataclass(frozen=True, slots=True)
class AckFragment:
    """Extended header of an ack of fragmented data: which window it acknowledges.

    ``first`` mirrors the fragmentation sub-field (first block / later block),
    ``block_number`` the first block acknowledged and ``ack_bitfield`` one bit per
    block of the window received (spec 2.2.5.1.8.3, 2.2.8.4.5.2).
    """

    first: bool
    block_number: int
    ack_bitfield: int


@dataclass(frozen=True, slots=True)
class TransportKey:
    """Transport Key command body (spec 4.4.9.2).

    ``key_sequence`` is present for the network key and absent for a
    trust-centre link key. Addresses are display-order EUI-64s.
    """

    key_type: KeyType
    key: bytes
    dst_ieee: bytes
    src_ieee: bytes
    key_sequence: int | None = None


@dataclass(frozen=True, slots=True)
class RawApsCommand:
    """An APS command this codec does not model (a Transport Key of another key type too)."""

    command_id: int
    body: bytes = b""


ApsCommandBody = TransportKey | RawApsCommand


@dataclass(frozen=True, slots=True)
class ApsData:
    """An APS data frame; ``payload`` is the ZCL/ZDP bytes of this block.

    ``dst_endpoint`` is ``None`` exactly for group delivery, which uses ``group``.
    ``security`` is set when the frame is APS-secured (link key, usually).
    """

    cluster_id: int
    profile_id: int
    src_endpoint: int
    dst_endpoint: int | None
    counter: int
    payload: bytes | EncryptedPayload
    delivery_mode: DeliveryMode = DeliveryMode.UNICAST
    group: int | None = None
    ack_request: bool = False
    fragment: Fragment | None = None
    security: AuxHeader | None = None


@dataclass(frozen=True, slots=True)
class ApsCommand:
    """An APS command frame (Transport Key and others)."""

    counter: int
    command: ApsCommandBody | EncryptedPayload
    security: AuxHeader | None = None
    delivery_mode: DeliveryMode = DeliveryMode.UNICAST
    ack_request: bool = False


@dataclass(frozen=True, slots=True)
class ApsAck:
    """An APS acknowledgement.

    Acks of data frames name endpoints, cluster and profile; acks of commands
    (ack format bit) have all four ``None``. ``fragment`` is set when blocks of
    a fragmented transfer are acknowledged. ``encrypted`` keeps the MIC of a
    secured ack decoded without its key, so encoding writes it back unchanged.
    """

    counter: int
    dst_endpoint: int | None = None
    cluster_id: int | None = None
    profile_id: int | None = None
    src_endpoint: int | None = None
    fragment: AckFragment | None = None
    security: AuxHeader | None = None
    encrypted: EncryptedPayload | None = None


ApsFrame = ApsData | ApsCommand | ApsAck


# -- encoding ---------------------------------------------------------------


def _encode_fragment(frag: Fragment | AckFragment | None, is_ack: bool) -> bytes:
    if frag is None:
        return b""
    # The two layouts differ in length, so the wrong one would shift every later byte.
    if isinstance(frag, AckFragment) != is_ack:
        wanted = "an AckFragment" if is_ack else "a Fragment"
        raise EncodeError(f"{'an ack' if is_ack else 'a data frame'} needs {wanted}")
    if isinstance(frag, AckFragment):
        return (
            (b"\x01" if frag.first else b"\x02")
            + u8(frag.block_number, "block_number")
            + u8(frag.ack_bitfield, "ack_bitfield")
        )
    if frag.block_number == 0:
        total = frag.total_blocks
        if not isinstance(total, int) or not 1 <= total <= MAX_BLOCKS:
            raise EncodeError("the first block needs total_blocks in 1..255")
        out = b"\x01" + bytes((total,))
    else:
        if frag.total_blocks is not None:
            raise EncodeError("only the first block carries total_blocks")
        out = b"\x02" + u8(frag.block_number, "block_number")
    return out


def _encode_transport_key(body: TransportKey) -> bytes:
    if body.key_type not in _KEY_TYPE_VALUES:
        raise EncodeError(f"key type {body.key_type!r} is not modelled: use RawApsCommand")
    key = octets(body.key, "key")
    if len(key) != 16:
        raise EncodeError(f"transport key must be 16 bytes, got {len(key)}")
    out = bytes((ApsCommandId.TRANSPORT_KEY, body.key_type)) + key
    if body.key_type == KeyType.NETWORK:
        if body.key_sequence is None:
            raise EncodeError("a network key needs its key_sequence")
        out += u8(body.key_sequence, "key_sequence")
    elif body.key_sequence is not None:
        raise EncodeError("only a network key has a key_sequence")
    return out + eui64(body.dst_ieee, "dst_ieee") + eui64(body.src_ieee, "src_ieee")


def _encode_command(body: ApsCommandBody) -> bytes:
    if isinstance(body, TransportKey):
        return _encode_transport_key(body)
    if isinstance(body, RawApsCommand):
        if body.command_id == ApsCommandId.TRANSPORT_KEY and body.body[:1] in _MODELLED_KEY_TYPES:
            raise EncodeError("use TransportKey for this key type")
        return u8(body.command_id, "command_id") + octets(body.body, "body")
    raise EncodeError(f"not an APS command: {body!r}")


_DATA_HEAD = struct.Struct("<BBHHBB")  # control, dst endpoint, cluster, profile, src ep, counter
_GROUP_HEAD = struct.Struct("<BHHHBB")  # control, group, cluster, profile, src ep, counter
_BLOCK_HEAD = struct.Struct("<BBHHBBBB")  # _DATA_HEAD, fragmentation, block number or count
_FRAME_TYPES = (ApsFrameType.DATA, ApsFrameType.COMMAND, ApsFrameType.ACK)
_MODES = (DeliveryMode.UNICAST, None, DeliveryMode.BROADCAST, DeliveryMode.GROUP)
_DELIVERY_MODES = tuple(DeliveryMode)


def _encode_header(frame: ApsFrame) -> bytes:
    # Fast path: a unicast or broadcast data frame, unfragmented or a plain block, with
    # its values in range; anything else takes _encode_header_checked for the precise
    # error.
    if type(frame) is ApsData and frame.group is None:
        mode = frame.delivery_mode
        ack = frame.ack_request
        frag = frame.fragment
        if (mode is DeliveryMode.UNICAST or mode is DeliveryMode.BROADCAST) and type(ack) is bool:
            fields = (
                mode << 2 | (frame.security is not None) << 5 | ack << 6,
                frame.dst_endpoint,
                frame.cluster_id,
                frame.profile_id,
                frame.src_endpoint,
                frame.counter,
            )
            if frag is None:
                try:
                    return _DATA_HEAD.pack(*fields)
                except struct.error:
                    pass
            elif type(frag) is Fragment and type(frag.block_number) is int:
                number, total = frag.block_number, frag.total_blocks
                extension = None
                if number == 0:
                    if type(total) is int and 1 <= total <= MAX_BLOCKS:
                        extension = (1, total)  # first block: the block count
                elif total is None:
                    extension = (2, number)
                if extension is not None:
                    try:
                        return _BLOCK_HEAD.pack(fields[0] | 0x80, *fields[1:], *extension)
                    except struct.error:
                        pass
    return _encode_header_checked(frame)


def _encode_header_checked(frame: ApsFrame) -> bytes:
    if isinstance(frame, ApsData):
        kind, mode = ApsFrameType.DATA, frame.delivery_mode
        extended = _encode_fragment(frame.fragment, False)
        ack_format = False
    elif isinstance(frame, ApsCommand):
        kind, mode = ApsFrameType.COMMAND, frame.delivery_mode
        if mode == DeliveryMode.GROUP:
            raise EncodeError("APS commands are not group-addressed")
        extended, ack_format = b"", False
    else:
        kind, mode = ApsFrameType.ACK, DeliveryMode.UNICAST
        extended = _encode_fragment(frame.fragment, True)
        fields = (frame.dst_endpoint, frame.cluster_id, frame.profile_id, frame.src_endpoint)
        ack_format = all(f is None for f in fields)
        if not ack_format and any(f is None for f in fields):
            raise EncodeError("an ack of data needs endpoints, cluster and profile")
    if mode not in _DELIVERY_MODES:  # 1 is reserved; a wider int spills into other bits
        raise EncodeError(f"delivery_mode {mode!r} is not a delivery mode")
    control = (
        int(kind)
        | int(mode) << 2
        | ack_format << 4
        | (frame.security is not None) << 5
        | bool(getattr(frame, "ack_request", False)) << 6
        | bool(extended) << 7
    )
    out = bytes((control,))
    if isinstance(frame, ApsData):
        if (mode == DeliveryMode.GROUP) != (frame.dst_endpoint is None):
            raise EncodeError("dst_endpoint is None exactly for group delivery")
        if (mode == DeliveryMode.GROUP) != (frame.group is not None):
            raise EncodeError("group is set exactly for group delivery")
        if frame.group is not None:
            out += u16(frame.group, "group")
        else:
            out += u8(frame.dst_endpoint, "dst_endpoint")  # type: ignore[arg-type]
        out += u16(frame.cluster_id, "cluster_id") + u16(frame.profile_id, "profile_id")
        out += u8(frame.src_endpoint, "src_endpoint")
    elif isinstance(frame, ApsAck) and not ack_format:
        out += u8(frame.dst_endpoint, "dst_endpoint")  # type: ignore[arg-type]
        out += u16(frame.cluster_id, "cluster_id")  # type: ignore[arg-type]
        out += u16(frame.profile_id, "profile_id")  # type: ignore[arg-type]
        out += u8(frame.src_endpoint, "src_endpoint")  # type: ignore[arg-type]
    return out + u8(frame.counter, "counter") + extended


def encode_aps(
    frame: ApsFrame, key: bytes | None = None, *, nonce_source: bytes | None = None
) -> bytes:
    """The APS frame bytes, secured with ``key`` when ``frame.security`` is set.

    ``key`` is the link key itself (or the network key for key id 1); the
    key-transport/key-load hash is applied here according to the aux header.
    ``nonce_source`` is the sender's EUI-64 when the aux header has no source.
    """
    if type(frame) is ApsData and frame.security is None and type(frame.payload) is bytes:
        return _encode_header(frame) + frame.payload
    header = _encode_header(frame)
    if isinstance(frame, ApsData):
        body = frame.payload
        if not isinstance(body, bytes | bytearray | EncryptedPayload):
            raise EncodeError("an APS data frame needs a bytes payload")
    elif isinstance(frame, ApsCommand):
        body = (
            frame.command
            if isinstance(frame.command, EncryptedPayload)
            else _encode_command(frame.command)
        )
    elif frame.encrypted is None:
        body = b""
    elif isinstance(frame.encrypted, EncryptedPayload):
        body = frame.encrypted
    else:
        raise EncodeError("an ack's encrypted MIC must be an EncryptedPayload")
    if isinstance(body, EncryptedPayload):
        if frame.security is None:
            raise EncodeError("an EncryptedPayload needs the frame's security header")
        return header + frame.security.encode() + body.data
    if frame.security is None:
        return header + bytes(body)
    if key is None:
        raise EncodeError("an APS-secured frame needs a key")
    return header + security.encrypt(header, frame.security, bytes(body), key, nonce_source)


# -- decoding ---------------------------------------------------------------


def _decode_fragment(reader: Reader, is_ack: bool) -> Fragment | AckFragment:
    at = reader.offset
    control = reader.u8("extended frame control")
    if control & 0xFC:
        raise reader.error("extended frame control", "reserved bits 2-7 are set", at)
    kind = control & 0x03
    if kind == 0:
        raise reader.error("extended frame control", "extended header without fragmentation", at)
    if kind == 3:
        raise reader.error("extended frame control", "reserved fragmentation value 3", at)
    at = reader.offset
    number = reader.u8("block number")
    if is_ack:
        return AckFragment(kind == 1, number, reader.u8("ack bitfield"))
    if kind == 1:
        if number == 0:
            raise reader.error("block number", "a first block announcing 0 blocks", at)
        return Fragment(0, number)
    if number == 0:
        raise reader.error("block number", "a later block numbered 0", at)
    return Fragment(number)


def _decode_command(reader: Reader) -> ApsCommandBody:
    command_id = reader.u8("command id")
    body = reader.rest()
    if command_id != ApsCommandId.TRANSPORT_KEY or body[:1] not in _MODELLED_KEY_TYPES:
        return RawApsCommand(command_id, body)
    inner = Reader(body, LAYER, reader.offset - len(body))
    key_type = _KEY_TYPES[inner.u8("key type")]
    key = inner.take(16, "key")
    sequence = inner.u8("key sequence number") if key_type == KeyType.NETWORK else None
    command = TransportKey(
        key_type, key, inner.eui64("dst address"), inner.eui64("src address"), sequence
    )
    inner.end("transport key")
    return command


_TRANSPORT_NETWORK_KEY = struct.Struct("<BB16sB8s8s")  # id, type, key, sequence, dst, src
_TRANSPORT_LINK_KEY = struct.Struct("<BB16s8s8s")  # id, type, key, dst, src
_new_transport_key = builder(TransportKey)


def _command(plain: bytes, at: int) -> ApsCommandBody:
    """The command in ``plain`` (not empty) at offset ``at``: a Transport Key of the
    exact size unpacked at once, anything else read field by field."""
    if plain[0] == ApsCommandId.TRANSPORT_KEY:
        if len(plain) == _TRANSPORT_NETWORK_KEY.size and plain[1] == KeyType.NETWORK:
            _, _, key, sequence, dst, src = _TRANSPORT_NETWORK_KEY.unpack(plain)
            return _new_transport_key(KeyType.NETWORK, key, dst[::-1], src[::-1], sequence)
        if len(plain) == _TRANSPORT_LINK_KEY.size and plain[1] == KeyType.TRUST_CENTER_LINK:
            _, _, key, dst, src = _TRANSPORT_LINK_KEY.unpack(plain)
            return _new_transport_key(KeyType.TRUST_CENTER_LINK, key, dst[::-1], src[::-1], None)
    return _decode_command(Reader(plain, LAYER, at))


_new_data = builder(ApsData)
_new_command = builder(ApsCommand)
_new_fragment = builder(Fragment)


def _candidate_keys(
    link_keys: Mapping[bytes, bytes], parties: Sequence[bytes | None]
) -> list[bytes]:
    """Keys to try: those of the parties the frame names first, then every other one."""
    ordered: list[bytes] = []
    for party in parties:
        key = link_keys.get(party) if party is not None else None
        if key is not None and key not in ordered:
            ordered.append(key)
    ordered.extend(k for k in link_keys.values() if k not in ordered)
    return ordered


def decode_aps(
    data: bytes,
    link_keys: Mapping[bytes, bytes] | None = None,
    *,
    base: int = 0,
    partners: Sequence[bytes | None] = (),
    nonce_source: bytes | None = None,
    network_keys: Mapping[int, bytes] | None = None,
) -> ApsFrame:
    """Parse an APS frame, removing APS security when a key verifies.

    ``link_keys`` maps partner EUI-64s to link keys; the aux header's source
    and then ``partners`` (e.g. the NWK addresses; ``None`` entries are skipped)
    are tried first, then every other key, as a sniffer would. Without keys a
    secured payload stays an :class:`EncryptedPayload`; with keys of which none
    verifies raises :class:`VerificationError`. ``nonce_source`` is the sender's
    EUI-64 for aux headers without one (learnt from the NWK layer).
    """
    data = bytes(data)
    # Fast path: a data frame (unicast, broadcast or group; unfragmented or a plain
    # block) or a non-group command, whose header is all there. The rest, and
    # every error, is decoded field by field by _decode_checked before any key is
    # tried, so errors and their offsets are unchanged.
    if not data:
        return _decode_checked(data, link_keys, base, partners, nonce_source, network_keys)
    control = data[0]
    kind = control & 0x03
    mode = _MODES[(control >> 2) & 0x03]
    if mode is None or control & 0x10 or kind > 1:
        return _decode_checked(data, link_keys, base, partners, nonce_source, network_keys)
    dst_endpoint = group = cluster = profile = src_endpoint = None
    if kind == 0:
        head = _DATA_HEAD if mode is not DeliveryMode.GROUP else _GROUP_HEAD
        pos = head.size
        if len(data) < pos:
            return _decode_checked(data, link_keys, base, partners, nonce_source, network_keys)
        if mode is DeliveryMode.GROUP:
            _, group, cluster, profile, src_endpoint, counter = head.unpack_from(data)
        else:
            _, dst_endpoint, cluster, profile, src_endpoint, counter = head.unpack_from(data)
    else:
        if mode is DeliveryMode.GROUP or control & 0x80 or len(data) < 2:
            return _decode_checked(data, link_keys, base, partners, nonce_source, network_keys)
        counter = data[1]
        pos = 2
    frag: Fragment | None = None
    if control & 0x80:
        if len(data) < pos + 2:
            return _decode_checked(data, link_keys, base, partners, nonce_source, network_keys)
        extended, number = data[pos], data[pos + 1]
        if extended == 1 and number:
            frag = _new_fragment(0, number)
        elif extended == 2 and number:
            frag = _new_fragment(number, None)
        else:
            return _decode_checked(data, link_keys, base, partners, nonce_source, network_keys)
        pos += 2
    aux = None
    plain: bytes | EncryptedPayload
    if control & 0x20:
        peeked = _peek_aux(data, pos)
        if peeked is None or len(data) - peeked[1] < security.MIC_LENGTH:
            return _decode_checked(data, link_keys, base, partners, nonce_source, network_keys)
        aux, payload_at = peeked
        plain = _unprotect(
            data, pos, payload_at, aux, link_keys, network_keys, partners, nonce_source
        )
    else:
        payload_at = pos
        plain = data[pos:]
    if kind == 0:
        return _new_data(
            cluster,  # type: ignore[arg-type]
            profile,  # type: ignore[arg-type]
            src_endpoint,  # type: ignore[arg-type]
            dst_endpoint,
            counter,
            plain,
            mode,
            group,
            bool(control & 0x40),
            frag,
            aux,
        )
    command: ApsCommandBody | EncryptedPayload = plain  # type: ignore[assignment]
    if isinstance(plain, bytes):
        if not plain:
            raise DecodeError(LAYER, "command id", base + payload_at, "empty command frame")
        command = _command(plain, base + payload_at)
    return _new_command(counter, command, aux, mode, bool(control & 0x40))


def _decode_checked(
    data: bytes,
    link_keys: Mapping[bytes, bytes] | None,
    base: int,
    partners: Sequence[bytes | None],
    nonce_source: bytes | None,
    network_keys: Mapping[int, bytes] | None,
) -> ApsFrame:
    """decode_aps field by field: every malformation raises its precise DecodeError."""
    reader = Reader(data, LAYER, base)
    control = reader.u8("frame control")
    kind_value = control & 0x03
    if kind_value == 3:
        raise reader.error("frame type", "inter-PAN frames are not supported", base)
    kind = _FRAME_TYPES[kind_value]
    mode_value = (control >> 2) & 0x03
    if mode_value == 1:
        raise reader.error("delivery mode", "reserved delivery mode 1", base)
    mode = _MODES[mode_value]
    ack_format = bool(control & 0x10)
    if ack_format and kind != ApsFrameType.ACK:
        raise reader.error("frame control", "ack format bit set on a non-ack frame", base)
    if kind == ApsFrameType.ACK and mode != DeliveryMode.UNICAST:
        raise reader.error("delivery mode", "acks are unicast", base)
    if kind == ApsFrameType.COMMAND and mode == DeliveryMode.GROUP:
        raise reader.error("delivery mode", "APS commands are not group-addressed", base)
    if kind == ApsFrameType.ACK and control & 0x40:
        raise reader.error("frame control", "an ack does not request an ack", base)
    dst_endpoint = group = cluster = profile = src_endpoint = None
    if kind == ApsFrameType.DATA or (kind == ApsFrameType.ACK and not ack_format):
        if mode == DeliveryMode.GROUP:
            group = reader.u16("group address")
        else:
            dst_endpoint = reader.u8("dst endpoint")
        cluster = reader.u16("cluster id")
        profile = reader.u16("profile id")
        src_endpoint = reader.u8("src endpoint")
    counter = reader.u8("counter")
    frag: Fragment | AckFragment | None = None
    if control & 0x80:
        if kind == ApsFrameType.COMMAND:
            raise reader.error("frame control", "extended header on a command", base)
        frag = _decode_fragment(reader, kind == ApsFrameType.ACK)
    header_end = reader.position
    aux = None
    payload_at = reader.offset
    plain: bytes | EncryptedPayload
    if control & 0x20:
        aux = AuxHeader.decode(reader)
        payload_at = reader.offset
        aux_end = reader.position
        if reader.remaining() < security.MIC_LENGTH:
            raise reader.error("mic", "secured payload shorter than the MIC", payload_at)
        plain = _unprotect(
            data, header_end, aux_end, aux, link_keys, network_keys, partners, nonce_source
        )
    else:
        plain = reader.rest()
    if kind == ApsFrameType.DATA:
        return ApsData(
            cluster,  # type: ignore[arg-type]
            profile,  # type: ignore[arg-type]
            src_endpoint,  # type: ignore[arg-type]
            dst_endpoint,
            counter,
            plain,
            mode,
            group,
            bool(control & 0x40),
            frag,  # type: ignore[arg-type]
            aux,
        )
    if kind == ApsFrameType.COMMAND:
        command: ApsCommandBody | EncryptedPayload = plain  # type: ignore[assignment]
        if isinstance(plain, bytes):
            if not plain:
                raise DecodeError(LAYER, "command id", payload_at, "empty command frame")
            command = _decode_command(Reader(plain, LAYER, payload_at))
        return ApsCommand(counter, command, aux, mode, bool(control & 0x40))
    encrypted = None
    if isinstance(plain, EncryptedPayload):
        # Still sealed: an empty plaintext leaves exactly the MIC.
        if len(plain.data) != security.MIC_LENGTH:
            raise DecodeError(LAYER, "payload", payload_at, "an ack has no payload")
        encrypted = plain
    elif plain:
        raise DecodeError(LAYER, "payload", payload_at, "an ack has no payload")
    return ApsAck(counter, dst_endpoint, cluster, profile, src_endpoint, frag, aux, encrypted)  # type: ignore[arg-type]


def _unprotect(
    data: bytes,
    pos: int,
    end: int,
    aux: AuxHeader,
    link_keys: Mapping[bytes, bytes] | None,
    network_keys: Mapping[int, bytes] | None,
    partners: Sequence[bytes | None],
    nonce_source: bytes | None,
) -> bytes | EncryptedPayload:
    """The plaintext after the aux header ``aux`` at ``data[pos:end]``, if a key verifies it."""
    source = aux.source if aux.source is not None else nonce_source
    if aux.key_id == KeyId.NETWORK:
        key = (network_keys or {}).get(aux.key_sequence)  # type: ignore[arg-type]
        candidates = [key] if key is not None else []
    else:
        candidates = _candidate_keys(link_keys or {}, [aux.source, *partners])
    if not candidates or source is None:
        return EncryptedPayload(data[end:])
    failure: VerificationError | None = None
    for key in candidates:
        try:
            return _decrypt_received(data, pos, end, aux, key, source, LAYER)
        except VerificationError as exc:
            failure = exc
    assert failure is not None
    raise VerificationError(f"{failure} (tried {len(candidates)} key(s))")


# -- fragmentation ----------------------------------------------------------


def fragment(payload: bytes, max_block: int) -> list[tuple[Fragment, bytes]]:
    """Split an APS payload into blocks of at most ``max_block`` bytes (spec 2.2.8.4.5).

    Each item is the :class:`Fragment` for the block's extended header and the
    block's bytes; a payload that fits one block is still returned as one
    fragmented block, so call this only when fragmentation is wanted.
    """
    if max_block < 1:
        raise EncodeError(f"max_block must be positive, got {max_block}")
    blocks = [payload[i : i + max_block] for i in range(0, len(payload), max_block)] or [b""]
    if len(blocks) > MAX_BLOCKS:
        raise EncodeError(f"{len(blocks)} blocks exceed the APS limit of {MAX_BLOCKS}")
    return [
        (_new_fragment(0, len(blocks)) if i == 0 else _new_fragment(i, None), bytes(block))
        for i, block in enumerate(blocks)
    ]


def _collect(parts: Iterable[tuple[Fragment, bytes]]) -> tuple[int | None, dict[int, bytes]]:
    total = None
    blocks: dict[int, bytes] = {}
    for frag, block in parts:
        number, count = frag.block_number, frag.total_blocks
        # Refused, not skipped or overwritten: each would reassemble the wrong payload.
        if number < 0:
            raise FragmentError(f"block number {number} is negative")
        if count is not None and number != 0:
            raise FragmentError(f"block {number} carries total_blocks: only the first block does")
        if count is not None and total not in (None, count):
            raise FragmentError(f"the first block announced {total} and then {count} blocks")
        if number in blocks and blocks[number] != block:
            raise FragmentError(f"block {number} received twice with different data")
        blocks[number] = bytes(block)
        if count is not None:
            total = count
    return total, blocks


def missing_blocks(parts: Iterable[tuple[Fragment, bytes]]) -> tuple[int, ...]:
    """Block numbers still needed; block 0 alone is reported until it says how many exist."""
    total, blocks = _collect(parts)
    if total is None:
        return (0,)
    return tuple(n for n in range(total) if n not in blocks)


def reassemble(parts: Iterable[tuple[Fragment, bytes]]) -> bytes:
    """The APS payload from its blocks in any order; :class:`FragmentError` names gaps."""
    parts = list(parts)
    # Fast path: bytes blocks numbered 0..total-1, each once, only block 0 giving the
    # count (what fragment() makes). Anything else goes to _reassemble_checked, which
    # raises the precise FragmentError.
    blocks: dict[int, bytes] = {}
    total = None
    for part in parts:
        if type(part) is not tuple or len(part) != 2:
            break
        frag, block = part
        if type(frag) is not Fragment or type(block) is not bytes:
            break
        number = frag.block_number
        if type(number) is not int or number < 0 or number in blocks:
            break
        count = frag.total_blocks
        if count is not None:
            if number != 0 or type(count) is not int:
                break
            total = count
        blocks[number] = block
    else:
        if total is not None and max(blocks) < total:
            if len(blocks) == total:
                return b"".join([blocks[n] for n in range(total)])
            missing = tuple(n for n in range(total) if n not in blocks)
            raise FragmentError(f"blocks {list(missing)} of {total} are missing", missing)
    return _reassemble_checked(parts)


def _reassemble_checked(parts: list[tuple[Fragment, bytes]]) -> bytes:
    total, blocks = _collect(parts)
    if total is None:
        raise FragmentError("the first block (with the block count) is missing", (0,))
    extra = sorted(n for n in blocks if n >= total)
    if extra:
        raise FragmentError(f"blocks {extra} are beyond the announced {total}")
    missing = missing_blocks(parts)
    if missing:
        raise FragmentError(f"blocks {list(missing)} of {total} are missing", missing)
    return b"".join(blocks[n] for n in range(total))


# -- ZDO Device_annce -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceAnnounce:
    """ZDO Device_annce (spec 2.4.3.1.11): a device tells the network its addresses."""

    sequence: int
    nwk_address: int
    ieee: bytes
    capability: Capability

    def encode(self) -> bytes:
        check_range(self.sequence, 8, "sequence")
        check_range(self.nwk_address, 16, "nwk_address")
        return (
            bytes((self.sequence,))
            + u16(self.nwk_address, "nwk_address")
            + eui64(self.ieee, "ieee")
            + self.capability.encode()
        )

    @classmethod
    def decode(cls, data: bytes, *, base: int = 0) -> DeviceAnnounce:
        # Fast path: exactly the 12 bytes, capability reserved bits clear.
        if (
            cls is DeviceAnnounce
            and type(data) is bytes
            and len(data) == _ANNOUNCE.size
            and not data[11] & 0x30
        ):
            sequence, nwk_address, ieee, capability = _ANNOUNCE.unpack(data)
            return _new_announce(sequence, nwk_address, ieee[::-1], _capability(capability))
        return cls._decode_checked(data, base)

    @classmethod
    def _decode_checked(cls, data: bytes, base: int) -> DeviceAnnounce:
        reader = Reader(data, "zdo", base)
        announce = cls(
            reader.u8("transaction sequence"),
            reader.u16("nwk address"),
            reader.eui64("ieee address"),
            Capability.decode(reader),
        )
        reader.end("device announce")
        return announce


_ANNOUNCE = struct.Struct("<BH8sB")  # sequence, nwk address, ieee, capability
_new_announce = builder(DeviceAnnounce)


def device_announce_frame(announce: DeviceAnnounce, counter: int) -> ApsData:
    """The APS frame of a Device_annce: ZDO endpoint 0 to 0, broadcast delivery."""
    return ApsData(
        DEVICE_ANNOUNCE_CLUSTER,
        ZDO_PROFILE,
        0,
        0,
        counter,
        announce.encode(),
        DeliveryMode.BROADCAST,
    )


def parse_device_announce(frame: ApsData, *, base: int = 0) -> DeviceAnnounce:
    """The Device_annce an APS data frame carries (DecodeError when it is not one)."""
    if (frame.profile_id, frame.cluster_id) != (ZDO_PROFILE, DEVICE_ANNOUNCE_CLUSTER):
        raise DecodeError(
            "zdo",
            "cluster id",
            base,
            f"profile 0x{frame.profile_id:04X} cluster 0x{frame.cluster_id:04X} "
            "is not Device_annce",
        )
    if isinstance(frame.payload, EncryptedPayload):
        raise DecodeError("zdo", "payload", base, "payload is still encrypted")
    return DeviceAnnounce.decode(frame.payload, base=base)
