"""``gbcs-hil dongles``: which ZigBee radios are plugged in, under which stable names."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

from gbcs.options import Once, OnceFlag
from hardware.dongles import (
    DEFAULT_PROBE_TIMEOUT,
    Dongle,
    PortInfo,
    discover,
    probe,
    system_ports,
)

__all__ = ["add_commands", "cmd_dongles", "positive_seconds", "table"]


def table(dongles: list[Dongle]) -> str:
    """Aligned columns for people; the long family description goes on its own line."""
    if not dongles:
        return "no ZigBee dongle found (known USB VID:PIDs: gbcs-hil dongles --help)"
    probed = any(d.probe is not None for d in dongles)
    head = ["device", "VID:PID", "family", "serial", "links"] + (["radio"] if probed else [])
    rows = [head]
    for d in dongles:
        row = [d.device, d.vid_pid, d.family, d.serial_number or "-", " ".join(d.links) or "-"]
        if probed:
            row.append(d.probe.text if d.probe is not None else "-")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
    lines = []
    for index, r in enumerate(rows):
        cells = [c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, r[-1]]).rstrip())
        if index:
            lines.append(f"    {dongles[index - 1].name}")
    return "\n".join(lines)


def cmd_dongles(
    args: argparse.Namespace,
    *,
    list_ports: Callable[[], Iterable[PortInfo]] = system_ports,
    root: Path = Path("/"),
    prober: Callable[[Dongle, float], Dongle] = probe,
    out: TextIO | None = None,
) -> int:
    """List (and with --probe, interrogate) the dongles; 1 when a probe failed, else 0."""
    stream = out if out is not None else sys.stdout
    dongles = discover(list_ports, root)
    if args.probe:
        dongles = [prober(d, args.timeout) for d in dongles]
    if args.json:  # one array, so that no dongle at all is still a JSON document: []
        print(json.dumps([d.to_json() for d in dongles], indent=2), file=stream)
    else:
        print(table(dongles), file=stream)
    failed = any(d.probe is not None and d.probe.status == "failed" for d in dongles)
    return 1 if failed else 0


def positive_seconds(text: str) -> float:
    """A ``--timeout``: a positive finite number of seconds (0, negatives and nan never wait)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive, finite number of seconds")
    return value


def _known_ids() -> str:
    from hardware.dongles import KNOWN_RADIOS

    return "; ".join(
        f"{m.vid_pid}{f' (interface {m.interface:02d})' if m.interface is not None else ''} "
        f"{m.family}"
        for m in KNOWN_RADIOS
    )


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "dongles",
        help="list attached ZigBee dongles",
        description="Serial ports whose USB VID:PID is a known ZigBee radio or bridge: "
        + _known_ids()
        + ". Links come from /dev/zigbee (udev/install.sh in the gbcs-hil sources) "
        "and /dev/serial/by-id.",
    )
    p.add_argument(
        "--probe",
        action=OnceFlag,
        help="talk to each radio for its protocol and firmware (EZSP only; exit 1 on failure)",
    )
    p.add_argument(
        "--json", action=OnceFlag, help="a JSON array, one object per dongle ([] for none)"
    )
    p.add_argument(
        "--timeout",
        type=positive_seconds,
        default=DEFAULT_PROBE_TIMEOUT,
        action=Once,
        metavar="S",
        help=f"seconds per probed dongle (default {DEFAULT_PROBE_TIMEOUT:g})",
    )
    p.set_defaults(func=cmd_dongles)
