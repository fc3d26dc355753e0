"""A fake EZSP NCP on the controller side of a pseudo-terminal, for probing at the serial level.

It speaks just enough ASH (bellows' own frame classes) to get a probe as far as the
case under test: it always answers the reset, then behaves as ``mode`` says.
"""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from bellows import ash
from bellows import types as bt

Mode = Literal["mute", "version-only", "garbled"]
"""``mute``: never acknowledges a data frame. ``version-only``: answers the EZSP version
(v4), and getEui64 when it was given one, and acknowledges, but never answers, anything
else. ``garbled``: answers the version with a frame too short to parse."""

VERSION, GET_EUI64 = 0x00, 0x26  # EZSP frame ids (legacy frame format, v4)

FLAG = bytes([ash.Reserved.FLAG])
CANCEL = bytes([ash.Reserved.CANCEL])


class FakeNcp(threading.Thread):
    """The NCP end of a pty; stop it with :meth:`stop` before closing the descriptor."""

    def __init__(self, fd: int, mode: Mode, eui64: bytes | None = None) -> None:
        super().__init__(daemon=True, name="fake-ncp")
        self.fd, self.mode = fd, mode
        self.eui64 = eui64  # display order; None: getEui64 is not answered
        self._stopped = threading.Event()
        self._tx = self._rx = 0

    def stop(self) -> None:
        self._stopped.set()
        self.join(2)

    def run(self) -> None:
        pending = b""
        while not self._stopped.is_set():
            try:
                if not select.select([self.fd], [], [], 0.02)[0]:
                    continue
            except (OSError, ValueError):  # the descriptor was closed under us
                return
            try:
                pending += os.read(self.fd, 4096)
            except OSError:
                return
            *raws, pending = pending.split(FLAG)
            for raw in raws:
                raw = raw.rpartition(CANCEL)[2]
                try:
                    frame = ash.parse_frame(bytes(ash.AshProtocol._unstuff_bytes(raw)))
                except Exception:
                    continue
                self._frame(frame)

    def _send(self, frame: ash.AshFrame) -> None:
        os.write(self.fd, bytes(ash.AshProtocol._stuff_bytes(frame.to_bytes())) + FLAG)

    def _frame(self, frame: ash.AshFrame) -> None:
        if isinstance(frame, ash.RstFrame):
            self._tx = self._rx = 0
            self._send(ash.RStackFrame(version=2, reset_code=bt.NcpResetCode.RESET_SOFTWARE))
            return
        if not isinstance(frame, ash.DataFrame) or self.mode == "mute":
            return
        if frame.frm_num != self._rx:
            return
        self._rx = (self._rx + 1) % 8
        ezsp = frame.ezsp_frame  # legacy frame format: sequence, control, frame id
        body = self._answer(ezsp[2])
        if body is None:
            self._send(ash.AckFrame(res=0, ncp_ready=0, ack_num=self._rx))
            return
        reply = bytes([ezsp[0], 0x80, ezsp[2]]) + body
        self._send(ash.DataFrame(frm_num=self._tx, re_tx=False, ack_num=self._rx, ezsp_frame=reply))
        self._tx = (self._tx + 1) % 8

    def _answer(self, frame_id: int) -> bytes | None:
        """The parameters of the answer to a command, None for none."""
        if frame_id == VERSION:
            return b"" if self.mode == "garbled" else bytes([4, 2, 0x40, 0x07])  # v4, 7.4
        if frame_id == GET_EUI64 and self.eui64 is not None:
            return self.eui64[::-1]  # EZSP sends an EUI-64 little-endian
        return None


@contextmanager
def fake_ncp(mode: Mode, eui64: bytes | None = None) -> Iterator[str]:
    """A serial port (the pty's terminal side) with a fake NCP behind it; yields its path."""
    controller, terminal = os.openpty()
    ncp = FakeNcp(controller, mode, eui64)
    ncp.start()
    try:
        yield os.ttyname(terminal)
    finally:
        ncp.stop()
        os.close(controller)
        os.close(terminal)
