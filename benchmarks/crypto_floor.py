"""Record every cryptographic call a run makes, then replay them alone: the crypto floor.

Shared by the benchmarks: the floor is the same calls with the same arguments,
timed in the same process, so the ratio to it is meaningful on a noisy machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import emulators.credentials
from emulators.zigbee import install_code
from emulators.zigbee import security as zigbee_security
from gbcs import crypto

__all__ = ["CRYPTO_CALLS", "recording", "replay"]

# (module, attribute) of every cryptographic primitive the emulated world calls. Leaves
# only: none of them calls another, so a replay never counts one piece of work twice.
CRYPTO_CALLS: tuple[tuple[Any, str], ...] = (
    (crypto, "ecdh"),
    (crypto, "kdf"),
    (crypto, "gmac"),  # gmac_matches calls it: recording both would count every check twice
    (crypto, "ecdsa_sign"),
    (crypto, "ecdsa_verify"),
    (crypto, "encrypt_block"),
    (crypto, "decrypt_block"),
    # The ZigBee CCM* leaves: a cipher built on a cache miss (with the HMAC-MMO
    # key-transport derivation), and each seal or open. encrypt()/decrypt() call these.
    (zigbee_security, "new_cipher"),
    (zigbee_security, "seal"),
    (zigbee_security, "unseal"),
    (emulators.credentials, "_private_key"),
    # The install-code link key's AES-MMO hash (ZigBee B.6), not its CRC-16 checksum.
    (install_code, "aes_mmo_hash"),
)


@contextmanager
def recording() -> Iterator[list[tuple[Callable[..., Any], tuple, dict]]]:
    calls: list[tuple[Callable[..., Any], tuple, dict]] = []
    saved = []
    for module, name in CRYPTO_CALLS:
        original = getattr(module, name)
        saved.append((module, name, original))

        def wrapper(*args: Any, _f: Callable[..., Any] = original, **kwargs: Any) -> Any:
            calls.append((_f, args, kwargs))
            return _f(*args, **kwargs)

        setattr(module, name, wrapper)
    try:
        yield calls
    finally:
        for module, name, original in saved:
            setattr(module, name, original)


def replay(calls: list[tuple[Callable[..., Any], tuple, dict]]) -> float:
    start = time.perf_counter()
    for f, args, kwargs in calls:
        try:  # noqa: SIM105 - contextlib.suppress would add its own cost to the floor
            f(*args, **kwargs)
        except Exception:  # a MIC or signature that did not verify: same cost, same outcome
            pass
    return time.perf_counter() - start
