"""Meters triaged per minute by ``gbcs-hil triage`` on emulated devices, and the crypto share.

Usage: python benchmarks/bench_throughput.py [--meters N] [--per-premises M] [--workdir DIR]

Builds a batch of N meters (default 1 000): four in five still joined to their
old premises CHF (M meters per premises), one in five fresh; sets the bench up
as ``gbcs-hil triage --manifest`` would, then triages them all through the
service layer with every step committed to SQLite, exactly as the main job
does. The set-up (premises, joins) is timed apart from the triage. The crypto
share is the replayed time of every cryptographic call the triage made
(ECDH, KDF, GMAC, ECDSA, ZigBee CCM*, key derivation) over the triage's wall
time, measured in the same run.

Last line: ``bench_throughput meters=<n> meters_per_min=<m> crypto_share=<s>``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from crypto_floor import recording, replay

from emulators.bench import run_bench
from emulators.mpxn import dummy_mpan
from emulators.triage import ManifestRow


def batch(meters: int, per_premises: int) -> list[ManifestRow]:
    rows = []
    for i in range(meters):
        eui = bytes.fromhex(f"00DB7{i:011X}")
        code = bytes.fromhex(f"{i:08X}" * 4)
        fresh = i % 5 == 4
        old = None if fresh else bytes.fromhex(f"00DB8000{i // per_premises:04X}00A2")
        rows.append(ManifestRow(eui, code, "ESME", old, str(dummy_mpan(i + 1)), i + 1))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--meters", type=int, default=1000)
    parser.add_argument("--per-premises", type=int, default=4)
    parser.add_argument("--workdir", help="keep the run here (default: a temporary folder)")
    args = parser.parse_args(argv)
    folder = Path(args.workdir or tempfile.mkdtemp(prefix="bench-throughput-"))
    if (folder / "triage.sqlite").exists():
        # A run's inventory is its own: set-up would find its meters commissioned already.
        parser.error(f"--workdir {folder} holds an earlier run: give a new or empty folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        parser.error(f"--workdir {folder}: {e.strerror}")
    rows = batch(args.meters, args.per_premises)

    # Set-up only: the premises HANs with their meters joined, then carried away.
    from emulators.bench import setup
    from emulators.inventory import Inventory
    from emulators.mpxn import ProductionProvingPolicy

    start = time.perf_counter()
    inventory = Inventory(folder / "triage.sqlite")
    setup(inventory, rows, 1, ProductionProvingPolicy.from_env())
    inventory.close()
    set_up = time.perf_counter() - start
    print(
        f"set-up: {len(rows)} meters on {len({r.old_chf for r in rows if r.old_chf})} "
        f"premises HANs in {set_up:.1f} s"
    )

    start = time.perf_counter()
    with recording() as calls:
        run = run_bench(folder, rows)
    triage_s = time.perf_counter() - start
    crypto_s = replay(calls)
    outcomes: dict[str, int] = {}
    for report in run.reports:
        key = f"{report.state_found}/{report.outcome}"
        outcomes[key] = outcomes.get(key, 0) + 1
    per_min = len(rows) / triage_s * 60
    share = crypto_s / triage_s
    print(
        f"triage: {len(rows)} meters in {triage_s:.1f} s = {per_min:.0f} meters/min; "
        f"outcomes {outcomes}; all as expected: {run.ok}"
    )
    print(f"crypto: {len(calls)} calls, {crypto_s:.2f} s replayed = {share:.1%} of the triage time")
    if not args.workdir:
        shutil.rmtree(folder, ignore_errors=True)
    print(
        f"bench_throughput meters={len(rows)} meters_per_min={per_min:.0f} crypto_share={share:.3f}"
    )
    return 0 if run.ok else 1


if __name__ == "__main__":
    sys.exit(main())
