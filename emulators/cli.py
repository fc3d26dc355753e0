"""``gbcs-hil emulate``: run a named scenario on the emulated HAN and show what happened."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from emulators.faults import FaultPlan
from emulators.scenarios import SCENARIOS, run_scenario
from emulators.wireshark import check_capture_path, uat_options, write_capture
from gbcs.errors import GbcsError
from gbcs.options import Once, OnceFlag, seed_argument

__all__ = ["add_commands", "cmd_scenario"]


def _table(report: dict[str, Any]) -> str:
    lines = [f"scenario {report['scenario']} (seed {report['seed']})", ""]
    rows = [("time/s", "use case", "code", "from", "to", "result")]
    for s in report["steps"]:
        code = f"0x{s['message_code']:04X}" if s["message_code"] else "HAN"
        result = s["result"]
        detail = s.get("detail", {})
        if result != "ok" and detail.get("probe"):
            result = f"[finding] {result}"  # what the scenario is after, not a failure
        if detail.get("evidence"):
            result = f"{result} ({detail['evidence']})"  # how the outcome was seen
        rows.append((f"{s['time']:.3f}", s["use_case"], code, s["from"], s["to"], result))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        lines.append(
            "  ".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=True)) + "  " + r[5]
        )
    failed = [
        s for s in report["steps"] if s["result"] != "ok" and not s.get("detail", {}).get("probe")
    ]
    lines += [
        "",
        "ok: every step but the findings succeeded"
        if report["ok"]
        else f"FAILED: {len(failed)} step(s), first {failed[0]['use_case']}: {failed[0]['result']}",
    ]
    lines += ["", "meters:"]
    for eui, m in report["meters"].items():
        lines.append(
            f"  {eui} {m['kind']}: joined to {m['joined_to'] or 'no HAN'}, "
            f"state {m['state']}, in device logs {', '.join(m['in_device_logs']) or 'none'}, "
            f"network operator {m['network_operator']}"
        )
    return "\n".join(lines)


def path_argument(text: str) -> str:
    """A path given on the command line: an empty one (an unset variable, most likely)
    would mean the current folder, so it is refused rather than used."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path is not a file or folder")
    return text


def cmd_scenario(args: argparse.Namespace) -> int:
    try:
        faults = FaultPlan.parse(args.faults) if args.faults is not None else FaultPlan()
    except ValueError as e:
        print(f"gbcs-hil emulate: {e}", file=sys.stderr)
        return 2
    if args.pcap is not None:
        try:
            check_capture_path(args.pcap)
        except OSError as e:
            print(f"gbcs-hil emulate: cannot write the capture: {e}", file=sys.stderr)
            return 2
    try:
        run = run_scenario(args.name, args.seed, faults=faults, capture=args.pcap is not None)
    except GbcsError as e:
        print(f"gbcs-hil emulate: {e}", file=sys.stderr)
        return 2
    report = run.report(args.seed)
    if args.pcap is not None and run.world.capture is not None:
        try:
            pcap, keys = write_capture(
                run.world.capture, Path(args.pcap), run.world.clock.epoch.timestamp()
            )
        except OSError as e:
            print(f"gbcs-hil emulate: cannot write the capture: {e}", file=sys.stderr)
            return 2
        report["pcap"] = str(pcap)
        report["keys"] = str(keys)
        report["wireshark"] = shlex.join(
            ["wireshark", *uat_options(run.world.capture), "-r", str(pcap)]
        )
    try:
        if args.json:
            print(json.dumps(report))
        else:
            print(_table(report))
            if args.pcap is not None:
                print(f"\ncapture: {report['pcap']} (keys for Wireshark: {report['keys']})")
                print(f"watch it, every key loaded:\n  {report['wireshark']}")
        sys.stdout.flush()
    except BrokenPipeError:
        raise  # the reader went away: gbcs-hil's main handles it
    except OSError as e:  # a full disk behind a redirect: not a step that failed
        print(f"gbcs-hil emulate: cannot write the report: {e.strerror or e}", file=sys.stderr)
        return 2
    return 0 if report["ok"] else 1


def _progress_bar(stream: Any) -> Any:
    """A one-line progress bar on a terminal; plain lines when piped."""
    tty = stream.isatty()
    last = [""]

    def show(done: int, total: int, text: str) -> None:
        width = 24
        filled = width * done // max(total, 1)
        line = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {text}"
        if tty:
            stream.write("\r" + line[:100].ljust(100))
            if done == total:
                stream.write("\n")
        elif text != last[0]:
            stream.write(line + "\n")
        last[0] = text
        stream.flush()

    return show


def cmd_triage(args: argparse.Namespace) -> int:
    import sqlite3

    from emulators.bench import results_table, run_bench, screen_rows
    from emulators.mpxn import ProductionProvingPolicy
    from emulators.triage import read_manifest

    try:
        policy = ProductionProvingPolicy.from_env()
        if args.lab_only:
            policy = ProductionProvingPolicy(policy.dummy_ranges, lab_only=True)
    except GbcsError as e:
        print(f"gbcs-hil triage: {e}", file=sys.stderr)
        return 2
    rows = None
    errors: list[str] = []
    if args.manifest is not None:
        try:
            rows, errors = read_manifest(args.manifest, policy)
        except OSError as e:
            print(f"gbcs-hil triage: cannot read {args.manifest}: {e}", file=sys.stderr)
            return 2
        except GbcsError as e:  # not UTF-8 text, not CSV: none of it is used
            print(f"gbcs-hil triage: {e}", file=sys.stderr)
            return 2
        # Rows the emulated world cannot hold (an old CHF that is a meter, say) are bad
        # rows too: reported here with the others, by line.
        rows, errors = screen_rows(rows, errors)
        for error in errors:
            print(f"gbcs-hil triage: {args.manifest}: {error}", file=sys.stderr)
        if not rows:
            print("gbcs-hil triage: no usable row in the manifest", file=sys.stderr)
            return 2
    progress = None if args.quiet else _progress_bar(sys.stderr)
    try:
        run = run_bench(
            args.workdir,
            rows,
            seed=args.seed,
            policy=policy,
            manifest_errors=errors,
            progress=progress,
        )
    except GbcsError as e:
        print(f"gbcs-hil triage: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Every committed step is safe; the step under way was rolled back.
        print(
            f"\ngbcs-hil triage: interrupted; run it again with --workdir {args.workdir} "
            "to carry on where it stopped",
            file=sys.stderr,
        )
        return 130
    except OSError as e:
        print(f"gbcs-hil triage: {e}", file=sys.stderr)
        return 2
    except sqlite3.Error as e:  # the disk filled up, the file went read-only, ...
        print(f"gbcs-hil triage: the inventory in {args.workdir} failed: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(run.to_json()))
    else:
        if run.resumed:
            print(f"resumed the run in {run.workdir}")
        print(results_table(run))
        print(
            f"\nreports in {run.workdir}: report.json, junit.xml, han.pcap (+ .keys), triage.sqlite"
        )
    return 0 if run.ok else 1


def add_commands(sub: Any) -> None:
    t = sub.add_parser(
        "triage",
        help="triage returned meters on the bench (the main job)",
        description="With no arguments: a complete demonstration on emulated devices.",
    )
    t.add_argument(
        "--workdir",
        default="triage-run",
        type=path_argument,
        action=Once,
        help="working folder (default ./triage-run)",
    )
    t.add_argument(
        "--manifest",
        metavar="FILE",
        type=path_argument,
        action=Once,
        help="CSV: EUI-64, install code, type, old CHF, MPxN",
    )
    t.add_argument(
        "--seed",
        type=seed_argument,
        default=None,
        action=Once,
        help="seed of the emulated world (default 1; a resumed run keeps its own)",
    )
    t.add_argument(
        "--lab-only", action=OnceFlag, help="accept real-format MPxNs (never on a live bench)"
    )
    t.add_argument("--json", action=OnceFlag, help="print the JSON report")
    t.add_argument("--quiet", action=OnceFlag, help="no progress bar")
    t.set_defaults(func=cmd_triage)

    p = sub.add_parser("emulate", help="run the emulated HAN")
    esub = p.add_subparsers(dest="emulate_command", required=True)
    s = esub.add_parser(
        "scenario",
        help="run a named scenario",
        description="Scenarios: "
        + "; ".join(f"{name}: {text}" for name, (text, _) in SCENARIOS.items()),
    )
    s.add_argument("name", choices=sorted(SCENARIOS), help="scenario to run")
    s.add_argument(
        "--seed",
        type=seed_argument,
        default=0,
        action=Once,
        help="seed for keys, networks and faults",
    )
    s.add_argument(
        "--pcap", metavar="FILE", action=Once, help="write the air capture (and FILE.keys)"
    )
    s.add_argument("--json", action=OnceFlag, help="print one JSON object")
    s.add_argument(
        "--faults",
        metavar="SPEC",
        action=Once,
        help="seeded faults, e.g. loss=0.05,duplication=0.02,reordering=0.02,delay=0.1",
    )
    s.set_defaults(func=cmd_scenario)
