"""A-XDR Data values: exact bytes per tag, strictness, limits, JSON and round-trip properties."""

from __future__ import annotations

import json
import math
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gbcs import axdr
from gbcs.axdr import (
    Array,
    Bcd,
    BitString,
    Boolean,
    CompactArray,
    Data,
    Date,
    DateTime,
    DontCare,
    DoubleLong,
    DoubleLongUnsigned,
    Enum,
    Float32,
    Float64,
    Integer,
    Long,
    Long64,
    Long64Unsigned,
    LongUnsigned,
    NullData,
    OctetString,
    Structure,
    Tag,
    Time,
    TypeDescription,
    Unsigned,
    Utf8String,
    VisibleString,
)
from gbcs.errors import DecodeError, EncodeError
from gbcs.primitives import CosemDateTime, Reader, encode_length

EUI = bytes.fromhex("00DB1234567890A0")
TD = TypeDescription

# (hex, value) for every tag of CRIB §5.1 and the Blue Book extras (bcd, dont-care).
EXAMPLES: list[tuple[str, Data]] = [
    ("00", NullData()),
    ("0100", Array()),
    ("01021101 1102", Array((Unsigned(1), Unsigned(2)))),
    ("0200", Structure()),
    ("0202 0908 00DB1234567890A0 1601", Structure((OctetString(EUI), Enum(1)))),
    ("03FF", Boolean(True)),
    ("0300", Boolean(False)),
    ("0408C8", BitString(b"\xc8", 8)),
    ("0403E5", BitString(b"\xe5", 3)),  # padding bits 00101 kept as sent
    ("0400", BitString(b"", 0)),
    ("05FFFFFFFE", DoubleLong(-2)),
    ("0680000000", DoubleLongUnsigned(0x80000000)),
    ("0900", OctetString(b"")),
    ("090141", OctetString(b"A")),
    ("0903414243", OctetString(b"ABC")),
    ("0A03414243", VisibleString(b"ABC")),
    ("0C02C3A9", Utf8String("é".encode())),
    ("0D99", Bcd(-103)),
    ("0FDD", Integer(-35)),
    ("10FF9C", Long(-100)),
    ("11F7", Unsigned(247)),
    ("12005A", LongUnsigned(90)),
    ("14FFFFFFFFFFFFFFFF", Long64(-1)),
    ("15FFFFFFFFFFFFFFFF", Long64Unsigned(2**64 - 1)),
    ("1602", Enum(2)),
    ("173FC00000", Float32(struct.pack(">f", 1.5))),
    ("17 7FC00001", Float32(bytes.fromhex("7FC00001"))),  # NaN with a payload
    ("18 3FF8000000000000", Float64(struct.pack(">d", 1.5))),
    ("19 07DF0101FF000000008000FF", DateTime(bytes.fromhex("07DF0101FF000000008000FF"))),
    ("1A 07DF0101FF", Date(bytes.fromhex("07DF0101FF"))),
    ("1B 17320000", Time(bytes.fromhex("17320000"))),
    ("FF", DontCare()),
    (
        "13 020206 06 10 00000001 00000002 00000003 00000004",
        CompactArray(
            TD.structure(TD(Tag.DOUBLE_LONG_UNSIGNED), TD(Tag.DOUBLE_LONG_UNSIGNED)),
            (
                Structure((DoubleLongUnsigned(1), DoubleLongUnsigned(2))),
                Structure((DoubleLongUnsigned(3), DoubleLongUnsigned(4))),
            ),
        ),
    ),
    (
        "13 02 03 06 12 09 11 00000005 0007 03414243 00000006 0008 00",
        CompactArray(
            TD.structure(TD(Tag.DOUBLE_LONG_UNSIGNED), TD(Tag.LONG_UNSIGNED), TD(Tag.OCTET_STRING)),
            (
                Structure((DoubleLongUnsigned(5), LongUnsigned(7), OctetString(b"ABC"))),
                Structure((DoubleLongUnsigned(6), LongUnsigned(8), OctetString(b""))),
            ),
        ),
    ),
    (
        "13 01000211 04 0102 0304",
        CompactArray(
            TD.array(2, TD(Tag.UNSIGNED)),
            (Array((Unsigned(1), Unsigned(2))), Array((Unsigned(3), Unsigned(4)))),
        ),
    ),
    ("13 10 04 FFFE0005", CompactArray(TD(Tag.LONG), (Long(-2), Long(5)))),
    ("13 00 00", CompactArray(TD(Tag.NULL_DATA), ())),
    ("09 8180" + "AA" * 128, OctetString(b"\xaa" * 128)),
    ("09 820100" + "BB" * 256, OctetString(b"\xbb" * 256)),
]


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


@pytest.mark.parametrize(("hex_text", "value"), EXAMPLES, ids=[e[0][:24] for e in EXAMPLES])
def test_exact_bytes(hex_text: str, value: Data) -> None:
    raw = h(hex_text)
    assert axdr.decode(raw) == value
    assert axdr.encode(value) == raw
    assert value.encode() == raw
    assert axdr.from_json(json.loads(json.dumps(axdr.to_json(value), allow_nan=False))) == value


def test_values_are_frozen_and_typed() -> None:
    value = Unsigned(1)
    with pytest.raises(AttributeError):
        value.value = 2  # type: ignore[misc]
    assert Unsigned(1) != Enum(1)  # same int, different CHOICE arm
    assert hash(Structure((Unsigned(1),))) == hash(Structure((Unsigned(1),)))


def test_boolean_is_strict() -> None:
    with pytest.raises(DecodeError) as exc:
        axdr.decode(h("020203FF0301"), base=40)
    assert (exc.value.layer, exc.value.field, exc.value.offset) == ("axdr", "boolean", 45)
    assert "0x01" in exc.value.reason
    with pytest.raises(EncodeError):
        axdr.encode(Boolean(1))  # type: ignore[arg-type]


def test_float_nan_payload_round_trips() -> None:
    raw = h("17 7FC00001")
    value = axdr.decode(raw)
    assert isinstance(value, Float32)
    assert math.isnan(value.number)
    assert axdr.encode(value) == raw
    js = axdr.to_json(value)
    assert js == {"type": "float32", "value": "7FC00001", "number": "NaN"}
    assert axdr.from_json(js) == value
    assert Float64.of(-2.5).number == -2.5
    assert axdr.to_json(Float32.of(0.5))["number"] == 0.5


def test_bit_string_helpers() -> None:
    value = BitString.from_bits("110")
    assert value == BitString(b"\xc0", 3)
    assert value.bits == "110"
    assert axdr.to_json(BitString(b"\xc8", 8)) == {
        "type": "bit-string",
        "length": 8,
        "value": "C8",
        "bits": "11001000",
    }
    with pytest.raises(EncodeError):
        axdr.encode(BitString(b"\xc0\x00", 3))


def test_string_and_date_helpers() -> None:
    assert VisibleString.of("ABC").text == "ABC"
    assert VisibleString(b"\xff").text is None
    assert Utf8String.of("é").text == "é"
    stamp = CosemDateTime(2015, 1, 1, 0xFF, 0, 0, 0, 0, -0x8000, 0xFF)
    assert DateTime.of(stamp).cosem == stamp
    assert axdr.to_json(DateTime.of(stamp))["text"] == "2015-01-01 00:00:00"
    assert axdr.to_json(VisibleString(b"AB")) == {
        "type": "visible-string",
        "value": "4142",
        "text": "AB",
    }


def test_json_form() -> None:
    value = Structure((OctetString(EUI), Enum(1), Array((LongUnsigned(5),))))
    assert axdr.to_json(value) == {
        "type": "structure",
        "value": [
            {"type": "octet-string", "value": "00DB1234567890A0"},
            {"type": "enum", "value": 1},
            {"type": "array", "value": [{"type": "long-unsigned", "value": 5}]},
        ],
    }
    compact = axdr.decode(h("13 01000211 04 0102 0304"))
    assert axdr.to_json(compact)["element_type"] == {
        "type": "array",
        "count": 2,
        "element": "unsigned",
    }


@pytest.mark.parametrize(
    ("obj", "path"),
    [
        ({"type": "nope"}, "$.type"),
        ({"type": "structure", "value": [{"type": "long", "value": 99999}]}, "$.value[0]"),
        ({"type": "array", "value": [{"type": "enum", "value": "1"}]}, "$.value[0].value"),
        ({"type": "octet-string", "value": "XYZ"}, "$.value"),
        ({"type": "octet-string"}, "$.value"),
        ({"type": "boolean", "value": 1}, "$.value"),
        ({"type": "unsigned", "value": True}, "$.value"),
        ({"type": "float32", "value": "00"}, "$"),
        ({"type": "bit-string", "value": "C0"}, "$.length"),
        ({"type": "compact-array", "element_type": "octet", "value": []}, "$.element_type"),
        (
            {
                "type": "compact-array",
                "element_type": "unsigned",
                "value": [{"type": "enum", "value": 1}],
            },
            "$.value[0]",
        ),
        ([], "$"),
    ],
)
def test_from_json_errors_name_the_path(obj: object, path: str) -> None:
    with pytest.raises(EncodeError) as exc:
        axdr.from_json(obj)
    assert f" at {path}" in str(exc.value)


def test_from_json_refuses_deep_nesting() -> None:
    obj: dict[str, object] = {"type": "null-data"}
    for _ in range(axdr.MAX_DEPTH + 2):
        obj = {"type": "array", "value": [obj]}
    with pytest.raises(EncodeError, match="deeper"):
        axdr.from_json(obj)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (Unsigned(256), "$: unsigned value 256 is out of range"),
        (Structure((Long(0), Integer(200))), "$.value[1]: integer value 200"),
        (Array([Unsigned(1)]), "$: array value must be a tuple"),  # type: ignore[arg-type]
        (OctetString("text"), "octet-string value must be bytes"),  # type: ignore[arg-type]
        (DateTime(b"\x00" * 11), "date-time must be 12 bytes"),
        (CompactArray(TD(Tag.UNSIGNED), (Enum(1),)), "$.value[0]: element is Enum"),
        (CompactArray(TD.array(2, TD(Tag.UNSIGNED)), (Array((Unsigned(1),)),)), "has 1 elements"),
        (CompactArray(TD(Tag.NULL_DATA), (NullData(),)), "zero width"),
        (CompactArray(TD(Tag.COMPACT_ARRAY), ()), "cannot describe"),
        (Structure((3,)), "int is not an A-XDR Data value"),  # type: ignore[arg-type]
    ],
)
def test_encode_errors(value: Data, fragment: str) -> None:
    with pytest.raises(EncodeError) as exc:
        axdr.encode(value)
    assert fragment in str(exc.value)


# Decoding errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("hex_text", "field", "offset", "reason"),
    [
        ("", "tag", 100, "truncated"),
        ("07", "tag", 100, "unknown A-XDR tag 0x07"),
        ("0202 1101 08", "tag", 104, "unknown A-XDR tag 0x08"),
        ("0203 1101", "structure element tag", 104, "truncated"),
        ("09 8105" + "00" * 5, "octet-string length", 101, "non-minimal"),
        ("09 80", "octet-string length", 101, "indefinite"),
        ("09 84 00000001 00", "octet-string length", 101, "exceeds 3"),
        ("09 05 0102", "octet-string", 102, "needs 5 bytes, 2 left"),
        ("12 00", "long-unsigned", 101, "needs 2 bytes, 1 left"),
        ("06 000000", "double-long-unsigned", 101, "needs 4 bytes"),
        ("04 09 FF", "bit-string", 102, "needs 2 bytes"),
        ("11 05 00", "trailing bytes", 102, "1 unexpected"),
        ("13 13", "compact-array type description", 101, "cannot describe"),
        ("13 07", "compact-array type description", 101, "cannot describe"),
        ("13 11 03 0102", "compact-array contents", 103, "needs 3 bytes, 2 left"),
        ("13 12 03 000100", "long-unsigned", 105, "needs 2 bytes, 1 left"),
        ("13 00 01 00", "compact-array contents length", 102, "zero width"),
        ("13 01 0001", "compact-array type description", 104, "truncated"),
    ],
)
def test_decode_errors(hex_text: str, field: str, offset: int, reason: str) -> None:
    with pytest.raises(DecodeError) as exc:
        axdr.decode(h(hex_text), base=100)
    assert exc.value.layer == "axdr"
    assert exc.value.field == field
    assert exc.value.offset == offset
    assert reason in exc.value.reason


def test_compact_array_expansion_bomb_is_refused() -> None:
    # array(65535, structure(unsigned, array(65535, null))): 1 byte promises 65537 values
    bomb = h("13 01FFFF 0202 11 01FFFF00 82FFFE") + bytes(0xFFFE)
    with pytest.raises(DecodeError) as exc:
        axdr.decode(bomb)
    assert exc.value.field == "compact-array contents length"
    assert "expand" in exc.value.reason


def test_depth_limit() -> None:
    deepest = b"\x01\x01" * axdr.MAX_DEPTH + b"\x00"
    value = axdr.decode(deepest)
    assert axdr.encode(value) == deepest
    with pytest.raises(DecodeError) as exc:
        axdr.decode(b"\x01\x01" + deepest)
    assert "deeper" in exc.value.reason
    with pytest.raises(EncodeError, match="deeper"):
        axdr.encode(Array((value,)))


def test_truncation_at_every_offset_raises_decode_error() -> None:
    blob = b"".join(h(hex_text) for hex_text, _ in EXAMPLES)
    whole = h("01") + encode_length(len(EXAMPLES)) + blob
    assert len(axdr.decode(whole).value) == len(EXAMPLES)  # type: ignore[attr-defined]
    for cut in range(len(whole)):
        with pytest.raises(DecodeError) as exc:
            axdr.decode(whole[:cut], base=1000)
        assert 1000 <= exc.value.offset <= 1000 + cut


def test_read_and_read_sequence_respect_reader_bounds() -> None:
    data = h("AA 1105 120009 00 BB")
    r = Reader(data, "dlms", pos=1, base=50, end=5)
    assert axdr.read(r) == Unsigned(5)
    assert r.pos == 3
    with pytest.raises(DecodeError) as exc:
        axdr.read_sequence(r, 2)  # the long-unsigned is cut by end=5
    assert (exc.value.field, exc.value.offset) == ("long-unsigned", 54)
    r = Reader(data, "dlms", pos=1, base=50, end=7)
    assert axdr.read_sequence(r, 3) == (Unsigned(5), LongUnsigned(9), NullData())
    assert r.pos == 7


def test_data_class_lookup() -> None:
    assert axdr.data_class(0x12) is LongUnsigned
    assert axdr.data_class("compact-array") is CompactArray
    assert axdr.data_class(0x07) is None
    assert TD(Tag.LONG).type_name == "long"


# Hypothesis strategies ---------------------------------------------------------

INT_RANGES = {
    Integer: (-(2**7), 2**7 - 1),
    Bcd: (-(2**7), 2**7 - 1),
    Long: (-(2**15), 2**15 - 1),
    DoubleLong: (-(2**31), 2**31 - 1),
    Long64: (-(2**63), 2**63 - 1),
    Unsigned: (0, 2**8 - 1),
    Enum: (0, 2**8 - 1),
    LongUnsigned: (0, 2**16 - 1),
    DoubleLongUnsigned: (0, 2**32 - 1),
    Long64Unsigned: (0, 2**64 - 1),
}
FIXED_BYTES = {Float32: 4, Float64: 8, DateTime: 12, Date: 5, Time: 4}
STRINGS = (OctetString, VisibleString, Utf8String)


def bit_strings() -> st.SearchStrategy[BitString]:
    return st.integers(0, 40).flatmap(
        lambda n: st.binary(min_size=(n + 7) // 8, max_size=(n + 7) // 8).map(
            lambda raw: BitString(raw, n)
        )
    )


def simple_of(tag: int) -> st.SearchStrategy[Data]:
    """Values of one simple (non-container) type."""
    cls = axdr.data_class(tag)
    assert cls is not None
    if cls in INT_RANGES:
        low, high = INT_RANGES[cls]
        return st.integers(low, high).map(cls)
    if cls in FIXED_BYTES:
        size = FIXED_BYTES[cls]
        return st.binary(min_size=size, max_size=size).map(cls)
    if cls in STRINGS:
        return st.binary(max_size=20).map(cls)
    if cls is Boolean:
        return st.booleans().map(Boolean)
    if cls is BitString:
        return bit_strings()
    return st.just(cls())


SIMPLE_TAGS = sorted(int(t) for t in Tag if t not in (Tag.ARRAY, Tag.STRUCTURE, Tag.COMPACT_ARRAY))


def type_descriptions() -> st.SearchStrategy[TypeDescription]:
    return st.recursive(
        st.sampled_from(SIMPLE_TAGS).map(TypeDescription),
        lambda inner: st.one_of(
            st.tuples(st.integers(0, 3), inner).map(lambda t: TD.array(*t)),
            st.lists(inner, max_size=3).map(lambda members: TD.structure(*members)),
        ),
        max_leaves=5,
    )


def values_of(td: TypeDescription) -> st.SearchStrategy[Data]:
    if td.tag == Tag.ARRAY:
        return st.lists(values_of(td.members[0]), min_size=td.count, max_size=td.count).map(
            lambda items: Array(tuple(items))
        )
    if td.tag == Tag.STRUCTURE:
        return st.tuples(*(values_of(m) for m in td.members)).map(Structure)
    return simple_of(td.tag)


def zero_width(td: TypeDescription) -> bool:
    if td.tag == Tag.ARRAY:
        return td.count == 0 or zero_width(td.members[0])
    if td.tag == Tag.STRUCTURE:
        return all(zero_width(m) for m in td.members)
    return td.tag in (Tag.NULL_DATA, Tag.DONT_CARE)


def compact_arrays() -> st.SearchStrategy[CompactArray]:
    return type_descriptions().flatmap(
        lambda td: st.lists(values_of(td), max_size=0 if zero_width(td) else 4).map(
            lambda items: CompactArray(td, tuple(items))
        )
    )


def long_values() -> st.SearchStrategy[Data]:
    """Values whose length or count needs the long form (128 or more): the generated
    values above never reached one (audit 9, props T1)."""
    unsigned = st.integers(0, 255).map(Unsigned)
    return st.one_of(
        st.sampled_from(STRINGS).flatmap(
            lambda cls: st.binary(min_size=128, max_size=300).map(cls)
        ),
        st.lists(unsigned, min_size=128, max_size=140).map(lambda xs: Array(tuple(xs))),
        st.lists(unsigned, min_size=128, max_size=140).map(lambda xs: Structure(tuple(xs))),
        st.lists(unsigned, min_size=128, max_size=300).map(
            lambda xs: CompactArray(TD(Tag.UNSIGNED), tuple(xs))
        ),
        st.integers(1024, 2000).flatmap(
            lambda n: st.binary(min_size=(n + 7) // 8, max_size=(n + 7) // 8).map(
                lambda raw: BitString(raw, n)
            )
        ),
    )


def data_values() -> st.SearchStrategy[Data]:
    leaves = st.one_of(st.sampled_from(SIMPLE_TAGS).flatmap(simple_of), compact_arrays())
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4).map(lambda items: Array(tuple(items))),
            st.lists(children, max_size=4).map(lambda items: Structure(tuple(items))),
        ),
        max_leaves=20,
    )


FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(data_values())
def test_round_trip_of_generated_values(value: Data) -> None:
    raw = axdr.encode(value)
    assert axdr.decode(raw) == value
    text = json.dumps(axdr.to_json(value), allow_nan=False)
    assert axdr.from_json(json.loads(text)) == value


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(long_values(), st.sampled_from(SIMPLE_TAGS).flatmap(simple_of))
def test_round_trip_of_long_forms(value: Data, beside: Data) -> None:
    """Long-form lengths and counts, alone and inside a structure, both ways."""
    for whole in (value, Structure((beside, value, beside))):
        raw = axdr.encode(whole)
        assert axdr.decode(raw) == whole and axdr.encode(axdr.decode(raw)) == raw
        text = json.dumps(axdr.to_json(whole), allow_nan=False)
        assert axdr.from_json(json.loads(text)) == whole


def _decode_or_error(raw: bytes) -> None:
    try:
        value = axdr.decode(raw, base=7)
    except DecodeError as exc:
        assert exc.layer == "axdr"
        assert 7 <= exc.offset <= 7 + len(raw)
    else:
        assert axdr.encode(value) == raw


@FUZZ
@given(st.binary(max_size=80))
def test_arbitrary_bytes_decode_or_raise(raw: bytes) -> None:
    _decode_or_error(raw)


@FUZZ
@given(data_values(), st.data())
def test_mutated_encodings_decode_or_raise(value: Data, data: st.DataObject) -> None:
    raw = bytearray(axdr.encode(value))
    for _ in range(data.draw(st.integers(1, 3))):
        action = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        index = data.draw(st.integers(0, len(raw)))
        if action == "insert":
            raw.insert(index, data.draw(st.integers(0, 255)))
        elif raw and index < len(raw):
            if action == "flip":
                raw[index] = data.draw(st.integers(0, 255))
            else:
                del raw[index]
    _decode_or_error(bytes(raw))


def _checked(raw: bytes, base: int = 0) -> Data | DecodeError:
    """What the checked loop alone makes of ``raw`` (the reference for the fast paths)."""
    try:
        items, pos = axdr._read_items(raw, 0, len(raw), base, 0, 1, "tag")
    except DecodeError as exc:
        return exc
    if pos != len(raw):
        return DecodeError("axdr", "trailing bytes", base + pos, "trailing")
    return items[0]


def _same_outcome(raw: bytes, base: int = 0) -> None:
    expected = _checked(raw, base)
    if isinstance(expected, DecodeError):
        with pytest.raises(DecodeError) as info:
            axdr.decode(raw, base)
        if expected.field != "trailing bytes":
            assert info.value.as_dict() == expected.as_dict()
    else:
        assert axdr.decode(raw, base) == expected


def _same_shape_array(element: bytes, count: int) -> bytes:
    return b"\x01" + encode_length(count) + element * count


@pytest.mark.parametrize(
    "element",
    [
        "020209010110084",  # structure {octet-string(1), long}: the RTDS tariff table
        "0203090400000000090600000a0064ff120002",
        "06000000ff",
        "02030f801200ff0403c0",
        "020203ff0300",
        "020201000200",
        "020200ff",
        "020102021b010203041a07e80101ff",
        "0202050000fffe177fc00001",
        "020214000000000000000115ffffffffffffffff",
        "02030a0268690c00180000000000000000",
    ],
)
def test_same_shape_arrays_match_the_checked_loop(element: str) -> None:
    if len(element) % 2:
        element += "9"
    raw_element = bytes.fromhex(element)
    for count in (1, 7, 8, 9, 80, 200):
        raw = _same_shape_array(raw_element, count)
        _same_outcome(raw, 17)
        value = axdr.decode(raw)
        assert isinstance(value, Array) and len(value.value) == count
        assert axdr.encode(value) == raw
        # Every single-byte change and every truncation gives the checked loop's answer.
        if count == 9:
            for i in range(len(raw)):
                for b in (0x00, 0x01, 0x03, 0x80, 0x81, 0xFF, raw[i] ^ 0x01):
                    _same_outcome(raw[:i] + bytes((b,)) + raw[i + 1 :], 5)
                _same_outcome(raw[:i], 5)


def test_fast_loop_errors_match_the_checked_loop() -> None:
    samples = [
        "02020901ff0304",  # bad boolean
        "01820000",  # non-minimal count
        "01840000000100",
        "0980",  # indefinite length
        "0281ff" + "00" * 3,  # long count beyond the data
        "04820100" + "00" * 31,  # bit-string one byte short
        "04820100" + "00" * 32,
        "06000001",
        "130202060608" + "00" * 8,
        "130202060607" + "00" * 7,
        "0101" * 70 + "00",  # deeper than MAX_DEPTH
        "0101" * 60 + "00",
        "07",  # unknown tag
    ]
    for text in samples:
        _same_outcome(bytes.fromhex(text), 3)


@pytest.mark.parametrize("size", [0, 2, 5, 6, 12, 16, 17, 40])
def test_interned_octet_strings_match_the_checked_loop(size: int) -> None:
    content = bytes(range(0x30, 0x30 + size))
    leaf = b"\x09" + encode_length(size) + content
    samples = [
        leaf,
        b"\x02\x02" + leaf + b"\x12\x00\x07",  # inside a structure
        _same_shape_array(b"\x02\x02" + leaf + b"\x11\x01", 9),  # column-wise array
        b"\x13\x02\x02\x12\x09" + encode_length(9 * (2 + len(encode_length(size)) + size))
        + (b"\x00\x05" + encode_length(size) + content) * 9,  # compact array
    ]  # fmt: skip
    for raw in samples:
        _same_outcome(raw, 11)
        first, again = axdr.decode(raw), axdr.decode(raw)
        assert first == again and axdr.encode(first) == raw
        for i in range(len(raw)):
            _same_outcome(raw[:i], 3)
            _same_outcome(raw[:i] + bytes((raw[i] ^ 0x01,)) + raw[i + 1 :], 3)
    value = axdr.decode(leaf)
    assert value == OctetString(content) and type(value.value) is bytes


def test_octet_string_interning_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(axdr, "_OCTETS", {})
    monkeypatch.setattr(axdr, "_INTERN_LIMIT", 3)
    for n in range(10):
        raw = b"\x09\x04" + n.to_bytes(4, "big")
        assert axdr.decode(raw) == OctetString(n.to_bytes(4, "big"))
        assert axdr.decode(raw) == OctetString(n.to_bytes(4, "big"))
    assert len(axdr._OCTETS) == 3


# The fast encoder against the checked one -------------------------------------------


def _encode_outcome(f: object, value: object) -> tuple[str, object]:
    """What an encoder gives: its bytes, or its exception's type and message."""
    try:
        return "value", f(value)  # type: ignore[operator]
    except Exception as exc:  # the comparison is the point
        return type(exc).__name__, str(exc)


ODD_LEAVES = st.one_of(
    st.sampled_from(list(INT_RANGES)).flatmap(
        lambda cls: st.one_of(
            st.integers(-(2**65), 2**65), st.booleans(), st.just(1.0), st.just(Tag.ARRAY)
        ).map(cls)
    ),
    st.one_of(st.just("text"), st.binary(max_size=4).map(bytearray), st.just(None)).map(
        OctetString
    ),
    st.binary(max_size=300).map(OctetString),
    st.one_of(st.just(1), st.just(None)).map(Boolean),
    st.just(3),
    st.just(DateTime(b"\x00" * 11)),
)


def odd_values() -> st.SearchStrategy[object]:
    """Valid values with invalid ones mixed in, and lists where tuples belong."""
    leaves = st.one_of(data_values(), ODD_LEAVES)
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4).map(lambda items: Array(tuple(items))),
            st.lists(children, max_size=4).map(lambda items: Structure(tuple(items))),
            st.lists(children, max_size=2).map(Structure),  # type: ignore[arg-type]
        ),
        max_leaves=12,
    )


@FUZZ
@given(data_values())
def test_fast_encoder_matches_checked(value: Data) -> None:
    assert axdr.encode(value) == axdr.encode_checked(value)


@FUZZ
@given(odd_values())
def test_fast_encoder_errors_match_checked(value: Data) -> None:
    assert _encode_outcome(axdr.encode, value) == _encode_outcome(axdr.encode_checked, value)


@pytest.mark.parametrize("depth", [axdr.MAX_DEPTH - 1, axdr.MAX_DEPTH, axdr.MAX_DEPTH + 1])
@pytest.mark.parametrize("kind", [Array, Structure])
def test_fast_encoder_depth_limit_matches_checked(depth: int, kind: type[Array]) -> None:
    value: Data = OctetString(b"leaf")
    for _ in range(depth):
        value = kind((value,))
    assert _encode_outcome(axdr.encode, value) == _encode_outcome(axdr.encode_checked, value)


@pytest.mark.parametrize("size", [0x7F, 0x80, 0xFF, 0x100, 0x10000])
def test_fast_encoder_long_lengths(size: int) -> None:
    for value in (OctetString(bytes(size)), Array((NullData(),) * size)):
        assert axdr.encode(value) == axdr.encode_checked(value)
        assert axdr.decode(axdr.encode(value)) == value


def test_from_json_refuses_unknown_keys_and_contradicting_texts() -> None:
    """Nothing in an edited tree is silently dropped: an unknown key, or a ``text`` /
    ``bits`` edited instead of ``value``, is an error naming its path."""
    good = axdr.to_json(axdr.VisibleString(b"GBHL"))
    assert axdr.from_json(good) == axdr.VisibleString(b"GBHL")
    for bad, where in [
        ({**good, "text": "ACME"}, r"\$\.text: 'ACME' disagrees with value"),
        ({**good, "comment": 1}, r"\$\.comment: unknown key for a visible-string"),
        ({"type": "long-unsigned", "value": 5, "text": "5"}, r"\$\.text: unknown key"),
        ({**axdr.to_json(axdr.BitString(b"\x80", 1)), "bits": "0"}, r"\$\.bits: '0' disagrees"),
        (
            {"type": "structure", "value": [{"type": "null-data", "value": 5}]},
            r"\$\.value\[0\]\.value: unknown key for a null-data",  # 5 would be dropped
        ),
    ]:
        with pytest.raises(EncodeError, match=where):
            axdr.from_json(bad)
