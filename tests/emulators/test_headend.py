"""What the DCC head end accepts from the WAN (emulators/headend.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

import pytest

from emulators.chf import CommsHub, RouteFailure
from emulators.clock import VirtualClock
from emulators.headend import LATE_RESPONSE_GRACE, HeadEnd, _Pending
from emulators.meters import Esme, Gsme, Meter
from gbcs import asn1, dlms
from gbcs.devicelog import ReadDeviceLogs
from gbcs.frame import CraFlag, build_header, build_message, decode_message, new_alert
from gbcs.joins import JoinDetails


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
    for_meter, for_hub = _Pending(meter, 0x0013), _Pending(hub, 0x0008)
    headend._pending.update({(b"s", 1): for_meter, (b"s", 2): for_hub})
    headend._route_failure(RouteFailure(meter, "removed while held"))
    assert (for_meter.failure, for_hub.failure) == ("removed while held", None)


def test_a_failure_that_may_not_be_final_settles_after_the_grace(headend: HeadEnd) -> None:
    """A failure saying the message may still have arrived is the outcome only if no
    response comes within the grace; a final one settles at once."""
    meter = bytes.fromhex("00DB1234567890A0")
    maybe, final = _Pending(meter, 0x0013), _Pending(meter, 0x0013)
    headend._pending.update({(b"s", 1): maybe, (b"s", 2): final})
    headend._route_failure(RouteFailure(meter, "unacknowledged", (b"s", 1), final=False))
    headend._route_failure(RouteFailure(meter, "removed", (b"s", 2)))
    assert (maybe.failure, maybe.settled) == ("unacknowledged", False)
    assert (final.failure, final.settled) == ("removed", True)
    clock = headend.clock
    start = clock.now
    clock.run(start + LATE_RESPONSE_GRACE - 0.001)
    assert not maybe.settled
    clock.run(start + LATE_RESPONSE_GRACE)
    assert maybe.settled


def test_a_response_within_the_grace_is_the_outcome(
    esme: Esme, headend: HeadEnd, clock: VirtualClock
) -> None:
    """The hub said the message may not have arrived; the meter's answer then came."""

    class Hub:  # the WAN side of a hub whose HAN lost only the acknowledgements
        def from_wan(self, data: bytes) -> None:
            command = decode_message(data)[0]
            failure = RouteFailure(
                esme.eui64,
                "unacknowledged",
                (command.header.business_originator, command.header.originator_counter),
                final=False,
            )
            clock.call_later(0.01, headend._route_failure, failure)
            clock.call_later(0.5, _answer, data)

    def _answer(data: bytes) -> None:
        response = esme.receive(data, decode_message(data))
        assert response is not None
        headend._from_wan(response)

    command = headend.command(0x0013, asn1.encode(JoinDetails.COMMAND), esme.eui64)
    outcome = headend.send(cast(CommsHub, Hub()), command)
    assert outcome.ok and outcome.failure is None
    assert outcome.answered_at == 0.5 + outcome.sent_at


def test_a_bad_timeout_is_refused_before_anything_is_sent(headend: HeadEnd, esme: Esme) -> None:
    """A CS02f sent with timeout=inf used to reach the hub (and divorce the meter) before
    the clock refused the wait, leaving a pending entry behind."""
    given: list[bytes] = []
    hub = cast(CommsHub, type("Hub", (), {"from_wan": lambda self, data: given.append(data)})())
    command = headend.command(0x0013, asn1.encode(JoinDetails.COMMAND), esme.eui64)
    for bad in (float("inf"), float("nan"), -1.0):
        with pytest.raises(ValueError, match="a timeout must be finite and not negative"):
            headend.send(hub, command, timeout=bad)
    assert given == [] and headend._pending == {} and headend.log == []


def _answer_from(
    device: Meter, command: bytes, *, code: int | None = None, flag: CraFlag, mac: HeadEnd
) -> bytes:
    """A MAC'd message from ``device`` echoing ``command``'s counter: its response, or a
    forgery with another message code or CRA flag (a command's MAC is keyed from the
    recipient's side, which only the head end here holds: ``mac``)."""
    h = decode_message(command)[0].header
    other = h.other_information
    if code is not None:
        other = replace(other, message_code=code)
    header = build_header(flag, h.originator_counter, device.eui64, h.business_originator, other)
    message = build_message(header, asn1.encode(JoinDetails(0, ()).to_payload()))
    security = mac.security if flag is CraFlag.COMMAND else device.security
    return security.protect(message, sign=False, mac=True).encode()


@pytest.mark.parametrize(
    ("sender", "code", "flag"),
    [
        ("other", None, CraFlag.RESPONSE),  # another device echoing the counter
        ("target", 0x0004, CraFlag.RESPONSE),  # the target, but another use case's code
        ("target", None, CraFlag.COMMAND),  # not a response at all
    ],
)
def test_only_the_targets_response_with_the_commands_code_is_the_outcome(
    esme: Esme,
    gsme: Gsme,
    headend: HeadEnd,
    clock: VirtualClock,
    sender: str,
    code: int | None,
    flag: CraFlag,
) -> None:
    """CRIB §9.6: a response swaps the command's originator and target and echoes its
    counter and message code. A whitelisted device PUTting a message that only echoes the
    counter of another device's pending command is not that command's outcome."""
    forger: Meter = gsme if sender == "other" else esme

    class Hub:
        def from_wan(self, data: bytes) -> None:
            forged = _answer_from(forger, data, code=code, flag=flag, mac=headend)
            clock.call_later(0.5, headend._from_wan, forged)
            clock.call_later(2.0, lambda: headend._from_wan(esme.receive(data) or b""))

    command = headend.command(0x0013, asn1.encode(JoinDetails.COMMAND), esme.eui64)
    outcome = headend.send(cast(CommsHub, Hub()), command, timeout=10)
    assert outcome.ok and outcome.answered_at == outcome.sent_at + 2.0  # the real one
    assert outcome.response is not None
    assert outcome.response.header.business_originator == esme.eui64
    (why,) = headend.received.rejected
    assert why.endswith(
        f"from {forger.eui64.hex().upper()} echoing counter "
        f"{command.header.originator_counter:#x} of a command 0x0013 to "
        f"{esme.eui64.hex().upper()}"
    )


@pytest.mark.parametrize("then_valid", [False, True])
def test_a_response_that_does_not_verify_is_reported_if_no_valid_one_comes(
    esme: Esme, headend: HeadEnd, clock: VirtualClock, then_valid: bool
) -> None:
    """The target answered, but its MAC does not verify (keys not matching its
    certificates): not the outcome, and no reason to stop waiting; if nothing valid comes,
    the failure says what came rather than 'no response'."""

    class Hub:
        def from_wan(self, data: bytes) -> None:
            good = esme.receive(data)
            assert good is not None
            bad = good[:-1] + bytes([good[-1] ^ 1])  # the MAC's last byte
            clock.call_later(0.5, headend._from_wan, bad)
            if then_valid:
                clock.call_later(2.0, headend._from_wan, good)

    command = headend.command(0x0013, asn1.encode(JoinDetails.COMMAND), esme.eui64)
    outcome = headend.send(cast(CommsHub, Hub()), command, timeout=10)
    (why,) = headend.received.rejected
    assert why.startswith("VerificationError: MAC")
    if then_valid:
        assert outcome.ok and outcome.rejected is None and outcome.answered_at == 2.0
    else:
        assert not outcome.ok and clock.now == 10.0  # waited it out
        assert outcome.rejected == why
        assert outcome.failure == f"its response was rejected ({why})"


class _SilentHub:
    """A hub that takes a command and answers nothing in time."""

    data: bytes = b""

    def from_wan(self, data: bytes) -> None:
        self.data = data


def test_a_response_after_the_timeout_is_unexpected(headend: HeadEnd, esme: Esme) -> None:
    """Once send() gave up on a command, a response that still comes is recorded as
    unexpected, not taken by a stale pending entry (audit 9, mut F2; README: a held
    message the head end stopped waiting for still runs, and its response is unexpected)."""
    hub = _SilentHub()
    command = headend.command(0x0013, asn1.encode(JoinDetails.COMMAND), esme.eui64)
    outcome = headend.send(cast(CommsHub, hub), command, timeout=10)
    assert not outcome.ok and outcome.failure == "no response within 10 s"
    late = esme.receive(hub.data)
    assert late is not None
    headend._from_wan(late)
    counter = command.header.originator_counter
    assert headend.received.rejected == [f"unexpected response 0x0013 counter {counter:#x}"]
    assert headend._pending == {}


def test_device_log_commands_carry_their_counter_in_the_invoke_id(
    headend: HeadEnd, make_hub: Any
) -> None:
    """CRIB §5.1: a DLMS command's invoke id is 0x20 || the low 24 bits of its originator
    counter (743/743 RTDS vectors). The tests build CCS commands with their own copy of
    that rule, so the head end's, which services and scenarios use, went unpinned (audit
    9, mut F6)."""
    hub = make_hub()
    for _ in range(2):
        message = headend.device_log_command(
            ReadDeviceLogs(), ReadDeviceLogs.MESSAGE_CODE, hub.eui64, headend.party("supplier")
        )
        counter = message.header.originator_counter
        apdu = dlms.decode(message.payload)
        assert apdu.invoke_id == 0x20000000 | counter & 0xFFFFFF


class _ScriptedHub:
    """A hub that, given the command, books what the test tells it to on the clock."""

    def __init__(self, *actions: Any) -> None:
        self.actions = actions

    def from_wan(self, data: bytes) -> None:
        for action in self.actions:
            action(data)


def _tampered(data: bytes) -> bytes:
    return data[:-1] + bytes((data[-1] ^ 1,))  # its MAC no longer verifies


def test_a_route_failure_and_a_rejected_response_are_both_reported(
    headend: HeadEnd, esme: Esme
) -> None:
    """Neither report is dropped for the other (audit 9, mut F9): the hub's reason and the
    rejected response's."""
    clock = headend.clock
    command = headend.command(0x0013, asn1.encode(JoinDetails.COMMAND), esme.eui64)
    key = (command.header.business_originator, command.header.originator_counter)
    failure = RouteFailure(esme.eui64, "acks lost, may have arrived", key, final=False)
    hub = _ScriptedHub(
        lambda data: clock.call_soon(headend._route_failure, failure),
        lambda data: clock.call_soon(
            lambda: headend._from_wan(_tampered(cast(bytes, esme.receive(data))))
        ),
    )
    outcome = headend.send(cast(CommsHub, hub), command, timeout=30)
    assert outcome.failure is not None
    assert outcome.failure.startswith("acks lost, may have arrived; its response was rejected")


def test_a_second_route_failure_does_not_replace_the_first(headend: HeadEnd, esme: Esme) -> None:
    """A not-final failure becomes the outcome after its grace; a later failure for the same
    command neither replaces it nor ends the grace early (audit 9, mut F9)."""
    clock = headend.clock
    command = headend.command(0x0013, asn1.encode(JoinDetails.COMMAND), esme.eui64)
    key = (command.header.business_originator, command.header.originator_counter)
    first = RouteFailure(esme.eui64, "first: acks lost", key, final=False)
    second = RouteFailure(esme.eui64, "second: tunnel refused", key, final=True)
    hub = _ScriptedHub(
        lambda data: clock.call_soon(headend._route_failure, first),
        lambda data: clock.call_later(1, headend._route_failure, second),
    )
    start = clock.now
    outcome = headend.send(cast(CommsHub, hub), command, timeout=30)
    assert outcome.failure == "first: acks lost"
    assert clock.now - start == pytest.approx(LATE_RESPONSE_GRACE)
