"""ZigBee CCM* frame security at level 5 (ENC-MIC-32) and the keys it uses.

Facts from the ZigBee specification (05-3474, "Pro 2007" and later):

* Auxiliary security header (4.5.1): security control byte (level bits 0-2, key
  identifier bits 3-4, extended nonce bit 5), frame counter (4 bytes LE), the
  sender's EUI-64 when the extended-nonce bit is set, and the key sequence
  number when the key identifier is the network key.
* The security level is never sent: the sender secures with level 5 and then
  overwrites the level bits with 0 (4.3.1.1 step 8, 4.4.1.1). Receivers patch 5
  back in, both in the nonce and in the authenticated header bytes.
* CCM* nonce (4.5.2.2): source EUI-64 (8 bytes, in the little-endian order it
  has on the air), frame counter (4 bytes LE), security control byte (level 5).
  With a 13-byte nonce and a 4-byte MIC, CCM* at this level is plain CCM, which
  ``cryptography``'s :class:`AESCCM` implements.
* Authenticated data ``a`` is the layer's header up to and including the
  auxiliary header; the payload is encrypted; the MIC follows it.
* Key-transport key = HMAC-MMO(link key, 0x00), key-load key = HMAC-MMO(link
  key, 0x02) (B.1.4, 4.5.3). Wireshark derives them the same way.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from zigpy.util import aes_mmo_hash

from gbcs.errors import EncodeError, VerificationError

from ._wire import Reader, builder, check_range, eui64, u8, u32

__all__ = [
    "FRAME_COUNTER_LIMIT",
    "LEVEL_ENC_MIC_32",
    "MIC_LENGTH",
    "AuxHeader",
    "EncryptedPayload",
    "FrameCounterExhausted",
    "KeyId",
    "ccm_key",
    "decrypt",
    "encrypt",
    "hmac_mmo",
    "key_load_key",
    "key_transport_key",
    "make_nonce",
    "new_cipher",
    "seal",
    "unseal",
]

LEVEL_ENC_MIC_32 = 5
MIC_LENGTH = 4
# An outgoing frame counter of 2^32-1 fails security processing (ZigBee 4.3.1.1 step 1,
# 4.4.1.1 step 1): the last value a secured frame may carry is 2^32-2.
FRAME_COUNTER_LIMIT = 0xFFFFFFFF
_BLOCK = 16
_LEVEL_MASK = 0x07
_KEY_ID_SHIFT = 3
_EXTENDED_NONCE = 0x20
_RESERVED = 0xC0
_AUX_HEAD = struct.Struct("<BI")  # security control, frame counter
_U32 = struct.Struct("<I")
_NONCE_TAIL = struct.Struct("<IB")  # frame counter, security control


class FrameCounterExhausted(EncodeError):
    """A node's outgoing frame counter is used up: it can secure no more frames with its
    key (only a new key, which the kit does not distribute, would let it talk again)."""


class KeyId(IntEnum):
    """Key identifier sub-field of the security control byte (spec 4.5.1.1.2)."""

    LINK = 0  # "data key": a link key used as is
    NETWORK = 1
    KEY_TRANSPORT = 2  # HMAC-MMO(link key, 0x00)
    KEY_LOAD = 3  # HMAC-MMO(link key, 0x02)


@dataclass(frozen=True, slots=True)
class AuxHeader:
    """Auxiliary security header as sent (level bits 0).

    ``source`` (display-order EUI-64) is present exactly when the extended-nonce
    bit is set; ``key_sequence`` exactly when ``key_id`` is the network key.
    """

    key_id: KeyId
    frame_counter: int
    source: bytes | None = None
    key_sequence: int | None = None

    def control(self, level: int = 0) -> int:
        """The security control byte; ``level`` 5 for the nonce and the MIC input."""
        nonce_bit = _EXTENDED_NONCE if self.source is not None else 0
        return level | (int(self.key_id) << _KEY_ID_SHIFT) | nonce_bit

    def encode(self, level: int = 0) -> bytes:
        # Fast path for the plainly valid headers every frame carries; anything else
        # (and every error) goes through _encode_checked, field by field.
        key_id = self.key_id
        counter = self.frame_counter
        if (
            type(key_id) is KeyId
            and type(level) is int
            and 0 <= level <= _LEVEL_MASK
            and type(counter) is int
            and 0 <= counter <= 0xFFFFFFFF
        ):
            source = self.source
            sequence = self.key_sequence
            if source is None:
                if sequence is None and key_id is not KeyId.NETWORK:
                    return _AUX_HEAD.pack(level | key_id << _KEY_ID_SHIFT, counter)
            elif type(source) is bytes and len(source) == 8:
                head = _AUX_HEAD.pack(level | key_id << _KEY_ID_SHIFT | _EXTENDED_NONCE, counter)
                if key_id is KeyId.NETWORK:
                    if type(sequence) is int and 0 <= sequence <= 0xFF:
                        return head + source[::-1] + bytes((sequence,))
                elif sequence is None:
                    return head + source[::-1]
        return self._encode_checked(level)

    def _encode_checked(self, level: int) -> bytes:
        # A wider key id or level would spill into the nonce and reserved bits.
        if self.key_id not in _KEY_IDS:
            raise EncodeError(f"key_id {self.key_id!r} is not a key identifier (0-3)")
        check_range(level, 3, "security level")
        if (self.key_sequence is not None) != (self.key_id == KeyId.NETWORK):
            raise EncodeError("key_sequence is present exactly for the network key")
        out = bytes((self.control(level),)) + u32(self.frame_counter, "frame_counter")
        if self.source is not None:
            out += eui64(self.source, "aux source")
        if self.key_sequence is not None:
            out += u8(self.key_sequence, "key_sequence")
        return out

    @classmethod
    def decode(cls, reader: Reader) -> AuxHeader:
        at = reader.offset
        control = reader.u8("security control")
        if control & _LEVEL_MASK:
            raise reader.error(
                "security control",
                f"security level {control & _LEVEL_MASK} on the air; ZigBee sends 0 (spec 4.3.1.1)",
                at,
            )
        if control & _RESERVED:
            raise reader.error("security control", "reserved bits 6-7 are set", at)
        key_id = _KEY_IDS[(control >> _KEY_ID_SHIFT) & 0x03]
        counter = reader.u32("frame counter")
        source = reader.eui64("extended source") if control & _EXTENDED_NONCE else None
        sequence = reader.u8("key sequence number") if key_id == KeyId.NETWORK else None
        return cls(key_id, counter, source, sequence)


_KEY_IDS = tuple(KeyId)  # KeyId(i) is _KEY_IDS[i], without the enum call
_new_aux = builder(AuxHeader)
# Display-order sources by their on-air bytes: a network has few senders, and
# receivers keep sources (replay windows), so they share one bytes object.
_SOURCE_CACHE_SIZE = 1024
_sources: dict[bytes, bytes] = {}


def _source(on_air: bytes) -> bytes:
    """The display-order EUI-64 for 8 on-air bytes, shared through ``_sources``.

    Callers try ``_sources.get`` first, which saves this call for a known sender.
    """
    source = _sources.get(on_air)
    if source is None:
        source = on_air[::-1]
        if len(_sources) >= _SOURCE_CACHE_SIZE:
            _sources.clear()
        _sources[on_air] = source
    return source


def _peek_aux(data: bytes, pos: int) -> tuple[AuxHeader, int] | None:
    """The aux header at ``data[pos:]`` and the offset after it, when plainly well-formed.

    ``None`` for anything :meth:`AuxHeader.decode` might refuse (short data,
    level or reserved bits set): the caller then decodes field by field to
    report the exact error.
    """
    end = pos + 5
    if end > len(data):
        return None
    control = data[pos]
    if control & (_LEVEL_MASK | _RESERVED):
        return None
    key_id = (control >> _KEY_ID_SHIFT) & 0x03
    counter = _U32.unpack_from(data, pos + 1)[0]
    source = None
    if control & _EXTENDED_NONCE:
        pos = end
        end += 8
        if end > len(data):
            return None
        on_air = data[pos:end]
        source = _sources.get(on_air) or _source(on_air)
    sequence = None
    if key_id == 1:  # KeyId.NETWORK
        if end >= len(data):
            return None
        sequence = data[end]
        end += 1
    return _new_aux(_KEY_IDS[key_id], counter, source, sequence), end


# NWK security always uses the network key with the extended nonce (spec 4.3.1.1), so
# its aux header has one layout: control, frame counter, source, key sequence number.
_NWK_AUX = struct.Struct("<BI8sB")  # the control byte, then _NWK_AUX_TAIL
_NWK_AUX_TAIL = struct.Struct("<I8sB")  # frame counter, on-air source, key sequence
_NWK_AUX_CONTROL = KeyId.NETWORK << _KEY_ID_SHIFT | _EXTENDED_NONCE  # as sent: level 0
_NWK_AUX_LENGTH = _NWK_AUX.size
# ... and its control byte as authenticated (level 5) and as sent.
_NWK_SECURED = _NWK_AUX_CONTROL | LEVEL_ENC_MIC_32
_NWK_SENT = bytes((_NWK_AUX_CONTROL,))


def _peek_nwk_aux(data: bytes, pos: int) -> AuxHeader:
    """The NWK aux header at ``data[pos:]``; the caller has checked that it is all there
    and that its control byte is :data:`_NWK_AUX_CONTROL`, the only one NWK security uses.
    """
    counter, on_air, sequence = _NWK_AUX_TAIL.unpack_from(data, pos + 1)
    return _new_aux(KeyId.NETWORK, counter, _sources.get(on_air) or _source(on_air), sequence)


@dataclass(frozen=True, slots=True)
class EncryptedPayload:
    """Ciphertext plus MIC left as received because no key was given to remove it.

    Encoding a frame that carries one writes the bytes back unchanged, so a
    sniffer can re-emit what it captured.
    """

    data: bytes


def hmac_mmo(key: bytes, message: bytes) -> bytes:
    """Keyed hash for message authentication (spec B.1.4): HMAC over the AES-MMO hash."""
    if len(key) != _BLOCK:
        raise EncodeError(f"HMAC-MMO key must be 16 bytes, got {len(key)}")
    inner = bytes(aes_mmo_hash(bytes(b ^ 0x36 for b in key) + bytes(message)))
    return bytes(aes_mmo_hash(bytes(b ^ 0x5C for b in key) + inner))


def key_transport_key(link_key: bytes) -> bytes:
    """Key that secures Transport Key commands carrying a network key (spec 4.5.3)."""
    return hmac_mmo(link_key, b"\x00")


def key_load_key(link_key: bytes) -> bytes:
    """Key that secures Transport Key commands carrying a link key (spec 4.5.3)."""
    return hmac_mmo(link_key, b"\x02")


def ccm_key(key_id: KeyId, key: bytes) -> bytes:
    """The AES key CCM* uses for ``key_id``, given the network or link key itself."""
    if key_id == KeyId.KEY_TRANSPORT:
        return key_transport_key(key)
    if key_id == KeyId.KEY_LOAD:
        return key_load_key(key)
    if len(key) != _BLOCK:
        raise EncodeError(f"key must be 16 bytes, got {len(key)}")
    return bytes(key)


def make_nonce(source: bytes, frame_counter: int, control: int) -> bytes:
    """13-byte CCM* nonce (spec 4.5.2.2); ``source`` in display order, sent little-endian."""
    if (
        type(source) is bytes
        and len(source) == 8
        and type(frame_counter) is int
        and 0 <= frame_counter <= 0xFFFFFFFF
        and type(control) is int
        and 0 <= control <= 0xFF
    ):
        return source[::-1] + _NONCE_TAIL.pack(frame_counter, control)
    head = eui64(source, "nonce source")
    return head + u32(frame_counter, "frame_counter") + u8(control, "security control")


def new_cipher(key_id: KeyId, key: bytes) -> AESCCM:
    """The CCM* cipher ``key_id`` uses with ``key``: HMAC-MMO derivation (key-transport and
    key-load keys) and the AES key schedule.

    This, :func:`seal` and :func:`unseal` are all the cryptographic work of this module;
    the codec calls them through their global names so a benchmark can record them.
    """
    return AESCCM(ccm_key(key_id, key), MIC_LENGTH)


def seal(cipher: AESCCM, nonce: bytes, payload: bytes, adata: bytes) -> bytes:
    """CCM* encryption: ``payload`` encrypted and the MIC over ``adata`` and it appended."""
    return cipher.encrypt(nonce, payload, adata)


def unseal(cipher: AESCCM, nonce: bytes, sealed: bytes, adata: bytes) -> bytes:
    """CCM* decryption of ciphertext + MIC; raises :class:`InvalidTag` when the MIC fails."""
    return cipher.decrypt(nonce, sealed, adata)


# AESCCM objects by key, one cache per key id: building one (and, for the key-transport
# and key-load keys, the HMAC-MMO derivation) costs more than sealing a frame, and a
# trust centre deriving one key-transport key per joining device does not evict the
# network key. Only exact ``bytes`` keys are cached, so every error still comes from
# ccm_key. (Indexing by the KeyId is cheaper than hashing it: IntEnum hashes slowly.)
_CIPHER_CACHE_SIZE = 32
_ciphers: tuple[dict[bytes, AESCCM], ...] = tuple({} for _ in KeyId)


def _cipher(key_id: KeyId, key: bytes) -> AESCCM:
    if type(key) is not bytes or type(key_id) is not KeyId:
        return new_cipher(key_id, key)
    cache = _ciphers[key_id]
    cipher = cache.get(key)
    if cipher is None:
        cipher = new_cipher(key_id, key)
        if len(cache) >= _CIPHER_CACHE_SIZE:
            cache.clear()
        cache[key] = cipher
    return cipher


def _plain_aux(aux: AuxHeader, nonce_source: bytes | None) -> bool:
    """Whether make_nonce and aux.control cannot fail for ``aux`` (the usual case)."""
    if type(aux) is not AuxHeader:
        return False
    source = aux.source if aux.source is not None else nonce_source
    counter = aux.frame_counter
    return (
        type(aux.key_id) is KeyId
        and type(source) is bytes
        and len(source) == 8
        and type(counter) is int
        and 0 <= counter <= 0xFFFFFFFF
    )


def _nonce_source(aux: AuxHeader, nonce_source: bytes | None) -> bytes:
    source = aux.source if aux.source is not None else nonce_source
    if source is None:
        raise EncodeError("no extended nonce in the aux header and no nonce_source given")
    return source


def encrypt(
    header: bytes, aux: AuxHeader, payload: bytes, key: bytes, nonce_source: bytes | None = None
) -> bytes:
    """Aux header (level 0) + encrypted ``payload`` + MIC, to follow ``header`` on the air.

    ``key`` is the network or link key; key-transport and key-load keys are
    derived here from ``aux.key_id``. ``nonce_source`` is the sender's EUI-64
    when ``aux`` carries none.
    """
    if _plain_aux(aux, nonce_source):
        source = aux.source if aux.source is not None else nonce_source
        adata = bytes(header)
        secured = aux.encode(LEVEL_ENC_MIC_32)
        nonce = source[::-1] + _NONCE_TAIL.pack(aux.frame_counter, secured[0])  # type: ignore[index]
        sealed = seal(_cipher(aux.key_id, key), nonce, bytes(payload), adata + secured)
        # the same header as sent: level bits 0 (aux.encode())
        return bytes((secured[0] ^ LEVEL_ENC_MIC_32,)) + secured[1:] + sealed
    source = _nonce_source(aux, nonce_source)
    adata = bytes(header) + aux.encode(LEVEL_ENC_MIC_32)  # first: it checks the key id
    nonce = make_nonce(source, aux.frame_counter, aux.control(LEVEL_ENC_MIC_32))
    sealed = seal(_cipher(aux.key_id, key), nonce, bytes(payload), adata)
    return aux.encode() + sealed


def _encrypt_network(
    header: bytes, payload: bytes, key: bytes, counter: int, source: bytes, sequence: int
) -> bytes | None:
    """``encrypt(header, AuxHeader(NETWORK, counter, source, sequence), payload, key)``,
    packing the aux header once, for a bytes header and payload and plainly valid
    values; ``None`` for anything else (the caller then calls :func:`encrypt`).
    """
    if (
        type(header) is not bytes
        or type(payload) is not bytes
        or type(counter) is not int
        or type(sequence) is not int
        or type(source) is not bytes
        or len(source) != 8
    ):
        return None
    try:
        secured = _NWK_AUX.pack(_NWK_SECURED, counter, source[::-1], sequence)
    except struct.error:
        return None
    nonce = secured[5:13] + secured[1:5] + secured[:1]
    sealed = seal(_cipher(KeyId.NETWORK, key), nonce, payload, header + secured)
    return _NWK_SENT + secured[1:] + sealed


def _mic_failure(layer: str, aux: AuxHeader, source: bytes) -> VerificationError:
    """What decrypt raises when the MIC does not verify (its text names key and frame)."""
    return VerificationError(
        f"{layer}: MIC does not verify with the {aux.key_id.name.lower().replace('_', '-')} "
        f"key (frame counter {aux.frame_counter}, source {source.hex().upper()})"
    )


def decrypt(
    header: bytes,
    aux: AuxHeader,
    sealed: bytes,
    key: bytes,
    nonce_source: bytes | None = None,
    *,
    layer: str = "zigbee",
) -> bytes:
    """The plaintext of ``sealed`` (ciphertext + MIC) that followed ``header`` and ``aux``.

    Raises :class:`VerificationError` when the MIC does not verify with ``key``.
    """
    source = _nonce_source(aux, nonce_source)
    if len(sealed) < MIC_LENGTH:
        raise VerificationError(f"{layer}: secured payload of {len(sealed)} bytes has no MIC")
    if _plain_aux(aux, nonce_source):
        adata = bytes(header)
        secured = aux.encode(LEVEL_ENC_MIC_32)
        nonce = source[::-1] + _NONCE_TAIL.pack(aux.frame_counter, secured[0])
        adata += secured
    else:
        adata = bytes(header) + aux.encode(LEVEL_ENC_MIC_32)  # first: it checks the key id
        nonce = make_nonce(source, aux.frame_counter, aux.control(LEVEL_ENC_MIC_32))
    try:
        return unseal(_cipher(aux.key_id, key), nonce, bytes(sealed), adata)
    except InvalidTag:
        raise _mic_failure(layer, aux, source) from None


def _decrypt_received(
    data: bytes,
    pos: int,
    end: int,
    aux: AuxHeader,
    key: bytes,
    nonce_source: bytes | None,
    layer: str,
) -> bytes:
    """``decrypt(data[:pos], aux, data[end:], key, nonce_source, layer=layer)`` where
    ``aux`` was decoded from ``data[pos:end]`` (level bits 0, as every decoder insists).

    Nonce and authenticated data are cut from the received bytes (level 5 patched
    into the control byte) instead of encoding the header again. The caller has
    checked that a MIC fits; without a usable nonce source this is :func:`decrypt`.
    """
    source = aux.source
    if source is None:
        source = nonce_source
        if type(source) is not bytes or len(source) != 8:
            return decrypt(data[:pos], aux, data[end:], key, nonce_source, layer=layer)
        on_air = source[::-1]
    else:
        on_air = data[pos + 5 : pos + 13]
    control = bytes((data[pos] | LEVEL_ENC_MIC_32,))
    counter = data[pos + 1 : pos + 5]
    try:
        return unseal(
            _cipher(aux.key_id, key),
            on_air + counter + control,
            data[end:],
            data[:pos] + control + data[pos + 1 : end],
        )
    except InvalidTag:
        raise _mic_failure(layer, aux, source) from None
