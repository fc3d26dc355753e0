"""What the DCC head end accepts from the WAN (emulators/headend.py)."""

from __future__ import annotations

from emulators.chf import RouteFailure
from emulators.headend import HeadEnd, _Pending
from emulators.meters import Esme
from gbcs.frame import new_alert


def _alert(esme: Esme, *, sign: bool, mac: bool) -> bytes:
    message = new_alert(
        0x0018, b"\x01", originator=esme.eui64, target=esme.anchors.acb.party_id, counter=7
    )
    return esme.security.protect(message, sign=sign, mac=mac).encode()


def test_a_message_neither_macd_nor_signed_is_refused(esme: Esme, headend: HeadEnd) -> None:
    bare = _alert(esme, sign=False, mac=False)
    assert bare[0] == 0xDF and bare[-1] == 0x00  # General Signing, signature length 0
    headend._from_wan(bare)
    assert headend.received.alerts == []
    assert headend.received.rejected == ["VerificationError: neither MAC'd nor signed"]


def test_a_macd_or_a_signed_alert_is_taken(esme: Esme, headend: HeadEnd) -> None:
    for data in (_alert(esme, sign=False, mac=True), _alert(esme, sign=True, mac=False)):
        headend._from_wan(data)
    assert headend.received.rejected == []
    assert [m.header.originator_counter for m in headend.received.alerts] == [7, 7]


def test_a_route_failure_fails_only_the_commands_for_that_device(headend: HeadEnd) -> None:
    """A held message failed later (its GSME removed) must not fail a command to the CHF."""
    meter, hub = bytes.fromhex("00DB1234567890A1"), bytes.fromhex("00DB12345678C000")
    for_meter, for_hub = _Pending(meter), _Pending(hub)
    headend._pending.update({(b"s", 1): for_meter, (b"s", 2): for_hub})
    headend._route_failure(RouteFailure(meter, "removed while held"))
    assert (for_meter.failure, for_hub.failure) == ("removed while held", None)
