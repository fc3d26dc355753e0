"""Device key pairs, trust anchors and the key store a device's security context reads."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulators.credential_uc import anchor_cells
from emulators.credentials import (
    _ORDER,
    DeviceCredentials,
    DeviceKeyStore,
    TrustAnchor,
    TrustAnchors,
    point_key_identifier,
    public_key,
    public_point,
)
from gbcs import crypto
from gbcs.errors import GbcsError, KeyNotFoundError
from gbcs.keys import KeyUsage
from gbcs.rtds import RtdsVector
from gbcs.testpki import RemotePartyRole, TestPki

EUI = bytes.fromhex("00DB12345678B000")
OTHER = bytes.fromhex("00DB12345678B001")


# DeviceCredentials ------------------------------------------------------------------


def test_generate_is_deterministic() -> None:
    a = DeviceCredentials.generate(EUI, seed=3)
    b = DeviceCredentials.generate(EUI.hex(), seed=3)
    assert a == b
    assert a.eui64 == EUI


def test_generate_depends_on_seed_and_device() -> None:
    base = DeviceCredentials.generate(EUI, 0)
    assert DeviceCredentials.generate(EUI, 1) != base
    assert DeviceCredentials.generate(EUI, -1) != base
    assert DeviceCredentials.generate(OTHER, 0) != base
    assert base.ka_scalar != base.ds_scalar


def test_generate_known_answer() -> None:
    """Pins the derivation: a fleet saved with one version must reload identically."""
    creds = DeviceCredentials.generate(EUI, 0)
    assert creds.ka_scalar == int(
        "9201f85ce926fd263c6f5084a396027de1b300a54279bca216a5cbedf836803f", 16
    )
    assert creds.ds_scalar == int(
        "530b409974085d444a458f0146e6c208c0cfb67f2d3e3dc52d2d1cec7c7dd5eb", 16
    )


@settings(max_examples=25, deadline=None)
@given(st.binary(min_size=8, max_size=8), st.integers(-(2**63), 2**63 - 1))
def test_property_generated_keys_are_valid_p256(eui: bytes, seed: int) -> None:
    creds = DeviceCredentials.generate(eui, seed)
    assert 0 < creds.ka_scalar < _ORDER and 0 < creds.ds_scalar < _ORDER
    for usage in (KeyUsage.KA, KeyUsage.DS):
        point = creds.public_point(usage)
        assert len(point) == 65 and point[0] == 0x04
        assert public_point(creds.private_key(usage).public_key()) == point


def test_generated_keys_sign_and_verify() -> None:
    creds = DeviceCredentials.generate(EUI, 0)
    sig = crypto.ecdsa_sign(creds.private_key(KeyUsage.DS), b"data")
    assert crypto.ecdsa_verify(public_key(creds.public_point(KeyUsage.DS)), b"data", sig)
    assert not crypto.ecdsa_verify(public_key(creds.public_point(KeyUsage.KA)), b"data", sig)


@pytest.mark.parametrize("scalar", [0, _ORDER, _ORDER + 1, -5])
def test_invalid_scalar_is_refused(scalar: int) -> None:
    with pytest.raises(GbcsError, match="ka_scalar is not a valid P-256 private scalar"):
        DeviceCredentials(EUI, scalar, 1)
    with pytest.raises(GbcsError, match="ds_scalar"):
        DeviceCredentials(EUI, 1, scalar)


def test_seed_out_of_range_is_an_error() -> None:
    with pytest.raises(OverflowError):
        DeviceCredentials.generate(EUI, 2**63)


def test_private_key_for_other_usage_is_not_found() -> None:
    creds = DeviceCredentials.generate(EUI)
    with pytest.raises(KeyNotFoundError):
        creds.private_key(KeyUsage.PP_KA)


def test_from_party_matches_the_pki(pki: TestPki) -> None:
    party = pki.party("esme")
    creds = DeviceCredentials.from_party(party)
    assert creds.eui64 == party.eui64
    assert creds.public_point(KeyUsage.KA) == public_point(party.ka_private.public_key())
    assert creds.public_point(KeyUsage.DS) == public_point(party.ds_private.public_key())


def test_json_round_trip() -> None:
    creds = DeviceCredentials.generate(EUI, 9)
    obj = creds.to_json()
    assert obj["eui64"] == "00DB12345678B000"
    assert len(obj["ka_private"]) == len(obj["ds_private"]) == 64
    assert int(obj["ka_private"], 16) == creds.ka_scalar
    assert DeviceCredentials.from_json(json.loads(json.dumps(obj))) == creds


def test_json_keeps_leading_zeros() -> None:
    creds = DeviceCredentials(EUI, 1, 0xFF)
    obj = creds.to_json()
    assert obj["ka_private"] == "0" * 63 + "1"
    assert DeviceCredentials.from_json(obj) == creds


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"eui64": None}, "device credentials are missing 'eui64'"),
        ({"ka_private": None}, "device credentials are missing 'ka_private'"),
        ({"eui64": "00DB12345678B0"}, "eui64 must be 8 bytes, found 7"),
        ({"eui64": "not hex at all!!"}, "eui64 is not hex"),
        ({"eui64": 1234}, "eui64 is not hex"),
        ({"ka_private": "00" * 31}, "ka_private must be 32 bytes, found 31"),
        ({"ds_private": "zz" * 32}, "ds_private is not hex"),
        ({"ka_private": "00" * 32}, "ka_scalar is not a valid P-256 private scalar"),
        ({"ds_private": "ff" * 32}, "ds_scalar is not a valid P-256 private scalar"),
    ],
)
def test_bad_json_is_a_gbcs_error(change: dict, message: str) -> None:
    obj = DeviceCredentials.generate(EUI).to_json()
    for key, value in change.items():
        if value is None:
            del obj[key]
        else:
            obj[key] = value
    with pytest.raises(GbcsError, match=message):
        DeviceCredentials.from_json(obj)


def test_credentials_are_frozen() -> None:
    creds = DeviceCredentials.generate(EUI)
    with pytest.raises(FrozenInstanceError):
        creds.ka_scalar = 5  # type: ignore[misc]


# Public points --------------------------------------------------------------------------


def test_public_key_is_shared_per_point() -> None:
    point = DeviceCredentials.generate(EUI).public_point(KeyUsage.KA)
    assert public_key(point) is public_key(bytes(point))
    assert public_point(public_key(point)) == point


@pytest.mark.parametrize("point", [b"\x04" + b"\x01" * 64, b"\x04", b"", b"\x05" + b"\x00" * 64])
def test_public_key_rejects_non_points(point: bytes) -> None:
    with pytest.raises(GbcsError, match="is not a P-256 public point"):
        public_key(point)


# Trust anchors -----------------------------------------------------------------------


def test_trust_anchors_from_pki(pki: TestPki) -> None:
    anchors = TrustAnchors.from_pki(pki)
    assert [a.role for a in anchors] == [
        RemotePartyRole.ACCESS_CONTROL_BROKER,
        RemotePartyRole.SUPPLIER,
        RemotePartyRole.NETWORK_OPERATOR,
    ]
    for anchor, name in zip(anchors, ("acb", "supplier", "network_operator"), strict=True):
        party = pki.party(name)
        assert anchor.party_id == party.eui64
        assert anchor.ka_public == public_point(party.ka_private.public_key())
        assert anchor.ds_public == public_point(party.ds_private.public_key())
    assert anchors.for_party(pki.party("supplier").eui64) is anchors.supplier
    assert anchors.for_party(pki.party("supplier2").eui64) is None
    assert anchors.for_party(pki.party("esme").eui64) is None


def test_trust_anchors_for_another_supplier(pki: TestPki) -> None:
    anchors = TrustAnchors.from_pki(pki, supplier="supplier2")
    assert anchors.supplier.party_id == pki.party("supplier2").eui64
    assert anchors.for_party(pki.party("supplier").eui64) is None


def test_device_is_not_a_trust_anchor(pki: TestPki) -> None:
    with pytest.raises(GbcsError, match="00DB1234567890A0 is a device, not a remote party"):
        TrustAnchor.from_party(pki.party("esme"))
    with pytest.raises(GbcsError, match="is a device"):
        TrustAnchors.from_pki(pki, supplier="esme")


def test_with_anchor_replaces_one_role(pki: TestPki, anchors: TrustAnchors) -> None:
    new = TrustAnchor.from_party(pki.party("supplier2"))
    updated = anchors.with_anchor(new)
    assert updated.supplier == new
    assert updated.acb == anchors.acb
    assert updated.network_operator == anchors.network_operator
    assert anchors.supplier.party_id == pki.party("supplier").eui64  # original untouched
    assert updated.for_party(pki.party("supplier").eui64) is None


def test_with_anchor_for_each_role(pki: TestPki, anchors: TrustAnchors) -> None:
    acb = TrustAnchor(RemotePartyRole.ACCESS_CONTROL_BROKER, OTHER, *_points())
    net = TrustAnchor(RemotePartyRole.NETWORK_OPERATOR, OTHER, *_points())
    assert anchors.with_anchor(acb).acb == acb
    assert anchors.with_anchor(net).network_operator == net


def _points() -> tuple[bytes, bytes]:
    creds = DeviceCredentials.generate(OTHER)
    return creds.public_point(KeyUsage.KA), creds.public_point(KeyUsage.DS)


@pytest.mark.parametrize(
    "role", [RemotePartyRole.RECOVERY, RemotePartyRole.WAN_PROVIDER, RemotePartyRole.ROOT]
)
def test_with_anchor_for_a_role_a_meter_does_not_hold(
    anchors: TrustAnchors, role: RemotePartyRole
) -> None:
    with pytest.raises(GbcsError, match=f"a meter holds no {role.name} trust anchor"):
        anchors.with_anchor(TrustAnchor(role, OTHER, *_points()))


def test_trust_anchors_json_round_trip(anchors: TrustAnchors) -> None:
    obj = json.loads(json.dumps(anchors.to_json()))
    assert obj["supplier"]["role"] == "supplier"
    assert obj["acb"]["role"] == "access_control_broker"
    assert obj["acb"]["party_id"] == "90B3D51F30000002"
    assert TrustAnchors.from_json(obj) == anchors


def _anchor_json(anchors: TrustAnchors) -> dict:
    return json.loads(json.dumps(anchors.to_json()))


def test_trust_anchors_json_missing_role(anchors: TrustAnchors) -> None:
    obj = _anchor_json(anchors)
    del obj["network_operator"]
    with pytest.raises(GbcsError, match="trust anchors are missing 'network_operator'"):
        TrustAnchors.from_json(obj)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("party_id", None, "trust anchor is missing 'party_id'"),
        ("ka_public", None, "trust anchor is missing 'ka_public'"),
        ("party_id", "90B3D51F3001", "trust anchor party_id must be 8 bytes, found 6"),
        ("ds_public", "04" * 64, "trust anchor ds_public must be 65 bytes, found 64"),
        ("ka_public", "04" + "01" * 64, "is not a P-256 public point"),
        ("ka_public", "xyz", "trust anchor ka_public is not hex"),
        ("role", "bogus", "unknown trust anchor role 'bogus'"),
    ],
)
def test_trust_anchor_bad_json(
    anchors: TrustAnchors, field: str, value: str | None, message: str
) -> None:
    obj = _anchor_json(anchors)
    if value is None:
        del obj["supplier"][field]
    else:
        obj["supplier"][field] = value
    with pytest.raises(GbcsError, match=message):
        TrustAnchors.from_json(obj)


# DeviceKeyStore -------------------------------------------------------------------------


@pytest.fixture
def store(anchors: TrustAnchors) -> DeviceKeyStore:
    return DeviceKeyStore(DeviceCredentials.generate(EUI, 1), anchors)


def test_store_holds_own_private_keys(store: DeviceKeyStore) -> None:
    creds = store.credentials
    for usage in (KeyUsage.KA, KeyUsage.DS):
        assert store.has_private_key(EUI, usage)
        key = store.private_key(EUI, usage)
        assert key is store.private_key(EUI, usage)  # made once, then cached
        assert public_point(key.public_key()) == creds.public_point(usage)
        assert public_point(store.public_key(EUI, usage)) == creds.public_point(usage)
    assert not store.has_private_key(EUI, KeyUsage.PP_KA)
    assert store.certificate(EUI, KeyUsage.KA) is None


def test_store_has_no_private_key_for_anyone_else(
    store: DeviceKeyStore, anchors: TrustAnchors
) -> None:
    for party in (OTHER, anchors.supplier.party_id):
        assert not store.has_private_key(party, KeyUsage.KA)
        with pytest.raises(KeyNotFoundError):
            store.private_key(party, KeyUsage.KA)
    with pytest.raises(KeyNotFoundError):
        store.private_key(EUI, KeyUsage.PP_KA)


def test_store_public_keys_of_anchors(store: DeviceKeyStore, anchors: TrustAnchors) -> None:
    for anchor in anchors:
        assert public_point(store.public_key(anchor.party_id, KeyUsage.KA)) == anchor.ka_public
        assert public_point(store.public_key(anchor.party_id, KeyUsage.DS)) == anchor.ds_public
        with pytest.raises(KeyNotFoundError):
            store.public_key(anchor.party_id, KeyUsage.PP_KA)


def test_store_public_key_of_a_stranger_is_not_found(store: DeviceKeyStore, pki: TestPki) -> None:
    with pytest.raises(KeyNotFoundError):
        store.public_key(pki.party("supplier2").eui64, KeyUsage.DS)
    with pytest.raises(KeyNotFoundError):
        store.public_key(OTHER, KeyUsage.KA)


def test_store_agrees_with_the_anchor_side_on_ecdh(
    store: DeviceKeyStore, pki: TestPki, anchors: TrustAnchors
) -> None:
    acb = pki.party("acb")
    mine = crypto.ecdh(
        store.private_key(EUI, KeyUsage.KA), store.public_key(acb.eui64, KeyUsage.KA)
    )
    theirs = crypto.ecdh(acb.ka_private, store.public_key(EUI, KeyUsage.KA))
    assert mine == theirs


def test_anchors_from_the_rtds_certificates_report_the_rtds_key_identifiers(
    corpus: list[RtdsVector], rtds_root: Path
) -> None:
    """CS02a reports a cell's SubjectKeyIdentifier as its certificate carries it (RTDS
    6.24.1), not a hash of the point: the RTDS ones follow no rule the kit could redo."""
    from gbcs import asn1
    from gbcs.credentials_uc import CredentialDetails
    from gbcs.frame import decode
    from gbcs.keys import FileKeyStore

    store = FileKeyStore(rtds_root / "keystore")
    (vector,) = [v for v in corpus if v.name == "CS02aMAC_6.24.1_SUCCESS_RESPONSE_GBCS.HEX"]
    answer = CredentialDetails.from_payload(asn1.decode(0x0008, 2, decode(vector.data).payload))
    for party in answer.parties:
        role = RemotePartyRole(party.role)
        cells = [c for c in party.cells or () if c.cell_usage == 0]
        holder = cells[0].subject_unique_id
        anchor = TrustAnchor.from_certificates(
            role,
            store.certificate(holder, KeyUsage.KA),
            store.certificate(holder, KeyUsage.DS),
        )
        assert [c.subject_key_identifier for c in anchor_cells(anchor)] == [
            c.subject_key_identifier for c in cells
        ]
        assert anchor.ds_ski != point_key_identifier(anchor.ds_public)  # not the kit's rule
        # Saved and loaded, the identifiers stay.
        assert TrustAnchor.from_json(anchor.to_json()) == anchor


def test_saved_anchors_name_three_parties(pki: TestPki) -> None:
    """Two roles on one party ID: only the first is ever found, and CS02a reports one
    identity twice. CS02b never makes such a state; loading one is refused (audit 8,
    meters L5)."""
    saved = TrustAnchors.from_pki(pki).to_json()
    saved["network_operator"] = {
        **saved["network_operator"],
        "party_id": saved["supplier"]["party_id"],
    }
    with pytest.raises(GbcsError, match="network_operator: party 90B3D51F30010000 is already"):
        TrustAnchors.from_json(saved)
