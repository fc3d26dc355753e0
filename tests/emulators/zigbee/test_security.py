"""CCM* level 5, the auxiliary header, and the HMAC-MMO key derivations."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from zigpy.util import aes_mmo_hash

from emulators.zigbee._wire import Reader
from emulators.zigbee.security import (
    AuxHeader,
    KeyId,
    ccm_key,
    decrypt,
    encrypt,
    hmac_mmo,
    key_load_key,
    key_transport_key,
    make_nonce,
)
from gbcs.errors import DecodeError, EncodeError, VerificationError

from .checks import every_prefix_fails
from .strategies import aux_headers, eui64, keys

# ZigBee specification 05-3474, annex C.5.1 (hash of the one-byte message C0)
# and C.6.1 (keyed hash, key 40..4F, message C0).
MMO_VECTOR = ("C0", "AE3A102A28D43EE0D4A09E22788B206C")
HMAC_VECTOR = ("404142434445464748494A4B4C4D4E4F", "C0", "4512807BF94CB3400F0E2C25FB76E999")
SOURCE = bytes.fromhex("00124B0001020304")


def test_mmo_hash_vector() -> None:
    """zigpy's AES-MMO is the hash the HMAC builds on (spec C.5.1)."""
    assert bytes(aes_mmo_hash(bytes.fromhex(MMO_VECTOR[0]))).hex().upper() == MMO_VECTOR[1]


def test_hmac_mmo_vector() -> None:
    key, message, mac = (bytes.fromhex(x) for x in HMAC_VECTOR)
    assert hmac_mmo(key, message) == mac


def test_key_transport_and_load_keys_hash_different_bytes() -> None:
    link = bytes(range(16))
    assert key_transport_key(link) == hmac_mmo(link, b"\x00")
    assert key_load_key(link) == hmac_mmo(link, b"\x02")
    assert key_transport_key(link) != key_load_key(link)
    assert ccm_key(KeyId.KEY_TRANSPORT, link) == key_transport_key(link)
    assert ccm_key(KeyId.KEY_LOAD, link) == key_load_key(link)
    assert ccm_key(KeyId.LINK, link) == link
    assert ccm_key(KeyId.NETWORK, link) == link


def test_nonce_layout() -> None:
    """Source little-endian as on the air, counter LE, control with level 5 (spec 4.5.2.2)."""
    aux = AuxHeader(KeyId.NETWORK, 0x01020304, SOURCE, 0)
    nonce = make_nonce(SOURCE, aux.frame_counter, aux.control(5))
    assert nonce.hex() == "04030201004b1200" + "04030201" + "2d"


def test_aux_header_bytes() -> None:
    aux = AuxHeader(KeyId.NETWORK, 0x01020304, SOURCE, 7)
    assert aux.encode().hex() == "28" + "04030201" + "04030201004b1200" + "07"
    assert AuxHeader(KeyId.KEY_TRANSPORT, 1, SOURCE).encode()[0] == 0x30
    assert AuxHeader(KeyId.LINK, 1).encode().hex() == "0001000000"


@given(aux_headers())
def test_aux_header_round_trip(aux: AuxHeader) -> None:
    data = aux.encode()
    assert AuxHeader.decode(Reader(data, "test")) == aux
    every_prefix_fails(lambda b: AuxHeader.decode(Reader(b, "test")), data)


def test_aux_header_refuses_level_on_air() -> None:
    data = bytearray(AuxHeader(KeyId.NETWORK, 1, SOURCE, 0).encode())
    data[0] |= 5
    with pytest.raises(DecodeError, match="security level 5"):
        AuxHeader.decode(Reader(bytes(data), "test"))


@pytest.mark.parametrize("bit", [0x40, 0x80])
def test_aux_header_refuses_reserved_control_bits(bit: int) -> None:
    """Security control bits 6-7 are reserved (spec 4.5.1.1)."""
    data = bytearray(AuxHeader(KeyId.NETWORK, 1, SOURCE, 0).encode())
    data[0] |= bit
    with pytest.raises(DecodeError, match="reserved bits 6-7"):
        AuxHeader.decode(Reader(bytes(data), "test"))


def test_aux_header_key_sequence_only_for_network_key() -> None:
    with pytest.raises(EncodeError):
        AuxHeader(KeyId.LINK, 1, SOURCE, 3).encode()
    with pytest.raises(EncodeError):
        AuxHeader(KeyId.NETWORK, 1, SOURCE).encode()
    with pytest.raises(EncodeError):  # nor without the extended nonce
        AuxHeader(KeyId.NETWORK, 1).encode()


@given(
    aux_headers(),
    keys,
    st.binary(max_size=8),
    st.binary(max_size=40),
    eui64,
)
def test_encrypt_decrypt_round_trip(
    aux: AuxHeader, key: bytes, header: bytes, payload: bytes, sender: bytes
) -> None:
    sealed = encrypt(header, aux, payload, key, sender)
    aux_len = len(aux.encode())
    assert sealed[:aux_len] == aux.encode()
    assert len(sealed) == aux_len + len(payload) + 4
    assert decrypt(header, aux, sealed[aux_len:], key, sender) == payload


@given(
    aux_headers(), keys, st.binary(min_size=1, max_size=8), st.binary(max_size=20), eui64, st.data()
)
def test_any_flipped_bit_fails_verification(
    aux: AuxHeader, key: bytes, header: bytes, payload: bytes, sender: bytes, data: st.DataObject
) -> None:
    sealed = encrypt(header, aux, payload, key, sender)[len(aux.encode()) :]
    where = data.draw(st.integers(0, len(sealed) + len(header) - 1))
    bit = 1 << data.draw(st.integers(0, 7))
    if where < len(sealed):
        broken = bytearray(sealed)
        broken[where] ^= bit
        args = (header, aux, bytes(broken))
    else:
        bad_header = bytearray(header)
        bad_header[where - len(sealed)] ^= bit
        args = (bytes(bad_header), aux, sealed)
    with pytest.raises(VerificationError, match="MIC does not verify"):
        decrypt(*args, key, sender)


def test_wrong_key_and_wrong_counter_fail() -> None:
    aux = AuxHeader(KeyId.NETWORK, 9, SOURCE, 0)
    key = bytes(16)
    sealed = encrypt(b"\x08\x02", aux, b"hello", key)[len(aux.encode()) :]
    with pytest.raises(VerificationError):
        decrypt(b"\x08\x02", aux, sealed, bytes([1]) + bytes(15))
    with pytest.raises(VerificationError):
        decrypt(b"\x08\x02", AuxHeader(KeyId.NETWORK, 10, SOURCE, 0), sealed, key)


def test_ciphertext_follows_the_spec_formula() -> None:
    """Independently built CCM (nonce and header with level 5) decrypts, and vice versa."""
    from cryptography.hazmat.primitives.ciphers.aead import AESCCM

    aux = AuxHeader(KeyId.NETWORK, 0x0A0B0C0D, SOURCE, 2)
    key = bytes(range(16))
    header = b"\x08\x02\x00\x00\x34\x12\x1e\x05"
    nonce = SOURCE[::-1] + (0x0A0B0C0D).to_bytes(4, "little") + b"\x2d"
    adata = header + b"\x2d" + aux.encode()[1:]
    reference = AESCCM(key, 4).encrypt(nonce, b"payload", adata)
    assert encrypt(header, aux, b"payload", key) == aux.encode() + reference
    assert decrypt(header, aux, reference, key) == b"payload"


def test_mic_level_is_five_even_though_zero_is_sent() -> None:
    """The authenticated header carries level 5: a level-0 MIC must not verify."""
    from cryptography.hazmat.primitives.ciphers.aead import AESCCM

    aux = AuxHeader(KeyId.NETWORK, 1, SOURCE, 0)
    key = bytes(range(16))
    wrong = AESCCM(key, 4).encrypt(
        make_nonce(SOURCE, 1, aux.control(0)), b"data", b"\x08\x02" + aux.encode()
    )
    with pytest.raises(VerificationError):
        decrypt(b"\x08\x02", aux, wrong, key)


def test_short_sealed_payload_and_missing_nonce_source() -> None:
    aux = AuxHeader(KeyId.LINK, 1)
    with pytest.raises(VerificationError, match="no MIC"):
        decrypt(b"", aux, b"\x00\x01", bytes(16), SOURCE)
    with pytest.raises(EncodeError, match="nonce_source"):
        encrypt(b"", aux, b"x", bytes(16))
