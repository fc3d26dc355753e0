"""Hypothesis strategies shared by the codec tests."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import strategies as st

from gbcs.frame import CraFlag, GbcsMessage, GroupingHeader, OtherInformation
from gbcs.gbz import FC_DISABLE_DEFAULT_RESPONSE, GbzPayload, ZclFrame, one_component
from gbcs.primitives import CosemDateTime

ids = st.binary(min_size=8, max_size=8)
u64 = st.integers(0, 2**64 - 1)

date_times = st.builds(
    CosemDateTime,
    year=st.integers(0, 0xFFFF),
    month=st.integers(0, 255),
    day=st.integers(0, 255),
    day_of_week=st.integers(0, 255),
    hour=st.integers(0, 255),
    minute=st.integers(0, 255),
    second=st.integers(0, 255),
    hundredths=st.integers(0, 255),
    deviation=st.integers(-0x8000, 0x7FFF),
    clock_status=st.integers(0, 255),
)


@st.composite
def other_informations(draw: st.DrawFn) -> OtherInformation:
    code = draw(st.integers(0, 0xFFFF))
    depth = draw(st.integers(0, 4))
    if depth == 0:
        return OtherInformation(code)
    party = draw(ids)
    if depth == 1:
        return OtherInformation(code, party)
    counter = draw(u64)
    if depth == 2:
        return OtherInformation(code, party, counter)
    if depth == 3:
        return OtherInformation(code, party, counter, draw(u64))
    cert = draw(st.binary(min_size=1, max_size=300).filter(lambda b: len(b) != 8))
    return OtherInformation(code, party, counter, certificate=cert)


headers = st.builds(
    GroupingHeader,
    cra_flag=st.sampled_from(list(CraFlag)),
    originator_counter=u64,
    business_originator=ids,
    business_target=ids,
    other_information=other_informations(),
    date_time=st.none() | date_times,
)

messages = st.builds(
    GbcsMessage,
    header=headers,
    payload=st.binary(max_size=400),
    signature=st.sampled_from([None, b""]) | st.binary(min_size=64, max_size=64),
    mac=st.none() | st.binary(min_size=12, max_size=12),
).filter(lambda m: m.signature is not None or (m.mac is None and m.cra_flag is CraFlag.COMMAND))


def flip_disable_default_response(payload: GbzPayload) -> GbzPayload:
    """The one-component payload with its ZCL disable-default-response bit the other way:
    either value is valid ZCL, and a typed GBZ value must give back the one it was sent."""
    (component,) = payload.components
    frame = component.frame
    assert isinstance(frame, ZclFrame)
    flipped = replace(frame, frame_control=frame.frame_control ^ FC_DISABLE_DEFAULT_RESPONSE)
    return one_component(component.cluster_id, flipped)


def assert_disable_default_response_round_trips(value: Any) -> None:
    """A typed GBZ value parsed from its payload with either value of the bit writes back
    the bytes it was parsed from."""
    payload = value.to_payload()
    for sent in (payload, flip_disable_default_response(payload)):
        parsed = type(value).from_payload(sent)
        assert parsed.to_payload().encode() == sent.encode()
        assert parsed.disable_default_response == sent.components[0].frame.disable_default_response


def mutated(data: st.DataObject, raw: bytes) -> bytes:
    """``raw`` with one to three bytes set, bit-flipped, cut or inserted."""
    out = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, max(len(out) - 1, 0)))
        change = data.draw(st.sampled_from(["set", "flip", "cut", "insert"]))
        if change == "set" and out:
            out[at] = data.draw(st.integers(0, 255))
        elif change == "flip" and out:
            out[at] ^= 1 << data.draw(st.integers(0, 7))
        elif change == "cut" and out:
            del out[at]
        else:
            out.insert(at, data.draw(st.integers(0, 255)))
    return bytes(out)
