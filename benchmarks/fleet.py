"""A fleet on the emulated HAN: joins, triage cycles, memory, and the crypto floor.

Usage: python benchmarks/fleet.py [--hans N] [--meters M] [--cycles K] [--seed S]

Builds N premises HANs of M meters each (ESMEs, keys generated per meter) on
one virtual clock, opens a CCS01 join window for every meter and runs until
all have joined with their install codes: prints joins/s and the peak RSS per
emulated meter. Then runs K full triage cycles, the sequence of DESIGN §2
state 2 as issue 3 states it: CCS07 on the old CHF, single-entry CCS03 onto a
bench CHF, trust-centre rejoin, a CS07 read through the bench, CS02f, the
meter taken off both logs (CCS02), then CCS01 on a third HAN and the meter's
install-code join there. The bench and third hubs are made before timing
starts, and each has had its first contact with the head end (its keys derived,
its ECDH with the Access Control Broker agreed), as a long-lived bench CHF and a
premises CHF have: fixtures, not cycle work. The meter's own first contact with
the head end is in its cycle (the fleet's meters have joined but never been
commanded).

The crypto floor is every cryptographic call a cycle made (ECDH, KDF, GMAC,
ECDSA, ZigBee CCM* and its key derivation, install-code hashing, key
derivation from a private scalar), recorded with its arguments at the leaves
(see crypto_floor.py) and replayed alone, in the same run. Cycles with and
without recording alternate on identical meters, so the timed ones carry no
recording overhead.

``--per-step K`` also prints, for K more cycles, each step's wall time, its crypto
floor and the clock events it ran: where the cycle's distance from the floor lies.

Targets (issue 3): 10 000 emulated meters in one process under 1 GB RSS;
cycle time <= 2x its crypto floor.

Last line: ``fleet meters=<n> joins_per_s=<j> cycles_per_s=<c>
rss_per_meter_kb=<k> peak_rss_mb=<m> ratio_to_crypto_floor=<r>``.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import math
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

from crypto_floor import recording, replay

from emulators.scenarios import Run
from emulators.world import Hub, MeterUnit, World
from gbcs.devicelog import DeviceLog


def rss_mb() -> float:
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * resource.getpagesize() / 2**20
    except OSError:
        return rss_mb()


def build_fleet(world: World, hans: int, meters: int) -> tuple[list[Hub], list[MeterUnit]]:
    hubs, units = [], []
    for h in range(hans):
        place = f"premises-{h}"
        hub = world.add_hub(place, bytes.fromhex(f"00DB4000{h:04X}0000"), name=f"CHF {h}")
        hubs.append(hub)
        for m in range(meters):
            eui = bytes.fromhex(f"00DB5{h:05X}{m:05X}"[:16].ljust(16, "0"))
            unit = world.add_meter(place, "esme", eui, power=False)
            units.append(unit)
    return hubs, units


def join_all(world: World, run: Run, hubs: list[Hub], units: list[MeterUnit], meters: int) -> float:
    start = time.perf_counter()
    for i, unit in enumerate(units):
        hub = hubs[i // meters]
        step = run.add_device(hub, unit)
        if not step.ok:
            raise SystemExit(f"CCS01 failed for {unit.eui64.hex()}: {step.result}")
        # Installers power meters on over the next minutes, not all in one instant.
        world.clock.call_later(world.random.uniform(0.0, 600.0), unit.node.power_on)
    ok = world.run_until(lambda: all(u.node.joined for u in units), timeout=3600.0)
    elapsed = time.perf_counter() - start
    if not ok:
        missing = sum(1 for u in units if not u.node.joined)
        raise SystemExit(f"{missing} meters did not join within an hour of simulated time")
    return elapsed


def han_stride(hans: int) -> int:
    """A step through ``hans`` HANs that visits every one before any twice (coprime with
    their number), so the cycles' meters are spread over the fleet and never repeat."""
    return next(s for s in itertools.count(7919) if math.gcd(s, hans) == 1)


def cycle_hubs(world: World, run: Run, index: int) -> tuple[Hub, Hub]:
    """The bench CHF and the new home's CHF for cycle ``index``: fixtures, not cycle work.

    Each answers one CCS07 here, so its first contact with the head end (key derivation,
    ECDH) is behind it when the cycle starts, as it is for any CHF in service."""
    bench = world.add_hub(f"bench-{index}", bytes.fromhex(f"00DB6000{index:04X}0000"), name="bench")
    home = world.add_hub(f"home-{index}", bytes.fromhex(f"00DB7000{index:04X}0000"), name="home")
    for hub in (bench, home):
        step, _ = run.read_logs(hub)
        if not step.ok:
            raise SystemExit(f"fixture {hub.name}: CCS07 failed: {step.result}")
        run.steps.remove(step)
    return bench, home


def cycle_steps(
    world: World, run: Run, old: Hub, unit: MeterUnit, bench: Hub, home: Hub
) -> list[tuple[str, Callable[[], Any]]]:
    """State 2 on one meter, as named steps: old CHF -> bench CHF -> divorced -> third HAN.

    A step returns the scenario Step it recorded (None for moving the meter).
    """
    entry: list[DeviceLog] = []

    def read_logs() -> Any:
        step, logs = run.read_logs(old)
        assert logs is not None and logs.current is not None
        entry.append(DeviceLog(logs.current.extended_pan_id, logs.current.only(unit.eui64).entries))
        return step

    return [
        ("to the bench", lambda: world.move(unit, bench.place)),
        ("CCS07 on the old CHF", read_logs),
        ("CCS03 onto the bench", lambda: run.restore(bench, entry[0])),
        ("trust-centre rejoin", lambda: run.wait_joined(unit, bench, "trust-centre rejoin")),
        ("CS07 read", lambda: run.join_details(bench, unit)),
        ("CS02f", lambda: run.disconnect(bench, unit)),
        ("HAN leave", lambda: run.wait_left(unit, bench)),
        ("CCS02 bench", lambda: run.remove_device(bench, unit)),
        ("CCS02 old", lambda: run.remove_device(old, unit)),
        ("to the third HAN", lambda: world.move(unit, home.place)),
        ("CCS01 third HAN", lambda: run.add_device(home, unit)),
        ("install-code join", lambda: run.wait_joined(unit, home, "install-code join")),
    ]


def triage_cycle(
    world: World, run: Run, old: Hub, unit: MeterUnit, bench: Hub, home: Hub, index: int
) -> None:
    """State 2 on one meter: old CHF -> bench CHF -> divorced -> joined to a third HAN."""
    steps = [step() for _, step in cycle_steps(world, run, old, unit, bench, home)]
    failed = [s for s in steps if s is not None and not s.ok]
    if failed:
        raise SystemExit(f"cycle {index} failed: {failed[0].use_case}: {failed[0].result}")
    unit.node.power_off()  # out of the way of the next cycles


def per_step(
    world: World, run: Run, hubs: list[Hub], units: list[MeterUnit], meters: int, cycles: int
) -> list[str]:
    """Where a cycle's time goes: each step's wall time, crypto floor and clock events,
    timed and recorded on alternate twin cycles as the whole-cycle figure is."""
    wall: dict[str, float] = {}
    floor: dict[str, float] = {}
    events: dict[str, int] = {}
    clock = world.clock
    # Meters still on their premises HAN, none the timed cycles used, from the last hub back.
    fresh = [
        (hubs[k // meters], unit)
        for k, unit in reversed(list(enumerate(units)))
        if unit.eui64 in hubs[k // meters].chf.current and unit.node.joined
    ]
    if len(fresh) < 2 * cycles:
        raise SystemExit(f"--per-step {cycles} needs {2 * cycles} untouched meters")
    for i in range(2 * cycles):
        old, unit = fresh[i]
        steps = cycle_steps(world, run, old, unit, *cycle_hubs(world, run, 20_000 + i))
        for name, step in steps:
            if i % 2 == 0:
                before = clock.events_run
                start = time.perf_counter()
                step()
                wall[name] = wall.get(name, 0.0) + time.perf_counter() - start
                events[name] = events.get(name, 0) + clock.events_run - before
            else:
                with recording() as calls:
                    step()
                floor[name] = floor.get(name, 0.0) + replay(calls)
        unit.node.power_off()
    lines = [f"{'step':22s} {'ms':>7s} {'floor ms':>9s} {'ratio':>6s} {'events':>7s}"]
    for name, _ in steps:
        w, f = wall[name] * 1000 / cycles, floor[name] * 1000 / cycles
        ratio = f"{w / f:6.1f}" if f > 0 else "     -"
        lines.append(f"{name:22s} {w:7.3f} {f:9.3f} {ratio} {events[name] / cycles:7.1f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hans", type=int, default=2000)
    parser.add_argument(
        "--meters", type=int, default=5, help="meters per HAN (a CHF logs 32 at most)"
    )
    parser.add_argument("--cycles", type=int, default=40, help="triage cycles (even)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--per-step",
        type=int,
        default=0,
        metavar="K",
        help="also time each step of K more cycles against its own crypto floor",
    )
    args = parser.parse_args(argv)

    gc.collect()
    base = current_rss_mb()
    world = World(args.seed, capture=False)
    world.headend.capture = None
    run = Run("fleet", world)
    t0 = time.perf_counter()
    hubs, units = build_fleet(world, args.hans, args.meters)
    built = time.perf_counter() - t0
    joined = join_all(world, run, hubs, units, args.meters)
    n = len(units)
    gc.collect()
    fleet_mb = current_rss_mb() - base
    print(f"fleet: {args.hans} HANs x {args.meters} meters = {n} meters, built in {built:.1f} s")
    print(
        f"joins: {n} in {joined:.1f} s wall = {n / joined:.0f} joins/s "
        f"({world.clock.now:.0f} s simulated, {world.clock.events_run} events)"
    )
    print(
        f"memory: {fleet_mb:.0f} MB for the fleet = {fleet_mb * 1024 / n:.1f} KB per meter; "
        f"peak RSS {rss_mb():.0f} MB"
    )

    # Triage cycles: alternate timed (plain) and recorded (for the floor) on twin meters.
    # One untimed cycle first: the ASN.1 compiler and other one-time set-up are not cycle cost.
    cycles = max(2, args.cycles - args.cycles % 2)
    if cycles + 1 > n:
        raise SystemExit(
            f"{cycles} cycles and a warm-up need {cycles + 1} meters; the fleet has {n}"
        )

    stride = han_stride(args.hans)

    def pick(i: int) -> tuple[Hub, MeterUnit]:
        """Cycle ``i``'s meter, HAN after HAN: distinct for i < n."""
        hub_index = (i * stride) % args.hans
        return hubs[hub_index], units[hub_index * args.meters + (i // args.hans) % args.meters]

    triage_cycle(world, run, *pick(cycles), *cycle_hubs(world, run, 9_999), 9_999)
    run.steps.clear()
    fixtures = [cycle_hubs(world, run, i) for i in range(cycles)]
    timed = 0.0
    floor = 0.0
    recorded_calls = 0
    for i in range(cycles):
        old, unit = pick(i)
        if i % 2 == 0:
            start = time.perf_counter()
            triage_cycle(world, run, old, unit, *fixtures[i], i)
            timed += time.perf_counter() - start
        else:
            with recording() as calls:
                triage_cycle(world, run, old, unit, *fixtures[i], i)
            recorded_calls += len(calls)
            floor += replay(calls)
    half = cycles // 2
    cycle_s = timed / half
    floor_s = floor / half
    ratio = cycle_s / floor_s
    print(
        f"triage cycles: {cycles} ({half} timed, {half} recorded); "
        f"{cycle_s * 1000:.2f} ms per cycle = {1 / cycle_s:.1f} cycles/s"
    )
    print(
        f"crypto floor: {floor_s * 1000:.2f} ms per cycle "
        f"({recorded_calls / half:.0f} crypto calls per cycle); ratio {ratio:.2f}"
    )
    if args.per_step > 0:
        print(f"per step (mean of {args.per_step} timed and {args.per_step} recorded cycles):")
        for line in per_step(world, run, hubs, units, args.meters, args.per_step):
            print(f"  {line}")
    print(
        f"fleet meters={n} joins_per_s={n / joined:.0f} cycles_per_s={1 / cycle_s:.1f} "
        f"rss_per_meter_kb={fleet_mb * 1024 / n:.1f} peak_rss_mb={rss_mb():.0f} "
        f"ratio_to_crypto_floor={ratio:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
