"""Write what the emulated world put on the air and on the WAN, for Wireshark.

The capture is a pcapng file: one IEEE 802.15.4 interface (link type 195,
PSDU with FCS) per place (premises, bench, ...), each frame at its simulated
time, plus a ``wan`` interface (link type 252, Exported PDU for the
``gbcs_message`` dissector) with the GBCS messages the head end exchanged
with the hubs: device-log commands addressed to a CHF never cross the HAN.
Beside it, ``<capture>.keys`` holds the keys Wireshark needs, one
``"<32 hex>","Normal","<label>"`` line each in the format of its
``zigbee_pc_keys`` table (network keys and link keys).
"""

from __future__ import annotations

import os
from pathlib import Path

from emulators.medium import Capture
from gbcs.files import temporary_name, write_together
from gbcs.pcap import (
    LINKTYPE_IEEE802_15_4_WITHFCS,
    LINKTYPE_WIRESHARK_UPPER_PDU,
    exported_pdu,
    pcapng_file,
)

__all__ = [
    "capture_bytes",
    "check_capture_path",
    "keys_lines",
    "keys_path",
    "uat_options",
    "write_capture",
]

WAN_INTERFACE = "wan"


def capture_bytes(capture: Capture, epoch: float = 0.0) -> bytes:
    places: dict[str, int] = {}
    for _, place, _ in capture.frames:
        places.setdefault(place, len(places))
    wan = len(places)
    interfaces = [(LINKTYPE_IEEE802_15_4_WITHFCS, f"han:{p}") for p in places]
    interfaces.append((LINKTYPE_WIRESHARK_UPPER_PDU, WAN_INTERFACE))
    packets = [(places[place], epoch + t, psdu) for t, place, psdu in capture.frames]
    packets += [(wan, epoch + t, exported_pdu("gbcs_message", m)) for t, m in capture.wan]
    # By time, and at one instant the WAN first: a GBCS message can put frames on the
    # air that same instant (the hub forwards it), but a frame is stamped when it starts
    # and is heard only after its airtime, so nothing it causes shares its time. Stable:
    # records of one kind at one instant keep the order they were made in.
    packets.sort(key=lambda p: (p[1], p[0] != wan))
    return pcapng_file(interfaces, packets)


def keys_lines(capture: Capture) -> list[str]:
    lines = []
    for key, label in capture.keys.items():
        safe = label.replace('"', "'")
        lines.append(f'"{key.hex().upper()}","Normal","{safe}"')
    return lines


def keys_path(path: Path) -> Path:
    return path.with_name(path.name + ".keys")


def uat_options(capture: Capture) -> list[str]:
    """tshark arguments that load every captured key into ``zigbee_pc_keys``."""
    out: list[str] = []
    for line in keys_lines(capture):
        out += ["-o", f"uat:zigbee_pc_keys:{line}"]
    return out


def check_capture_path(path: Path | str) -> None:
    """Fail before a run, not after it, when its capture could not be written.

    Raises :class:`OSError` naming the path: a folder that does not exist, or
    the capture or its ``.keys`` being a folder.
    """
    text = os.fspath(path)
    target = Path(text)
    if not target.name or text.endswith(("/", os.sep)) or target.name in (".", ".."):
        raise IsADirectoryError(f"{text!r} names a folder, not a capture file")
    if not target.parent.is_dir():
        raise NotADirectoryError(f"{target.parent}: no such folder")
    for p in (target, keys_path(target)):
        if p.is_dir():
            raise IsADirectoryError(f"{p}: is a folder")
        if p.is_symlink() or (p.exists() and not p.is_file()):
            # The capture is renamed into place: it would replace the link or device.
            raise FileExistsError(f"{p}: exists and is not a regular file")
    # The folder must take new files (a read-only place, /proc): try one now.
    probe = target.parent / temporary_name()
    try:
        probe.touch(exist_ok=False)
        probe.unlink()
    except OSError as e:
        raise PermissionError(f"{target.parent}: cannot write there ({e.strerror or e})") from None


def write_capture(capture: Capture, path: Path | str, epoch: float = 0.0) -> tuple[Path, Path]:
    """Write the capture and its ``.keys`` file together; returns both paths.

    Both go to temporary files first and are renamed into place, so a failure
    leaves neither: a capture without its keys cannot be decrypted.
    """
    files = capture_files(capture, path, epoch)
    write_together(files)
    return files[0][0], files[1][0]


def capture_files(
    capture: Capture, path: Path | str, epoch: float = 0.0
) -> list[tuple[Path, bytes]]:
    """The capture and its ``.keys`` file as ``(path, bytes)``, to write together."""
    target = Path(path)
    return [
        (target, capture_bytes(capture, epoch)),
        (
            keys_path(target),
            "".join(line + "\n" for line in keys_lines(capture)).encode("utf-8"),
        ),
    ]
