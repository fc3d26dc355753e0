"""``gbcs-hil`` command line: decode, encode and build example messages."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from gbcs import strict_json
from gbcs.catalogue import CATALOGUE, Catalogue
from gbcs.errors import DecodeError, GbcsError
from gbcs.keys import FileKeyStore
from gbcs.options import Once, OnceFlag, seed_argument
from gbcs.security import DEFAULT_ACB, SecurityContext

__all__ = ["main"]

UTF8_BOM = b"\xef\xbb\xbf"


def _eui64(text: str) -> str:
    """argparse type for ``--acb``: exactly 16 hex digits, so a typo is a usage error."""
    cleaned = text.replace(":", "").replace(" ", "")
    if len(cleaned) != 16 or any(c not in "0123456789abcdefABCDEF" for c in cleaned):
        raise argparse.ArgumentTypeError(f"{text!r} is not an EUI-64 (16 hex digits)")
    return cleaned


def _disconnect_code(text: str) -> int:
    """argparse type for ``--disconnect-code``: the Catalogue's own checks, as a usage error."""
    try:
        code = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    try:
        Catalogue(code)
    except GbcsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return code


def _security(args: argparse.Namespace) -> SecurityContext | None:
    folder = args.keystore or os.environ.get("GBCS_KEYSTORE")
    if not folder:
        return None
    acb = bytes.fromhex(args.acb) if args.acb else DEFAULT_ACB
    return SecurityContext(FileKeyStore(folder), acb=acb)


def _catalogue(args: argparse.Namespace) -> Catalogue:
    code = getattr(args, "disconnect_code", None)
    return CATALOGUE if code is None else Catalogue(code)


def _file_message(raw: bytes) -> bytes | str:
    """The message in a file's (or standard input's) bytes: binary as it is, hex or base64
    text parsed; an error's text if it is text that is neither."""
    from gbcs.message import parse_input

    text = raw.removeprefix(UTF8_BOM)  # editors on Windows save hex with one
    try:
        # Text is UTF-8 (a hex dump copied from a PDF brings a no-break space); a binary
        # GBCS message never is: its 0xDD or 0xDF tag is a UTF-8 lead byte, and the byte
        # after it (< 0x80) is no continuation byte.
        utf8_text = text.decode("utf-8")
    except UnicodeDecodeError:
        return raw  # binary
    try:
        return parse_input(utf8_text)
    except GbcsError as exc:  # text, so not a binary message: say what is wrong
        return str(exc)


def _not_a_file(path: Path) -> str | None:
    """Why an entry below a folder cannot be read as a message (None: it is a file). A
    FIFO would block the run, and an entry skipped without a word is a message lost."""
    if path.is_file():
        return None
    if path.is_symlink() and not path.exists():
        return "a symbolic link to nothing"
    return "not a regular file"


def read_inputs(items: Sequence[str], stdin: TextIO) -> Iterator[tuple[str | None, bytes | str]]:
    """Yield (file name or None, bytes) per message; an unreadable input yields its error text."""
    from gbcs.message import parse_input

    for item in items:
        if item == "-":
            # Bytes, as from a file: a binary message piped in is as good as one named.
            buffer = getattr(stdin, "buffer", None)
            if buffer is not None:
                found = _file_message(buffer.read())
                yield None, f"standard input: {found}" if isinstance(found, str) else found
                continue
            try:
                yield None, parse_input(stdin.read())
            except GbcsError as exc:
                yield None, f"standard input: {exc}"
        elif item.startswith("@"):
            path = Path(item[1:])
            if path.is_dir():
                files = sorted(p for p in path.rglob("*") if not p.is_dir())
            else:
                files = [path]
            if not files:
                # An empty folder (the wrong one?) would otherwise look like a clean run.
                yield str(path), "no file below this folder"
            for file in files:
                why = _not_a_file(file) if file is not path else None
                if why is not None:
                    yield str(file), f"cannot read: {why}"
                    continue
                try:
                    raw = file.read_bytes()
                except OSError as exc:
                    yield str(file), f"cannot read: {exc.strerror}"
                    continue
                yield str(file), _file_message(raw)
        else:
            try:
                yield None, parse_input(item)
            except GbcsError as exc:
                yield None, f"argument: {exc}"


def _render(value: Any, indent: int, out: list[str], key: str | None = None) -> None:
    """An indented tree of the JSON payload, names first, for people."""
    pad = "  " * indent
    label = f"{key}: " if key is not None else ""
    if isinstance(value, dict) and "type" in value and isinstance(value["type"], str):
        extras = ", ".join(
            f"{k}={v}"
            for k, v in value.items()
            if k not in ("type", "value") and not isinstance(v, dict | list) and v is not None
        )
        inner = value.get("value")
        head = f"{pad}{label}{value['type']}"
        if isinstance(inner, list):
            out.append(f"{head} ({len(inner)})" + (f" {extras}" if extras else ""))
            for index, item in enumerate(inner):
                _render(item, indent + 1, out, f"[{index}]")
        elif isinstance(inner, dict):
            out.append(head + (f" {extras}" if extras else ""))
            for k, v in inner.items():
                _render(v, indent + 1, out, k)
        else:
            shown = "" if inner is None else f" {inner}"
            out.append(head + shown + (f" ({extras})" if extras else ""))
        return
    if isinstance(value, dict):
        scalars = {k: v for k, v in value.items() if not isinstance(v, dict | list)}
        nested = {k: v for k, v in value.items() if isinstance(v, dict | list)}
        summary = ", ".join(f"{k}={v}" for k, v in scalars.items() if v is not None)
        out.append(f"{pad}{label}{summary}".rstrip())
        for k, v in nested.items():
            _render(v, indent + 1, out, k)
    elif isinstance(value, list):
        if all(not isinstance(v, dict | list) for v in value):
            out.append(f"{pad}{label}[{', '.join(str(v) for v in value)}]")
            return
        out.append(f"{pad}{label}({len(value)} items)")
        for index, v in enumerate(value):
            _render(v, indent + 1, out, f"[{index}]")
    else:
        out.append(f"{pad}{label}{value}")


def human(result: dict[str, Any]) -> str:
    lines = []
    if result.get("file"):
        lines.append(f"file: {result['file']}")
    lines.append(
        f"{result['use_case']} (0x{result['message_code']:04X}) "
        f"{result.get('use_case_name') or ''} - {result['cra_flag']}".rstrip()
    )
    other = result["other_information"]
    lines.append(
        f"  originator {result['originator']} -> target {result['target']}, "
        f"originator counter {result['originator_counter']}"
    )
    if other.get("supplementary_remote_party"):
        # The 10-byte other-information form (CRIB 2.3, ECS200 alert) names no counter.
        counter = other.get("supplementary_remote_party_counter")
        lines.append(
            f"  on behalf of {other['supplementary_remote_party']}"
            + (f" (counter {counter})" if counter is not None else "")
        )
    if result.get("date_time"):
        lines.append(f"  date-time {result['date_time']['text']}")
    lines.append(f"  MAC: {result['mac']}   signature: {result['signature']}")
    if "roundtrip" in result:
        lines.append(f"  round-trip: {'exact' if result['roundtrip'] else 'DIFFERS'}")
    lines.append(f"  payload ({result['payload_family']}):")
    _render(result["payload"], 2, lines)
    for block in result["decrypted"]:
        lines.append(f"  protected block {block['where']}: {block['status']}")
        if block.get("data") is not None:
            _render(block["data"], 2, lines, "plaintext")
        elif block.get("plaintext"):
            lines.append(f"    plaintext: {block['plaintext']}")
    return "\n".join(lines)


def cmd_decode(args: argparse.Namespace) -> int:
    from gbcs.message import inspect, roundtrips, to_json

    inputs = list(read_inputs(args.inputs, sys.stdin))  # before the keys: a pipe may write them
    try:
        security = _security(args)
    except GbcsError as exc:
        print(f"gbcs-hil decode: {exc}", file=sys.stderr)
        return 2
    catalogue = _catalogue(args)
    failures = 0
    for name, data in inputs:
        result: dict[str, Any]
        if isinstance(data, str):
            failures += 1
            error = {"layer": "input", "field": "input", "offset": 0, "reason": data}
            result = {"file": name, "error": error} if name else {"error": error}
        else:
            try:
                inspection = inspect(data, security, catalogue)
                result = to_json(
                    inspection, roundtrip=roundtrips(inspection, data) if args.roundtrip else None
                )
                if name:
                    result = {"file": name, **result}
                if args.roundtrip and not result["roundtrip"]:
                    failures += 1
            except DecodeError as exc:
                failures += 1
                error = exc.as_dict()
                result = {"file": name, "error": error} if name else {"error": error}
            except GbcsError as exc:  # e.g. an unreadable key file: this input only
                failures += 1
                error = {"layer": "keystore", "field": "key file", "offset": 0, "reason": str(exc)}
                result = {"file": name, "error": error} if name else {"error": error}
        if args.json:
            print(json.dumps(result))
        elif "error" in result:
            where = f"{name}: " if name else ""
            e = result["error"]
            print(
                f"{where}error in {e['layer']}"
                + (f" ({e['field']})" if e.get("field") else "")
                + f" at offset {e['offset']}: {e['reason']}"
            )
        else:
            print(human(result))
            print()
    return 1 if failures else 0


def cmd_encode(args: argparse.Namespace) -> int:
    from gbcs.message import message_from_json

    try:
        text = sys.stdin.read() if args.input == "-" else Path(args.input).read_text("utf-8")
    except OSError as exc:
        print(f"gbcs-hil encode: cannot read {args.input}: {exc.strerror}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as exc:
        print(f"gbcs-hil encode: {args.input} is not UTF-8 text: {exc.reason}", file=sys.stderr)
        return 2
    try:
        obj = strict_json.loads(text)
    except json.JSONDecodeError as exc:
        print(f"gbcs-hil encode: input is not JSON: {exc}", file=sys.stderr)
        return 2
    except (RecursionError, ValueError) as exc:  # nested too deep; an integer too long
        print(f"gbcs-hil encode: input cannot be read as JSON: {exc}", file=sys.stderr)
        return 2
    try:
        message = message_from_json(obj, _catalogue(args))
        security = _security(args)
        if args.sign or args.mac or args.resign:
            if security is None:
                raise GbcsError("--sign/--mac need --keystore (or $GBCS_KEYSTORE)")
            if args.mac and not args.sign and message.signature is None:
                # CRIB §2.4: the supplier signs a pre-command, then the ACB MACs the command.
                raise GbcsError(
                    "--mac: a pre-command (no signature field) is not MAC'd; sign it into a "
                    "command first (--sign --mac)"
                )
            if args.sign or (args.resign and message.is_signed):
                message = security.sign(message)
            # A MAC covers the signature (CRIB §2.4, §3.3): signing a MAC'd message
            # anew makes its old MAC wrong, so it is recomputed too.
            if args.mac or ((args.resign or args.sign) and message.mac is not None):
                message = security.add_mac(message)
        if args.no_mac:
            message = message.with_mac(None)
        wire = message.encode()
    except GbcsError as exc:
        print(f"gbcs-hil encode: {exc}", file=sys.stderr)
        return 1
    unused = _unused_payload_hex(obj, message.payload)
    if unused:
        print(f"gbcs-hil encode: warning: {unused}", file=sys.stderr)
    print(wire.hex().upper())
    return 0


def _unused_payload_hex(obj: Any, payload: bytes) -> str | None:
    """What to say when ``payload_hex`` was given beside a ``payload`` tree (which wins)
    and differs from it: an edit to the hex would otherwise be dropped without a word."""
    if not isinstance(obj, dict) or obj.get("payload") is None:
        return None
    given = obj.get("payload_hex")
    if given is None:
        return None
    try:
        if bytes.fromhex(given) == payload:
            return None
    except (TypeError, ValueError):
        pass  # not hex at all: differs too
    return (
        "$.payload_hex differs from the encoded $.payload tree and was not used "
        "(the tree wins; set $.payload to null to send $.payload_hex)"
    )


def cmd_example(args: argparse.Namespace) -> int:
    from gbcs.examples import EXAMPLES, build_example

    if args.list:
        for name, text in EXAMPLES.items():
            print(f"{name:20} {text}")
        return 0
    try:
        wire = build_example(args.name, Path(args.keys), seed=args.seed)
    except GbcsError as exc:
        print(f"gbcs-hil example: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = exc.filename or args.keys
        print(f"gbcs-hil example: cannot write keys to {where}: {exc.strerror}", file=sys.stderr)
        return 2
    print(wire.hex().upper())
    return 0


# The other packages' commands (the emulated HAN, later the bench and dongles) plug
# in here; the codec itself never imports them.
COMMAND_MODULES = ("emulators.cli", "hardware.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gbcs-hil", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def keys(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--keystore",
            metavar="DIR",
            action=Once,
            help="key folder in the RTDS layout (default $GBCS_KEYSTORE)",
        )
        p.add_argument(
            "--acb",
            metavar="EUI64",
            action=Once,
            type=_eui64,
            help=f"Access Control Broker id (default {DEFAULT_ACB.hex().upper()})",
        )

    def disconnect_code(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--disconnect-code",
            type=_disconnect_code,
            action=Once,
            metavar="CODE",
            help="message code of the SECMP0013 disconnect (default "
            "$GBCS_HIL_DISCONNECT_CODE or 0x7F00)",
        )

    p = sub.add_parser("decode", help="decode, verify and decrypt GBCS messages")
    keys(p)
    p.add_argument("--json", action=OnceFlag, help="one JSON object per input per line")
    p.add_argument(
        "--roundtrip",
        action=OnceFlag,
        help="re-encode from the decoded tree and compare with the input",
    )
    disconnect_code(p)
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="hex, base64, @file, @folder or - for standard input",
    )
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser("encode", help="build a message from the decode --json form")
    keys(p)
    p.add_argument("--sign", action=OnceFlag, help="sign as the business originator")
    mac = p.add_mutually_exclusive_group()  # one would silently win over the other
    mac.add_argument("--mac", action=OnceFlag, help="add or recompute the GBCS MAC")
    p.add_argument(
        "--resign",
        action=OnceFlag,
        help="recompute the signature and MAC where the input had them",
    )
    mac.add_argument("--no-mac", action=OnceFlag, help="emit the unwrapped form")
    disconnect_code(p)
    p.add_argument("input", nargs="?", default="-", help="JSON file or - (default)")
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("example", help="build and sign an example message with a test PKI")
    p.add_argument("name", nargs="?", default="disconnect", help="example name (see --list)")
    p.add_argument(
        "--keys",
        default="gbcs-hil-keys",
        action=Once,
        metavar="DIR",
        help="folder to write the generated test keys to (RTDS layout)",
    )
    p.add_argument(
        "--seed",
        type=seed_argument,
        default=1,
        action=Once,
        help="test-PKI seed (deterministic keys; the emulated world's of the same seed)",
    )
    p.add_argument("--list", action=OnceFlag, help="list the examples")
    p.set_defaults(func=cmd_example)
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_commands(sub)
    return parser


def _negative_values_attached(argv: Sequence[str]) -> list[str]:
    """``--seed -0x1`` as ``--seed=-0x1``: argparse takes a value that starts with '-' and
    is not a plain negative number for an option, and the README promises any signed seed."""
    out: list[str] = []
    rest = iter(argv)
    for arg in rest:
        if len(arg) >= 3 and "--seed".startswith(arg):  # argparse takes '--se' for '--seed'
            arg = "--seed"
        if arg == "--seed":
            value = next(rest, None)
            if value is not None and value[:1] == "-" and value[1:2].isdigit():
                out.append(f"--seed={value}")
                continue
            out.append(arg)
            if value is not None:
                out.append(value)
            continue
        out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(_negative_values_attached(given))
    try:
        status = int(args.func(args))
        if sys.stdout is not None:  # None when started with stdout closed (>&-)
            sys.stdout.flush()  # a full disk behind a redirect shows here, not at exit
        return status
    except BrokenPipeError:  # the reader went away: nothing more to say
        _stdout_to_devnull()
        return 0
    except OSError as e:
        # The commands name the files they read and write; what is left is their output.
        what = f"{e.filename}" if e.filename is not None else "cannot write the output"
        print(f"gbcs-hil {args.command}: {what}: {e.strerror or e}", file=sys.stderr)
        _stdout_to_devnull()
        return 2


def _stdout_to_devnull() -> None:
    """What is still buffered for a stdout that cannot take it goes nowhere, so that
    flushing it at exit does not fail again (a second message, exit status 120)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no descriptor (a capture), or no stdout
        pass


if __name__ == "__main__":
    sys.exit(main())
