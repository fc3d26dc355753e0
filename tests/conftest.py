"""Shared fixtures: the RTDS reference corpus and its key store, when present."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gbcs.rtds import RtdsVector, find_rtds, load_corpus

REPO = Path(__file__).resolve().parents[1]
RTDS = find_rtds(REPO)
SKIP_REASON = (
    "../shared/rtds (RTDS 4.5.0 reference messages) is not beside the repository; "
    "set GBCS_RTDS to its path to run the reference-vector tests"
)

CORPUS: list[RtdsVector] = load_corpus(RTDS / "RTDS-4.5.0") if RTDS else []


def corpus_params() -> list:
    """Parametrize values over the corpus, or one skipped case when it is absent."""
    if not CORPUS:
        return [pytest.param(None, marks=pytest.mark.skip(reason=SKIP_REASON), id="no-rtds")]
    return [pytest.param(v, id=v.name.removesuffix("_GBCS.HEX")) for v in CORPUS]


@pytest.fixture(scope="session")
def rtds_root() -> Path:
    if RTDS is None:
        pytest.skip(SKIP_REASON)
    return RTDS


@pytest.fixture(scope="session")
def corpus() -> list[RtdsVector]:
    if not CORPUS:
        pytest.skip(SKIP_REASON)
    return CORPUS


def self_signed_p256(name: str, *extensions: tuple[x509.ExtensionType, bool]) -> bytes:
    """DER of a throwaway self-signed P-256 certificate with ``(extension, critical)``s:
    for tests of certificates a device or key store must refuse."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2040, 1, 1, tzinfo=dt.UTC))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
