"""Cryptography end to end: the CRIB §3 worked values, the whole RTDS, tampering, test PKI.

The tamper tests are exhaustive on purpose: every byte of every protected
reference message is flipped, so a frame field that escapes both the MAC and
the signature, and is not pinned by the decoder either, shows up here.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gbcs import crypto
from gbcs.errors import DecodeError, EncodeError, KeyNotFoundError, VerificationError
from gbcs.frame import (
    CraFlag,
    FrameParts,
    GbcsMessage,
    GroupingHeader,
    OtherInformation,
    decode_message,
)
from gbcs.keys import FileKeyStore, KeyUsage, MemoryKeyStore
from gbcs.primitives import CosemDateTime
from gbcs.rtds import RtdsVector
from gbcs.security import CheckResult, SecurityContext
from gbcs.testpki import TestPki

VALID, INVALID, NO_KEY, ABSENT = (
    CheckResult.VALID,
    CheckResult.INVALID,
    CheckResult.NO_KEY,
    CheckResult.ABSENT,
)
ACB = bytes.fromhex("90B3D51F30000002")
SUPPLIER = bytes.fromhex("90B3D51F30010000")
ESME = bytes.fromhex("00DB1234567890A0")
CHF = bytes.fromhex("00DB1234567890A2")
CCS01_COMMAND = "CCS01_8.11_SUCCESS_COMMAND_GBCS.HEX"
ECS17B_RESPONSE = "ECS17b_4.1.1_SINGLE_SUCCESS_RESPONSE_GBCS.HEX"
# CRIB §3.2/§10: PPMID-originated device-to-device messages; the RTDS ships no
# device private keys, so their MACs cannot be checked.
PCS_NO_KEY = frozenset(
    {
        "PCS01_NA_SUCCESS_COMMAND_GBCS.HEX",
        "PCS01_NA_SUCCESS_RESPONSE_GBCS.HEX",
        "PCS02_NA_SUCCESS_COMMAND_GBCS.HEX",
        "PCS02_NA_SUCCESS_RESPONSE_GBCS.HEX",
    }
)
# Offsets inside the General-Signing APDU (CRIB §2.2) of the two ids that
# choose which keys check a MAC or signature.
BUSINESS_ORIGINATOR = range(12, 20)
BUSINESS_TARGET = range(21, 29)
FLIPS = (0xFF, 0x01)  # every bit of the byte, and the lowest bit alone

Decoded = tuple[RtdsVector, GbcsMessage, FrameParts]


@pytest.fixture(scope="module")
def rtds_ctx(rtds_root: Path) -> SecurityContext:
    """One context for the module, so its ECDH secret cache serves every check."""
    return SecurityContext(FileKeyStore(rtds_root / "keystore"))


@pytest.fixture(scope="module")
def decoded(corpus: list[RtdsVector]) -> list[Decoded]:
    return [(v, *decode_message(v.data)) for v in corpus]


def _message(decoded: list[Decoded], name: str) -> tuple[GbcsMessage, FrameParts]:
    for vector, message, parts in decoded:
        if vector.name == name:
            return message, parts
    raise AssertionError(f"{name} is not in the corpus")


def _sha_kdf(z: bytes, other_info: bytes) -> bytes:
    """CRIB §3.1 written out independently of gbcs.crypto.kdf."""
    return hashlib.sha256(b"\x00\x00\x00\x01" + z + other_info).digest()[:16]


# --- CRIB §3 worked values ----------------------------------------------------------


def test_kdf_worked_values(rtds_ctx: SecurityContext, decoded: list[Decoded]) -> None:
    """§3.1: CCS01 SUCCESS COMMAND, ACB private KA x CHF public KA."""
    z = rtds_ctx.shared_secret(ACB, CHF)
    assert z.hex() == "9689fab9f5e2642a4543b3bb8bd2f55c7ab31e45dfa566b18beead0bd46394ed"
    ks = rtds_ctx.keystore
    assert crypto.ecdh(ks.private_key(ACB, KeyUsage.KA), ks.public_key(CHF, KeyUsage.KA)) == z
    other_info = crypto.ALGORITHM_ID + ACB + b"\x09\x01" + (0x516).to_bytes(8, "big") + CHF
    assert other_info.hex() == (
        "6085740608030090b3d51f300000020901000000000000051600db1234567890a2"
    )
    assert len(other_info) == 33
    expected = "ef19f400cff3abb3692af5d54069eb47"
    assert _sha_kdf(z, other_info).hex() == expected
    assert crypto.kdf(z, ACB, 1, 0x516, CHF).hex() == expected
    message, _ = _message(decoded, CCS01_COMMAND)
    assert rtds_ctx.mac_pair(message.header) == (ACB, CHF)
    assert rtds_ctx.mac_key(message.header).hex() == expected
    # The DLMS-UA 0x05 AlgorithmID variant fails (CRIB §3.1).
    variant = bytes.fromhex("60857405080300") + other_info[7:]
    assert _sha_kdf(z, variant).hex() != expected


def test_mac_worked_values(rtds_ctx: SecurityContext, decoded: list[Decoded]) -> None:
    """§3.3: IV, 134-byte AAD, full GCM tag and the 12 bytes on the wire."""
    message, parts = _message(decoded, CCS01_COMMAND)
    key = rtds_ctx.mac_key(message.header)
    iv = message.header.business_originator + bytes(4)
    assert iv.hex() == "90b3d51f3000000200000000"
    aad = crypto.MAC_AAD_PREFIX + parts.signing_apdu
    assert len(aad) == 134
    assert aad.startswith(bytes.fromhex("110000000000DF0901"))
    full_tag = AESGCM(key).encrypt(iv, b"", aad)
    assert full_tag.hex() == "7c0607034dc39f5f321539660231182d"
    assert message.mac is not None and message.mac.hex() == "7c0607034dc39f5f32153966"
    assert crypto.gmac(key, message.header.business_originator, parts.signing_apdu) == message.mac
    assert rtds_ctx.check_mac(message, parts) is VALID
    assert rtds_ctx.compute_mac(message) == message.mac  # re-encoding gives the same APDU
    # Negative controls of CRIB §3.3: the 5-byte wire header or a bare SC as prefix.
    for prefix in (bytes.fromhex("1100000000"), b"\x11"):
        assert AESGCM(key).encrypt(iv, b"", prefix + parts.signing_apdu)[:12] != message.mac


def _protected_block(payload: bytes) -> bytes:
    """The ``31 00000000 ...`` octet-string near the end of a DLMS response (CRIB §5.1)."""
    start = payload.rindex(b"\x31\x00\x00\x00\x00")
    assert payload[start - 2] == 0x09, "A-XDR octet-string tag"
    length = payload[start - 1]
    assert length < 0x80, "one-byte A-XDR length"
    return payload[start : start + length]


def test_decryption_worked_values(rtds_ctx: SecurityContext, decoded: list[Decoded]) -> None:
    """§3.5: ECS17b SINGLE SUCCESS RESPONSE, supplier KA private x ESME KA, CRA byte 0x04."""
    message, _ = _message(decoded, ECS17B_RESPONSE)
    header = message.header
    block = _protected_block(message.payload)
    assert len(block) == 5 + 26 + 12
    parties = rtds_ctx.block_parties(header)
    assert (parties.originator, parties.far_party, parties.counter) == (ESME, SUPPLIER, 1000)
    other_info = crypto.ALGORITHM_ID + ESME + b"\x09\x04" + (1000).to_bytes(8, "big") + SUPPLIER
    assert other_info.hex() == "6085740608030000db1234567890a0090400000000000003e890b3d51f30010000"
    z = rtds_ctx.shared_secret(ESME, SUPPLIER)
    key = _sha_kdf(z, other_info)
    assert key.hex() == "12cb821c471ec2144c68e12a5657f9fd"
    assert rtds_ctx.block_key(header) == key
    plaintext = rtds_ctx.decrypt_block(header, block)
    assert plaintext.hex() == "02010204060000000a02020f00161e060000000a02020f001620"
    # GBCS fixes the IV (originator || 0), so re-encryption reproduces the RTDS bytes.
    assert crypto.encrypt_block(key, ESME, plaintext) == block
    # The header CRA (2) in place of 0x04 fails (CRIB §3.5).
    wrong = crypto.kdf(z, ESME, int(header.cra_flag), 1000, SUPPLIER)
    with pytest.raises(VerificationError):
        crypto.decrypt_block(wrong, ESME, block)


# --- The whole RTDS -----------------------------------------------------------------


def test_every_reference_mac_verifies(rtds_ctx: SecurityContext, decoded: list[Decoded]) -> None:
    results = {v.name: rtds_ctx.check_mac(m, p) for v, m, p in decoded if m.has_mac}
    assert len(results) == 442
    assert {n for n, r in results.items() if r is NO_KEY} == PCS_NO_KEY
    assert {n: r for n, r in results.items() if r not in (VALID, NO_KEY)} == {}


def test_every_reference_signature_verifies(
    rtds_ctx: SecurityContext, decoded: list[Decoded]
) -> None:
    results = {v.name: rtds_ctx.check_signature(m, p) for v, m, p in decoded if m.is_signed}
    assert len(results) == 336
    assert {n: r for n, r in results.items() if r is not VALID} == {}
    # A signature checked from a re-encoded message verifies too (no FrameParts).
    for _, m, _ in decoded[:50]:
        if m.is_signed:
            assert rtds_ctx.check_signature(m) is VALID


def _verdict(ctx: SecurityContext, data: bytes) -> tuple[str, CheckResult, CheckResult]:
    """How a receiver would treat ``data``: decode error, or the two check results."""
    try:
        message, parts = decode_message(data)
    except DecodeError:
        return "decode", ABSENT, ABSENT
    mac = ctx.check_mac(message, parts)
    if mac is INVALID:  # the MAC covers the whole APDU: no need to look further
        return "checked", mac, ABSENT
    return "checked", mac, ctx.check_signature(message, parts)


def test_every_single_byte_flip_is_detected(
    rtds_ctx: SecurityContext, decoded: list[Decoded]
) -> None:
    """Each flipped byte is refused by the decoder or makes a check fail.

    Bytes outside the MAC'd and signed regions (the MAC header, the 0xDF tag and
    signature length of an unwrapped message) are fixed values the decoder pins.
    A flip inside the Business Originator or Target id can instead name a party
    without keys: the result is ``no-key``, which a receiver rejects too
    (``require_valid``); that is allowed only for those 16 id bytes.
    """
    undetected = []
    no_key_outside_ids = []
    checked = 0
    for vector, message, parts in decoded:
        protected = (
            message.has_mac and rtds_ctx.check_mac(message, parts) is VALID
        ) or message.is_signed
        if not protected:
            continue  # pre-commands (nothing to check) and the 4 PCS no-key MACs
        apdu_start = len(vector.data) - len(parts.signing_apdu) - (12 if message.has_mac else 0)
        for pos in range(len(vector.data)):
            for flip in FLIPS:
                tampered = bytearray(vector.data)
                tampered[pos] ^= flip
                kind, mac, sig = _verdict(rtds_ctx, bytes(tampered))
                checked += 1
                if kind == "decode" or INVALID in (mac, sig):
                    continue
                if NO_KEY in (mac, sig):
                    rel = pos - apdu_start
                    if rel not in BUSINESS_ORIGINATOR and rel not in BUSINESS_TARGET:
                        no_key_outside_ids.append((vector.name, pos, flip))
                    continue
                undetected.append((vector.name, pos, flip, mac.value, sig.value))
    assert checked > 290_000
    assert undetected == []
    assert no_key_outside_ids == []


def test_truncation_is_a_decode_error(decoded: list[Decoded]) -> None:
    """Every proper prefix raises DecodeError, with one exact, by-design exception.

    An unwrapped signed *command* (CRIB §2.4: the four signed-only commands) cut
    just before its signature-length byte is byte for byte the pre-command form
    (no signature field, §2.2), so the frame decoder must accept it; what it
    yields is unsigned (``is_precommand``) and carries no signature to trust.
    Responses and alerts have no pre-command form, so their cuts are errors.
    """
    accepted = {}
    for vector, _, _ in decoded:
        for cut in range(len(vector.data)):
            with contextlib.suppress(DecodeError):
                accepted[(vector.name, cut)] = decode_message(vector.data[:cut])[0]
    expected = {
        (v.name, p.signed_end): replace(m, signature=None)
        for v, m, p in decoded
        if m.is_signed and not m.has_mac and m.cra_flag is CraFlag.COMMAND
    }
    assert len(expected) == 4
    assert accepted == expected
    assert all(m.is_precommand for m in accepted.values())


# --- Test PKI: protect, encode, decode, check ------------------------------------------


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return TestPki.default_cast(seed=3)


@pytest.fixture(scope="module")
def stranger() -> TestPki:
    """Same ids, other keys: what a wrong or rotated key looks like."""
    return TestPki.default_cast(seed=4)


def _ctx(pki: TestPki) -> SecurityContext:
    return SecurityContext(pki.keystore(), acb=pki.party("acb").eui64)


def _device_view(pki: TestPki, device: str) -> SecurityContext:
    """What a meter holds: its own private keys and the remote parties' certificates."""
    store = MemoryKeyStore()
    me = pki.party(device)
    for usage in (KeyUsage.KA, KeyUsage.DS):
        store.add(me.eui64, usage, private=me.private_key(usage), certificate=me.certificate(usage))
    for party in pki:
        if not party.is_device:
            for usage in (KeyUsage.KA, KeyUsage.DS):
                store.add(party.eui64, usage, certificate=party.certificate(usage))
    return SecurityContext(store, acb=pki.party("acb").eui64)


def _precommand(pki: TestPki) -> GbcsMessage:
    """A critical command as a supplier would receive it to sign (ECS43, open load switch)."""
    header = GroupingHeader(
        CraFlag.COMMAND,
        0x0A00_0000_0000_1234,
        pki.party("supplier").eui64,
        pki.party("esme").eui64,
        OtherInformation(0x0050),
    )
    payload = bytes.fromhex("D920001234000103004600000A0000FF010100")
    return GbcsMessage(header, payload, signature=None)


def test_signed_and_macd_command_round_trips(pki: TestPki, stranger: TestPki) -> None:
    precommand = _precommand(pki)
    with pytest.raises(EncodeError):
        _ctx(pki).protect(precommand)  # a pre-command must be signed before it is MAC'd
    wire = _ctx(pki).protect(precommand, sign=True).encode()
    message, parts = decode_message(wire)
    assert message.header == precommand.header and message.payload == precommand.payload
    assert message.is_signed and message.has_mac
    meter = _device_view(pki, "esme")
    assert meter.check_mac(message, parts) is VALID  # ACB KA x ESME KA, from the meter's side
    assert meter.check_signature(message, parts) is VALID
    meter.require_valid(message, parts)
    other = _device_view(stranger, "esme")
    assert other.check_mac(message, parts) is INVALID
    assert other.check_signature(message, parts) is INVALID
    with pytest.raises(VerificationError):
        other.require_valid(message, parts)


def test_response_round_trips_both_forms(pki: TestPki, stranger: TestPki) -> None:
    """A MAC'd response (device KA x target KA) and a device-signed unwrapped one."""
    esme = _device_view(pki, "esme")
    request = _precommand(pki).header
    header = replace(
        request,
        cra_flag=CraFlag.RESPONSE,
        business_originator=request.business_target,
        business_target=request.business_originator,
    )
    response = GbcsMessage(header, bytes.fromhex("DA2000123400000100010300"))
    for sign, mac in ((False, True), (True, False)):
        wire = esme.protect(response, sign=sign, mac=mac).encode()
        assert wire[0] == (0xDD if mac else 0xDF)
        message, parts = decode_message(wire)
        supplier = _ctx(pki)
        expect_mac = VALID if mac else ABSENT
        expect_sig = VALID if sign else ABSENT
        assert supplier.check_mac(message, parts) is expect_mac
        assert supplier.check_signature(message, parts) is expect_sig
        wrong = _ctx(stranger)
        assert wrong.check_mac(message, parts) is (INVALID if mac else ABSENT)
        assert wrong.check_signature(message, parts) is (INVALID if sign else ABSENT)


@pytest.mark.parametrize("sign", [False, True])
def test_unknown_party_is_no_key(pki: TestPki, sign: bool) -> None:
    """A MAC the context holds no key for is refused as such. Signed too, the changed
    target also broke the signature, which was the error the test used to see (test
    audit): MAC-only, no other check can refuse first."""
    plain = _precommand(pki) if sign else replace(_precommand(pki), signature=b"")
    message = _ctx(pki).protect(plain, sign=sign)
    assert message.has_mac and bool(message.signature) is sign
    lost = replace(message, header=replace(message.header, business_target=bytes(8)))
    assert _ctx(pki).check_mac(lost) is NO_KEY
    with pytest.raises(VerificationError, match=r"^no key to check the MAC$"):
        _ctx(pki).require_valid(lost)


def test_an_unprotected_message_is_not_valid(pki: TestPki) -> None:
    """A pre-command, or a General Signing frame with an empty signature, proves nothing."""
    ctx = _ctx(pki)
    precommand = _precommand(pki)
    unsigned = precommand.with_signature(b"")
    for message in (precommand, unsigned):
        assert not message.has_mac and not message.signature
        with pytest.raises(VerificationError, match="neither MAC'd nor signed"):
            ctx.require_valid(message)
    ctx.require_valid(ctx.protect(precommand, sign=True, mac=False))  # signed only: fine
    ctx.require_valid(ctx.protect(unsigned))  # MAC'd only: fine


def test_protected_block_round_trip_and_tampering(pki: TestPki, stranger: TestPki) -> None:
    """CRIB §3.5 blocks: the device encrypts, the far party decrypts; any change is caught."""
    header = GroupingHeader(
        CraFlag.RESPONSE,
        1000,
        pki.party("esme").eui64,
        pki.party("supplier").eui64,
        OtherInformation(0x0027),
    )
    plaintext = bytes.fromhex("02010204060000000a02020f00161e060000000a02020f001620")
    block = _device_view(pki, "esme").encrypt_block(header, plaintext)
    assert block[:5] == b"\x31\x00\x00\x00\x00" and len(block) == 5 + len(plaintext) + 12
    supplier = _ctx(pki)
    assert supplier.decrypt_block(header, block) == plaintext
    for pos in range(len(block)):
        tampered = bytearray(block)
        tampered[pos] ^= 0x01
        # Header bytes are pinned by the parser; ciphertext and tag fail the GCM check.
        expected = DecodeError if pos < 5 else VerificationError
        with pytest.raises(expected):
            supplier.decrypt_block(header, bytes(tampered))
    with pytest.raises(VerificationError):
        supplier.decrypt_block(replace(header, originator_counter=1001), block)
    with pytest.raises(VerificationError):
        _ctx(stranger).decrypt_block(header, block)
    with pytest.raises(DecodeError):
        supplier.decrypt_block(header, block[:16])  # shorter than header and tag
    # Supplementary originator counter and party take over the KDF inputs (§3.5).
    urp = replace(
        header, other_information=OtherInformation(0x0096, pki.party("supplier2").eui64, 5, 77)
    )
    urp_block = _device_view(pki, "esme").encrypt_block(urp, plaintext)
    parties = supplier.block_parties(urp)
    assert (parties.far_party, parties.counter) == (pki.party("supplier2").eui64, 77)
    assert supplier.decrypt_block(urp, urp_block) == plaintext
    with pytest.raises(VerificationError):
        supplier.decrypt_block(header, urp_block)


# protect(): one encoding for signature, MAC and wire ----------------------------------


def _reference_protect(
    ctx: SecurityContext, message: GbcsMessage, *, sign: bool, mac: bool
) -> GbcsMessage:
    """protect() as it was: sign a copy, MAC the signed message, each encoding anew."""
    if sign:
        private = ctx.keystore.private_key(message.header.business_originator, KeyUsage.DS)
        unsigned = replace(message, signature=b"", mac=None)
        message = replace(message, signature=crypto.ecdsa_sign(private, unsigned.signed_data()))
    elif message.signature is None and mac:
        raise EncodeError("a pre-command must be signed before it can be MAC'd")
    if not mac:
        return replace(message, mac=None)
    apdu = message.signing_parts().signing_apdu
    key = ctx.mac_key(message.header)
    return replace(message, mac=crypto.gmac(key, message.header.business_originator, apdu))


def _outcome(f: Any, *args: Any) -> tuple[str, Any]:
    """What a call gives: its value, or its exception's type and message."""
    try:
        return "value", f(*args)
    except Exception as exc:  # the comparison is the point
        return type(exc).__name__, str(exc)


def _fresh(message: GbcsMessage) -> GbcsMessage:
    """The same fields through __init__: no wire bytes kept from protect()."""
    return GbcsMessage(message.header, message.payload, message.signature, message.mac)


PROTECT = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROTECT
@given(
    kind=st.sampled_from(["command", "response", "alert", "device-command"]),
    code=st.integers(0, 0xFFFF),
    counter=st.integers(0, 2**64 - 1),
    payload=st.binary(max_size=300),
    date_time=st.none() | st.binary(min_size=12, max_size=12),
    signature=st.sampled_from([None, b"", bytes(64)]),
    sign=st.booleans(),
    mac=st.booleans(),
)
def test_protect_matches_the_reference(
    pki: TestPki,
    kind: str,
    code: int,
    counter: int,
    payload: bytes,
    date_time: bytes | None,
    signature: bytes | None,
    sign: bool,
    mac: bool,
) -> None:
    """Same fields, same bytes and same errors as the step-by-step reference."""
    supplier, esme = pki.party("supplier").eui64, pki.party("esme").eui64
    ctx = _ctx(pki)  # every party's keys: whichever pair the MAC needs
    if kind == "command":
        cra, originator, target = CraFlag.COMMAND, supplier, esme
    elif kind == "device-command":  # device to device: MAC'd by the two devices' keys
        cra, originator, target = CraFlag.COMMAND, esme, pki.party("gsme").eui64
        code = 0x009B
    else:
        cra = CraFlag.RESPONSE if kind == "response" else CraFlag.ALERT
        originator, target = esme, supplier
    dt = None if date_time is None else CosemDateTime.unpack(date_time)
    header = GroupingHeader(cra, counter, originator, target, OtherInformation(code), dt)
    message = GbcsMessage(header, payload, signature)
    try:
        expected = _reference_protect(ctx, message, sign=sign, mac=mac)
    except EncodeError as exc:
        with pytest.raises(EncodeError, match=str(exc)):
            ctx.protect(message, sign=sign, mac=mac).encode()
        return
    protected = ctx.protect(message, sign=sign, mac=mac)
    assert type(protected) is GbcsMessage
    assert protected == expected
    wire = _outcome(protected.encode)
    assert wire == _outcome(_fresh(expected).encode)
    assert _outcome(protected.signing_parts) == _outcome(_fresh(expected).signing_parts)
    if wire[0] != "value":
        return  # e.g. an unsigned response left without its signature field
    decoded, parts = decode_message(wire[1])
    assert decoded == protected
    if protected.mac is not None:
        assert ctx.check_mac(decoded, parts) is VALID
    if sign:
        assert ctx.check_signature(decoded, parts) is VALID


def test_add_mac_and_sign_match_the_reference(pki: TestPki) -> None:
    ctx = _ctx(pki)
    precommand = _precommand(pki)
    signed = ctx.sign(precommand)
    assert signed == _reference_protect(ctx, precommand, sign=True, mac=False)
    assert ctx.check_signature(signed) is VALID
    command = replace(precommand, signature=b"")
    macd = ctx.add_mac(command)
    assert macd == _reference_protect(ctx, command, sign=False, mac=True)
    assert macd.encode() == _fresh(macd).encode()
    assert ctx.compute_mac(command) == macd.mac


def test_add_mac_to_a_precommand_still_fails_to_encode(pki: TestPki) -> None:
    """add_mac() MACs a pre-command as it always did; encode() refuses the result."""
    ctx = _ctx(pki)
    macd = ctx.add_mac(_precommand(pki))
    assert macd.mac is not None and macd.signature is None
    with pytest.raises(EncodeError, match="pre-command"):
        macd.encode()
    with pytest.raises(EncodeError, match="pre-command"):
        ctx.add_mac(macd)  # a MAC'd pre-command cannot be encoded to MAC again


def test_protect_errors_come_in_the_same_order(pki: TestPki, stranger: TestPki) -> None:
    ctx = _ctx(pki)
    unknown = replace(
        _precommand(pki),
        header=replace(_precommand(pki).header, business_originator=bytes(8)),
    )
    with pytest.raises(KeyNotFoundError):
        ctx.protect(unknown, sign=True)  # no signing key: before any encoding
    bad = replace(_precommand(pki), signature=b"\x00" * 10)
    with pytest.raises(EncodeError, match="signature must be empty or 64 bytes"):
        ctx.protect(bad)
    with pytest.raises(EncodeError, match="pre-command must be signed"):
        ctx.protect(_precommand(pki))
    assert ctx.protect(_precommand(pki), mac=False) == _precommand(pki)


@pytest.mark.parametrize(
    ("key", "originator", "message"),
    [
        (bytes(15), bytes(8), "a GBCS AES key is 16 bytes, not 15"),
        (bytes(32), bytes(8), "a GBCS AES key is 16 bytes, not 32"),
        (bytes(16), bytes(7), "an originator \\(IV part\\) is 8 bytes, not 7"),
    ],
)
def test_crypto_primitives_name_a_wrong_key_or_originator_size(
    key: bytes, originator: bytes, message: str
) -> None:
    """Called directly, the primitives say what is wrong instead of a ValueError from AES."""
    block = crypto.encrypt_block(bytes(16), bytes(8), b"plain")
    for call in (
        lambda: crypto.gmac(key, originator, b"apdu"),
        lambda: crypto.encrypt_block(key, originator, b"plain"),
        lambda: crypto.decrypt_block(key, originator, block),
    ):
        with pytest.raises(EncodeError, match=message):
            call()


def test_a_remote_party_may_not_mac_a_device_originated_code_with_its_own_key(
    decoded: list[Decoded], rtds_ctx: SecurityContext
) -> None:
    """The MAC pair was chosen by message code alone: a supplier sending a PCS02 (a
    device-to-device use case) MAC'd with its own KA key instead of the ACB's, and the
    check said valid (codec audit F1; CRIB §3.2: remote parties' commands are the
    ACB's to MAC)."""
    message, _ = _message(decoded, "PCS02_NA_SUCCESS_COMMAND_GBCS.HEX")
    supplier = bytes.fromhex("90B3D51F30010000")
    forged = replace(message, header=replace(message.header, business_originator=supplier))
    ks = rtds_ctx.keystore
    header = forged.header
    z = crypto.ecdh(
        ks.private_key(supplier, KeyUsage.KA), ks.public_key(header.business_target, KeyUsage.KA)
    )
    key = crypto.kdf(
        z, supplier, header.cra_flag, header.originator_counter, header.business_target
    )
    own = crypto.gmac(key, supplier, forged.encode_apdu()[0])
    assert rtds_ctx.check_mac(replace(forged, mac=own)) is CheckResult.INVALID
    # From the supplier the MAC is the ACB's, and a device originator keeps its own pair.
    assert rtds_ctx.mac_pair(header) == (rtds_ctx.acb, header.business_target)
    assert rtds_ctx.check_mac(rtds_ctx.add_mac(replace(forged, mac=None))) is CheckResult.VALID
    assert rtds_ctx.mac_pair(message.header) == (
        message.header.business_originator,
        message.header.business_target,
    )


def test_random_ecdsa_nonces_are_warned_of_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where OpenSSL cannot derive nonces per RFC 6979 the signature still verifies, but
    a run no longer replays byte for byte: that was silent (fault audit 3)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from gbcs import crypto

    key = ec.derive_private_key(7, ec.SECP256R1())
    assert crypto.ecdsa_sign(key, b"m") == crypto.ecdsa_sign(key, b"m")  # RFC 6979 here
    monkeypatch.setattr(crypto, "_ECDSA_DETERMINISTIC", ec.ECDH())  # sign: UnsupportedAlgorithm
    crypto._warn_random_nonces.cache_clear()
    with pytest.warns(RuntimeWarning, match="RFC 6979") as warned:
        first = crypto.ecdsa_sign(key, b"m")
        second = crypto.ecdsa_sign(key, b"m")
    assert len(warned) == 1 and first != second
    assert crypto.ecdsa_verify(key.public_key(), b"m", first)
    crypto._warn_random_nonces.cache_clear()


def test_ecdsa_verify_takes_only_the_64_byte_r_s_form() -> None:
    """r || 00 || s (65 bytes: s reads as the same integer) and an all-zero r, s are no
    signature; no test failed when either guard was dropped."""
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    data = b"GBCS signed data"
    signature = crypto.ecdsa_sign(key, data)
    public = key.public_key()
    assert crypto.ecdsa_verify(public, data, signature)
    assert not crypto.ecdsa_verify(public, data, signature[:32] + b"\0" + signature[32:])
    assert not crypto.ecdsa_verify(public, data, bytes(64))
    assert not crypto.ecdsa_verify(public, data, signature[:32] + bytes(32))


def test_a_macd_frame_with_no_signature_field_is_refused() -> None:
    """CRIB §2.4: only an unwrapped command may be a pre-command. The fast decoder declines
    one inside a General-Ciphering wrapper and falls back to the careful one, which must
    refuse it too (a mutation letting the careful one take it went unnoticed)."""
    from gbcs.frame import decode_message, new_command

    command = new_command(
        0x0013,
        b"\x30\x00",
        originator=bytes.fromhex("90B3D51F30010000"),
        target=bytes.fromhex("00DB1234567890A0"),
        counter=0x1_0000_0000,
    )
    wrapped = replace(command, signature=b"", mac=bytes(12)).encode()
    assert decode_message(wrapped)[0].signature == b""
    # The signature-length byte (just before the 12-byte MAC) taken out, the length fixed.
    bare = wrapped[:7] + bytes([wrapped[7] - 1]) + wrapped[8:-13] + wrapped[-12:]
    with pytest.raises(DecodeError, match="only an unwrapped command may be a pre-command"):
        decode_message(bare)
