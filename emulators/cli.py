"""``gbcs-hil emulate``: run a named scenario on the emulated HAN and show what happened."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from emulators.faults import FaultPlan
from emulators.scenarios import SCENARIOS, run_scenario
from emulators.wireshark import write_capture
from gbcs.errors import GbcsError

__all__ = ["add_commands", "cmd_scenario"]


def _table(report: dict[str, Any]) -> str:
    lines = [f"scenario {report['scenario']} (seed {report['seed']})", ""]
    rows = [("time/s", "use case", "code", "from", "to", "result")]
    for s in report["steps"]:
        code = f"0x{s['message_code']:04X}" if s["message_code"] else "HAN"
        rows.append((f"{s['time']:.3f}", s["use_case"], code, s["from"], s["to"], s["result"]))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        lines.append(
            "  ".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=True)) + "  " + r[5]
        )
    lines += ["", "meters:"]
    for eui, m in report["meters"].items():
        lines.append(
            f"  {eui} {m['kind']}: joined to {m['joined_to'] or 'no HAN'}, "
            f"state {m['state']}, in device logs {', '.join(m['in_device_logs']) or 'none'}"
        )
    return "\n".join(lines)


def cmd_scenario(args: argparse.Namespace) -> int:
    try:
        faults = FaultPlan.parse(args.faults) if args.faults else FaultPlan()
    except ValueError as e:
        print(f"gbcs-hil emulate: {e}", file=sys.stderr)
        return 2
    try:
        run = run_scenario(args.name, args.seed, faults=faults, capture=args.pcap is not None)
    except GbcsError as e:
        print(f"gbcs-hil emulate: {e}", file=sys.stderr)
        return 2
    report = run.report(args.seed)
    if args.pcap is not None and run.world.capture is not None:
        pcap, keys = write_capture(
            run.world.capture, Path(args.pcap), run.world.clock.epoch.timestamp()
        )
        report["pcap"] = str(pcap)
        report["keys"] = str(keys)
    if args.json:
        print(json.dumps(report))
    else:
        print(_table(report))
        if args.pcap is not None:
            print(f"\ncapture: {report['pcap']} (keys for Wireshark: {report['keys']})")
    return 0 if report["ok"] else 1


def add_commands(sub: Any) -> None:
    p = sub.add_parser("emulate", help="run the emulated HAN")
    esub = p.add_subparsers(dest="emulate_command", required=True)
    s = esub.add_parser(
        "scenario",
        help="run a named scenario",
        description="Scenarios: "
        + "; ".join(f"{name}: {text}" for name, (text, _) in SCENARIOS.items()),
    )
    s.add_argument("name", choices=sorted(SCENARIOS), help="scenario to run")
    s.add_argument("--seed", type=int, default=0, help="seed for keys, networks and faults")
    s.add_argument("--pcap", metavar="FILE", help="write the air capture (and FILE.keys)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument(
        "--faults",
        metavar="SPEC",
        help="seeded faults, e.g. loss=0.05,duplication=0.02,reordering=0.02,delay=0.1",
    )
    s.set_defaults(func=cmd_scenario)
