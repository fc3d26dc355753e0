"""Decode and fully verify the RTDS corpus; compare with the crypto-only floor.

Usage: python benchmarks/codec_corpus.py [--rtds DIR] [--rounds N]

Both timings run in one process, interleaved round by round, so a noisy
shared machine moves them together and the ratio stays meaningful; the
tracked ratio is the median of the per-round codec/floor ratios, and the
throughput the best round.
Each side starts from an empty ECDH cache, so both pay for the same key
agreements once per key pair.

Last line: ``codec_corpus msgs_per_s=<n> ratio_to_crypto_floor=<r>``.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from gbcs import crypto
from gbcs.frame import decode_message
from gbcs.keys import FileKeyStore, KeyUsage
from gbcs.message import inspect, protected_blocks
from gbcs.rtds import find_rtds, load_corpus
from gbcs.security import CheckResult, SecurityContext


@dataclass
class FloorJob:
    """The crypto one message needs, with every input precomputed."""

    mac_pair: tuple[bytes, bytes] | None
    mac_kdf: tuple[bytes, int, int, bytes]
    apdu: bytes
    mac: bytes | None
    ds_key: ec.EllipticCurvePublicKey | None
    signed: bytes
    signature: bytes | None
    blocks: list[tuple[tuple[bytes, bytes], tuple[bytes, int, int, bytes], bytes]]


def floor_jobs(corpus: list[bytes], ctx: SecurityContext) -> list[FloorJob]:
    jobs = []
    for data in corpus:
        insp = inspect(data, ctx)
        m, parts = insp.message, insp.parts
        h = m.header
        mac_pair = ctx.mac_pair(h) if insp.mac in (CheckResult.VALID, CheckResult.INVALID) else None
        ds_key = None
        if insp.signature in (CheckResult.VALID, CheckResult.INVALID):
            ds_key = ctx.keystore.public_key(h.business_originator, KeyUsage.DS)
        blocks = []
        for _, block in protected_blocks(insp.payload):
            p = ctx.block_parties(h)
            blocks.append(
                (
                    (p.originator, p.far_party),
                    (p.originator, crypto.CRA_ENCRYPTION, p.counter, p.far_party),
                    block,
                )
            )
        jobs.append(
            FloorJob(
                mac_pair,
                (h.business_originator, int(h.cra_flag), h.originator_counter, h.business_target),
                parts.signing_apdu,
                m.mac,
                ds_key,
                parts.signing_apdu[1 : parts.signed_end],
                m.signature,
                blocks,
            )
        )
    return jobs


def run_floor(jobs: list[FloorJob], keystore: FileKeyStore) -> None:
    """ECDH once per pair, then KDF + GMAC, ECDSA verify and block decryption per message."""
    secrets: dict[tuple[bytes, bytes], bytes] = {}

    def z_for(a: bytes, b: bytes) -> bytes:
        key = (a, b) if a <= b else (b, a)
        z = secrets.get(key)
        if z is None:
            if keystore.has_private_key(a, KeyUsage.KA):
                z = crypto.ecdh(
                    keystore.private_key(a, KeyUsage.KA), keystore.public_key(b, KeyUsage.KA)
                )
            else:
                z = crypto.ecdh(
                    keystore.private_key(b, KeyUsage.KA), keystore.public_key(a, KeyUsage.KA)
                )
            secrets[key] = z
        return z

    for job in jobs:
        if job.mac_pair is not None and job.mac is not None:
            originator, cra, counter, target = job.mac_kdf
            key = crypto.kdf(z_for(*job.mac_pair), originator, cra, counter, target)
            if not crypto.gmac_matches(key, originator, job.apdu, job.mac):
                raise SystemExit("floor: MAC failed")
        if (
            job.ds_key is not None
            and job.signature
            and not crypto.ecdsa_verify(job.ds_key, job.signed, job.signature)
        ):
            raise SystemExit("floor: signature failed")
        for pair, (originator, cra, counter, far), block in job.blocks:
            key = crypto.kdf(z_for(*pair), originator, cra, counter, far)
            crypto.decrypt_block(key, originator, block)


def run_codec(corpus: list[bytes], keystore: FileKeyStore) -> None:
    ctx = SecurityContext(keystore)
    invalid = CheckResult.INVALID
    for data in corpus:
        insp = inspect(data, ctx)
        if insp.mac is invalid or insp.signature is invalid:
            raise SystemExit("codec: a check failed")
        for block in insp.decrypted:
            if block.status != "decrypted":
                raise SystemExit("codec: a block did not decrypt")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtds", type=Path, default=None, help="RTDS folder (../shared/rtds)")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    root = args.rtds or find_rtds(Path(__file__).resolve().parents[1])
    if root is None:
        print("codec_corpus: no RTDS folder (pass --rtds or set GBCS_RTDS)", file=sys.stderr)
        return 2
    corpus = [v.data for v in load_corpus(root / "RTDS-4.5.0")]
    # Cold: a fresh process's first pass, key files read and ASN.1 schema compiled on the way.
    t0 = time.perf_counter()
    keystore = FileKeyStore(root / "keystore")
    run_codec(corpus, keystore)
    cold = time.perf_counter() - t0
    jobs = floor_jobs(corpus, SecurityContext(keystore))
    for data in corpus:  # the frame layer must accept everything before timing starts
        decode_message(data)

    codec_times, floor_times = [], []
    gc.disable()
    try:
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            run_codec(corpus, keystore)
            t1 = time.perf_counter()
            run_floor(jobs, keystore)
            t2 = time.perf_counter()
            codec_times.append(t1 - t0)
            floor_times.append(t2 - t1)
    finally:
        gc.enable()
    n = len(corpus)
    # Throughput from the best round (as timeit advises: other tenants of a shared
    # machine only ever add time); the ratio from back-to-back pairs, below.
    codec, floor = min(codec_times), min(floor_times)
    codec_med, floor_med = statistics.median(codec_times), statistics.median(floor_times)
    print(f"messages: {n}, rounds: {args.rounds} (fresh ECDH cache each round)")
    print(
        f"cold first pass (key files, schema compile, ECDH): {cold * 1e3:.1f} ms,"
        f" {n / cold:.0f} messages/s"
    )
    print(
        f"codec (frame + payload + MAC + signature + decryption): best {codec * 1e3:.1f} ms/round"
        f" ({codec / n * 1e6:.1f} us/message), median {codec_med * 1e3:.1f} ms"
    )
    print(
        f"crypto floor (ECDH per pair, KDF, GMAC, ECDSA, GCM):      best {floor * 1e3:.1f} ms/round"
        f" ({floor / n * 1e6:.1f} us/message), median {floor_med * 1e3:.1f} ms"
    )
    # Each round's codec and floor run back to back under the same load, so the
    # ratio of a pair is steadier than a ratio of separately chosen rounds.
    pair_ratios = sorted(c / f for c, f in zip(codec_times, floor_times, strict=True))
    ratio = statistics.median(pair_ratios)
    print(
        f"per-round ratios: min {pair_ratios[0]:.2f}, median {ratio:.2f},"
        f" max {pair_ratios[-1]:.2f}; best/best {codec / floor:.2f}"
    )
    print(f"codec_corpus msgs_per_s={n / codec:.0f} ratio_to_crypto_floor={ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
