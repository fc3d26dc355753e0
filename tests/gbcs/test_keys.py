"""FileKeyStore given odd files: each must fail as a GbcsError naming the file, never hang."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gbcs.errors import DecodeError, GbcsError
from gbcs.keys import FileKeyStore, KeyUsage, MemoryKeyStore
from gbcs.testpki import certificate_party
from tests.conftest import self_signed_p256

PARTY = bytes.fromhex("00DB123456789001")
# sect163k1 (1.3.132.0.1): parses as PEM, but OpenSSL 3 refuses the curve with
# UnsupportedAlgorithm, which is neither ValueError nor TypeError.
SECT163K1_PRIVATE = b"""-----BEGIN EC PRIVATE KEY-----
MFMCAQEEFQL9+fYhyXH3ZIJdz6Jx7NDGPIz/PqAHBgUrgQQAAaEuAywABAVeG+qd
emnFTNjhU+MJOL/xvp3uTwA5Doj9vINe84P9Pvmkl74j0ZHsUw==
-----END EC PRIVATE KEY-----
"""
SECT163K1_PUBLIC = b"""-----BEGIN PUBLIC KEY-----
MEAwEAYHKoZIzj0CAQYFK4EEAAEDLAAEBV4b6p16acVM2OFT4wk4v/G+ne5PADkO
iP28g17zg/0++aSXviPRkexT
-----END PUBLIC KEY-----
"""


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("00db123456789001-ka.key", SECT163K1_PRIVATE),
        ("00db123456789001-ka.pem", SECT163K1_PUBLIC),
        ("00db123456789001-ka.pem", b"\x00\xff garbage"),
        ("00db123456789001-ka.key", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END"),
    ],
    ids=["unsupported-curve-private", "unsupported-curve-public", "garbage-pem", "bad-base64"],
)
def test_unusable_key_file_is_a_gbcs_error(tmp_path: Path, name: str, content: bytes) -> None:
    (tmp_path / name).write_bytes(content)
    store = FileKeyStore(tmp_path)
    with pytest.raises(GbcsError, match=name):
        store.public_key(PARTY, KeyUsage.KA)


def test_a_fifo_named_like_a_key_is_refused_not_read(tmp_path: Path) -> None:
    """Opening a FIFO for reading blocks until a writer comes: that would hang a decode."""
    fifo = tmp_path / "00db123456789001-ka.pem"
    os.mkfifo(fifo)
    store = FileKeyStore(tmp_path)
    outcome: list[BaseException | None] = []

    def look_up() -> None:
        try:
            store.public_key(PARTY, KeyUsage.KA)
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)
        else:
            outcome.append(None)

    worker = threading.Thread(target=look_up, daemon=True)
    worker.start()
    worker.join(5)
    if worker.is_alive():  # release the blocked open() so the worker can end
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("reading the key store blocked on a FIFO")
    assert isinstance(outcome[0], GbcsError) and "not a regular file" in str(outcome[0])


@pytest.mark.parametrize("curve", [ec.SECP384R1(), ec.SECP256K1()], ids=lambda c: c.name)
def test_memory_keystore_refuses_other_curves(curve: ec.EllipticCurve) -> None:
    """A P-384 key made signing raise OverflowError and ECDH ValueError, deep in a MAC check."""
    store = MemoryKeyStore()
    private = ec.generate_private_key(curve)
    with pytest.raises(GbcsError, match="GBCS needs a P-256"):
        store.add(PARTY, KeyUsage.DS, private=private)
    with pytest.raises(GbcsError, match="GBCS needs a P-256"):
        store.add(PARTY, KeyUsage.KA, public=private.public_key())
    store.add(PARTY, KeyUsage.KA, private=ec.generate_private_key(ec.SECP256R1()))
    assert store.has_private_key(PARTY, KeyUsage.KA)


def _duplicate_extension_certificate() -> x509.Certificate:
    """A P-256 certificate that loads, whose extensions do not parse (two SANs):
    cryptography only finds out when they are first read."""
    der = self_signed_p256(
        "x",
        (x509.SubjectAlternativeName([x509.DNSName("a")]), False),
        (x509.SubjectKeyIdentifier(b"\x01" * 8), False),
    )
    bad = der.replace(bytes.fromhex("0603551d0e"), bytes.fromhex("0603551d11"), 1)
    assert bad != der
    return x509.load_der_x509_certificate(bad)


def test_a_certificate_whose_extensions_do_not_parse_is_this_files_error(tmp_path: Path) -> None:
    """It used to load, then fail as a bare DuplicateExtension at the first MAC check that
    looked into it: a traceback from `gbcs decode` (audit 8, codec 2)."""
    name = "00db123456789001-ka.pem"
    cert = _duplicate_extension_certificate()
    (tmp_path / name).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(GbcsError, match=f"{name}: not a PEM certificate .*Duplicate"):
        FileKeyStore(tmp_path).public_key(PARTY, KeyUsage.KA)
    with pytest.raises(DecodeError, match=r"extensions .*cannot be read"):
        certificate_party(cert)


def test_a_key_store_that_is_no_folder_is_named_for_what_it_is(tmp_path: Path) -> None:
    """A file given as the key store was said not to exist (helper audit)."""
    afile = tmp_path / "keys"
    afile.write_text("")
    with pytest.raises(GbcsError, match=f"key store folder {afile} is not a folder"):
        FileKeyStore(afile)
    with pytest.raises(GbcsError, match=f"key store folder {tmp_path / 'none'} does not exist"):
        FileKeyStore(tmp_path / "none")
