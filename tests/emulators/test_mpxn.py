"""MPAN/MPRN validation and the Production Proving guard (dummy ranges, excluded SRVs)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulators.mpxn import (
    ALLOCATED_DISTRIBUTOR_IDS,
    DEFAULT_DUMMY_RANGES,
    EXCLUDED_PRODUCTION_PROVING_SRVS,
    MPAN_WEIGHTS,
    DummyRange,
    ExcludedServiceRequest,
    Mpan,
    MpanTopLine,
    Mprn,
    MpxnError,
    ProductionProvingPolicy,
    dummy_mpan,
    dummy_mprn,
    is_excluded,
    mpan_check_digit,
    parse_full_mpan,
    parse_mpxn,
    refuse_excluded,
)
from gbcs.errors import GbcsError

# Public examples: the limejump/mpan README (core and 21-digit full form) and a worked
# example on shaunfreeman.name ("1800021679848 has the check digit 8", products sum 1328).
KNOWN_VALID = [("1312345678907", 7), ("1800021679848", 8)]
FULL_EXAMPLE = "001112221312345678907"

digits12 = st.text(alphabet="0123456789", min_size=12, max_size=12)


def with_check(body: str) -> str:
    return body + str(mpan_check_digit(body))


def residue(body: str) -> int:
    return sum(int(d) * w for d, w in zip(body, MPAN_WEIGHTS, strict=True)) % 11


# --------------------------------------------------------------------------- MPAN


def test_weights_are_the_primes_from_3_without_11() -> None:
    assert MPAN_WEIGHTS == (3, 5, 7, 13, 17, 19, 23, 29, 31, 37, 41, 43)


@pytest.mark.parametrize(("core", "check"), KNOWN_VALID)
def test_known_valid_mpans(core: str, check: int) -> None:
    assert mpan_check_digit(core[:12]) == check
    mpan = Mpan.parse(core)
    assert mpan == Mpan(core)
    assert str(mpan) == core
    assert mpan.check_digit == check
    assert mpan.distributor_id == core[:2]
    assert mpan.unique_reference == core[2:12]


def test_worked_example_sum() -> None:
    body = "180002167984"
    assert sum(int(d) * w for d, w in zip(body, MPAN_WEIGHTS, strict=True)) == 1328
    assert 1328 % 11 % 10 == 8


@pytest.mark.parametrize(("core", "check"), KNOWN_VALID)
def test_every_single_digit_corruption_is_rejected(core: str, check: int) -> None:
    assert check != 0  # residues 1-9 map to themselves, so every change shows
    count = 0
    for position in range(13):
        for digit in "0123456789":
            if digit == core[position]:
                continue
            bad = core[:position] + digit + core[position + 1 :]
            with pytest.raises(MpxnError):
                Mpan(bad)
            with pytest.raises(MpxnError):
                Mpan.parse(bad)
            count += 1
    assert count == 13 * 9


@given(digits12, st.integers(0, 11), st.integers(1, 9))
def test_single_substitution_is_caught_unless_residues_0_and_10_meet(
    body: str, position: int, delta: int
) -> None:
    core = with_check(body)
    new = str((int(core[position]) + delta) % 10)
    bad = core[:position] + new + core[position + 1 :]
    undetectable = {residue(body), residue(bad[:12])} == {0, 10}
    if undetectable:
        assert Mpan(bad).core == bad  # the documented weakness of "mod 11 mod 10"
    else:
        with pytest.raises(MpxnError, match="bad check digit"):
            Mpan(bad)


def test_documented_weakness_has_a_concrete_case() -> None:
    # Residue 0 and residue 10 both give check digit 0.
    body = "000000000000"
    assert residue(body) == 0
    for position, weight in enumerate(MPAN_WEIGHTS):
        for digit in range(1, 10):
            if digit * weight % 11 == 10:
                other = body[:position] + str(digit) + body[position + 1 :]
                assert Mpan(with_check(body)) and Mpan(with_check(other))
                assert with_check(other)[-1] == "0"
                return
    pytest.fail("no residue-10 neighbour found")


def test_check_digit_error_names_the_expected_digit() -> None:
    with pytest.raises(MpxnError, match=r"bad check digit 0: expected 7"):
        Mpan("1312345678900")


@given(digits12)
def test_any_body_with_its_check_digit_is_valid(body: str) -> None:
    core = with_check(body)
    assert Mpan(core).core == core
    wrong = core[:12] + str((int(core[12]) + 1) % 10)
    with pytest.raises(MpxnError):
        Mpan(wrong)


@pytest.mark.parametrize("length", [0, 1, 12, 14, 20, 22, 25])
def test_wrong_mpan_lengths(length: int) -> None:
    text = ("1312345678907" * 2)[:length]
    with pytest.raises(MpxnError, match=r"empty|13 digits"):
        Mpan.parse(text)


def test_core_constructor_length_message() -> None:
    with pytest.raises(MpxnError, match="must be 13 digits, got 12"):
        Mpan("131234567890")


@pytest.mark.parametrize(
    ("text", "char", "position"),
    [("13123456789O7", "O", 12), ("x312345678907", "x", 1), ("131234567.907", ".", 10)],
)
def test_non_digits_are_named(text: str, char: str, position: int) -> None:
    with pytest.raises(MpxnError, match=rf"non-digit '{char}' at position {position}"):
        Mpan.parse(text)


@pytest.mark.parametrize("value", [1312345678907, None, b"1312345678907"])
def test_non_strings_are_refused(value: object) -> None:
    with pytest.raises(MpxnError, match="must be a string"):
        Mpan.parse(value)  # type: ignore[arg-type]
    with pytest.raises(MpxnError, match="must be a string"):
        Mpan(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["13 1234 5678 907", "13-1234-5678-907", " 1312345678907\n"])
def test_spaces_and_dashes_are_tolerated(text: str) -> None:
    assert Mpan.parse(text).core == "1312345678907"


def test_allocated_distributors_are_10_to_38() -> None:
    assert sorted(ALLOCATED_DISTRIBUTOR_IDS) == [str(i) for i in range(10, 39)]


@pytest.mark.parametrize("distributor", ["10", "23", "24", "29", "38"])
def test_allocated_distributor_ids_parse(distributor: str) -> None:
    core = with_check(distributor + "0000000001")
    assert Mpan.parse(core).distributor_id == distributor


@pytest.mark.parametrize("distributor", ["00", "09", "39", "50", "99"])
def test_unknown_distributor_ids_are_refused(distributor: str) -> None:
    core = with_check(distributor + "0000000001")
    Mpan(core)  # structurally fine: the constructor does not judge the distributor
    with pytest.raises(MpxnError, match=f"unknown distributor ID {distributor}"):
        Mpan.parse(core)
    assert Mpan.parse(core, extra_distributor_ids={distributor}).distributor_id == distributor


def test_full_mpan_form() -> None:
    top, mpan = parse_full_mpan(FULL_EXAMPLE)
    assert top == MpanTopLine("00", "111", "222")
    assert str(top) == "00111222"
    assert mpan == Mpan("1312345678907")
    assert Mpan.parse(FULL_EXAMPLE) == mpan
    assert parse_full_mpan("1312345678907") == (None, mpan)


@pytest.mark.parametrize(
    "text",
    ["S 00 111 222 13 1234 5678 907", "s001112221312345678907", "00-111-222-1312345678907"],
)
def test_full_mpan_spellings(text: str) -> None:
    assert Mpan.parse(text).core == "1312345678907"
    assert parse_mpxn(text) == Mpan("1312345678907")


def test_full_mpan_llfc_may_hold_capitals() -> None:
    top, _ = parse_full_mpan("0380112A1312345678907")
    assert top is not None and top.line_loss_factor_class == "12A"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("0A1112221312345678907", "top line .* non-digit 'A' at position 2"),
        ("00111a221312345678907", "'a' at position 6"),
        ("001112221312345678900", "expected 7"),
        ("001112229912345678906", "unknown distributor ID 99"),
    ],
)
def test_full_mpan_errors(text: str, match: str) -> None:
    with pytest.raises(MpxnError, match=match):
        Mpan.parse(text)


# --------------------------------------------------------------------------- MPRN


@pytest.mark.parametrize("value", ["123456", "1234567", "12345678", "123456789", "1234567890"])
def test_mprn_lengths_6_to_10(value: str) -> None:
    assert Mprn.parse(value) == Mprn(value)
    assert str(Mprn(value)) == value


@pytest.mark.parametrize("value", ["1", "12345", "12345678901", "123456789012"])
def test_mprn_wrong_lengths(value: str) -> None:
    with pytest.raises(MpxnError, match=f"6 to 10 digits, got {len(value)}"):
        Mprn.parse(value)


def test_mprn_non_digit_and_separators() -> None:
    with pytest.raises(MpxnError, match="non-digit 'A' at position 6"):
        Mprn.parse("12345A")
    assert Mprn.parse("1234 5678-90").value == "1234567890"
    with pytest.raises(MpxnError, match="empty"):
        Mprn.parse(" - ")


@given(st.text(alphabet="0123456789", min_size=6, max_size=10))
def test_any_6_to_10_digits_is_an_mprn_no_check_digit_applied(value: str) -> None:
    assert Mprn(value).value == value
    assert parse_mpxn(value) == Mprn(value)


# --------------------------------------------------------------------------- parse_mpxn


def test_parse_mpxn_infers_kind() -> None:
    assert parse_mpxn("1312345678907") == Mpan("1312345678907")
    assert parse_mpxn(FULL_EXAMPLE) == Mpan("1312345678907")
    assert parse_mpxn("123456") == Mprn("123456")
    assert parse_mpxn("1312345678907", "mpan") == Mpan("1312345678907")
    assert parse_mpxn("1312345678", "mprn") == Mprn("1312345678")


@pytest.mark.parametrize("text", ["12345", "12345678901", "123456789012", "12345678901234"])
def test_parse_mpxn_ambiguous_lengths(text: str) -> None:
    with pytest.raises(MpxnError, match=f"cannot tell an MPAN from an MPRN with {len(text)}"):
        parse_mpxn(text)


def test_parse_mpxn_explicit_kind_wins_and_bad_kind() -> None:
    with pytest.raises(MpxnError, match="6 to 10 digits"):
        parse_mpxn("1312345678907", "mprn")
    with pytest.raises(MpxnError, match="13 digits"):
        parse_mpxn("123456", "mpan")
    with pytest.raises(MpxnError, match="kind must be"):
        parse_mpxn("123456", "gas")  # type: ignore[arg-type]


def test_mpxn_error_is_a_gbcs_error() -> None:
    assert issubclass(MpxnError, GbcsError)
    assert issubclass(ExcludedServiceRequest, GbcsError)


# --------------------------------------------------------------------------- dummies


def test_default_dummy_mpan_uses_an_unallocated_distributor() -> None:
    mpan = dummy_mpan(0)
    assert mpan.distributor_id == "99"
    assert mpan.distributor_id not in ALLOCATED_DISTRIBUTOR_IDS
    with pytest.raises(MpxnError, match="unknown distributor ID 99"):
        Mpan.parse(str(mpan))  # plain parsing does not know the bench's dummy range


@given(st.integers(0, 10**10 - 1))
def test_generated_dummy_mpans_validate_and_are_dummies(n: int) -> None:
    mpan = dummy_mpan(n)
    assert Mpan(mpan.core) == mpan
    assert mpan.core[:12] == f"99{n:010d}"
    policy = ProductionProvingPolicy()
    policy.check(mpan)
    assert policy.parse(str(mpan)) == mpan


@given(st.integers(0, 9999))
def test_generated_dummy_mprns_validate_and_are_dummies(n: int) -> None:
    mprn = dummy_mprn(n)
    assert mprn.value == f"999999{n:04d}"
    ProductionProvingPolicy().check(mprn)
    assert ProductionProvingPolicy().parse(mprn.value) == mprn


def test_dummy_generator_bounds() -> None:
    with pytest.raises(MpxnError, match="outside"):
        dummy_mpan(10**10)
    with pytest.raises(MpxnError, match="outside"):
        dummy_mpan(-1)
    with pytest.raises(MpxnError, match="outside"):
        dummy_mprn(10**4)
    with pytest.raises(MpxnError, match="non-digit"):
        dummy_mpan(0, "9x")
    with pytest.raises(MpxnError, match="length"):
        dummy_mprn(0, "999999", length=5)
    assert dummy_mprn(7, "12", length=6).value == "120007"
    assert dummy_mpan(0, "123456789012").core == "1234567890120"[:12] + str(
        mpan_check_digit("123456789012")
    )


def test_dummy_range_prefix_and_bounds() -> None:
    prefix = DummyRange("mprn", "999999")
    assert prefix.contains(Mprn("9999990001"))
    assert prefix.contains(Mprn("999999"))
    assert not prefix.contains(Mprn("9999980001"))
    assert not prefix.contains(dummy_mpan(1))
    bounded = DummyRange("mprn", first="7000000000", last="7000000099")
    assert bounded.contains(Mprn("7000000050"))
    assert not bounded.contains(Mprn("7000000100"))
    assert not bounded.contains(Mprn("70000000"))  # bounds fix the length
    # Between the bounds as text, but a digit short: still outside (not compared as text).
    assert not bounded.contains(Mprn("700000005"))
    # A prefix range holds only values that start with it, not ones that merely contain it.
    assert not prefix.contains(Mprn("1999999"))
    assert str(bounded) == "MPRNs 7000000000..7000000099"
    assert bounded.example(99) == Mprn("7000000099")
    with pytest.raises(MpxnError, match="past the end"):
        bounded.example(100)


@given(st.integers(0, 200))
def test_bounded_mpan_range_examples_are_valid_and_inside(n: int) -> None:
    rng = DummyRange("mpan", first="9900000000005", last="9900000002000")
    try:
        mpan = rng.example(n)
    except MpxnError:
        assert n > 190
        return
    assert rng.contains(mpan)
    assert rng.distributor_ids == {"99"}
    if n:
        assert rng.example(n - 1).core < mpan.core


def test_a_bounded_mpan_range_starting_past_a_bodys_core_begins_at_the_next_body() -> None:
    # 990000000000's core is 9900000000006, below the first bound: the range's first
    # example is the next body's core, never one outside the range.
    rng = DummyRange("mpan", first="9900000000009", last="9900000000100")
    assert rng.example(0) == Mpan("9900000000015")
    assert rng.contains(rng.example(0))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "water", "prefix": "1"}, "kind must be"),
        ({"kind": "mpan"}, "either a prefix or first and last"),
        ({"kind": "mpan", "prefix": "99", "first": "9900000000000"}, "either a prefix"),
        ({"kind": "mpan", "first": "9900000000000"}, "both first and last"),
        ({"kind": "mpan", "prefix": ""}, "non-empty"),
        ({"kind": "mprn", "prefix": "12345678901"}, "longer than 10"),
        ({"kind": "mpan", "first": "99", "last": "99"}, "13-13 digits"),
        ({"kind": "mprn", "first": "12345", "last": "123456"}, "differ in length"),
        ({"kind": "mprn", "first": "200000", "last": "100000"}, "is empty"),
    ],
)
def test_dummy_range_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(MpxnError, match=match):
        DummyRange(**kwargs)


def test_one_digit_mpan_prefix_covers_ten_distributors() -> None:
    assert DummyRange("mpan", "0").distributor_ids == {f"0{d}" for d in range(10)}
    assert DummyRange("mprn", "0").distributor_ids == frozenset()


# --------------------------------------------------------------------------- policy


def test_default_policy_refuses_real_mpxns() -> None:
    policy = ProductionProvingPolicy()
    assert policy.dummy_ranges == DEFAULT_DUMMY_RANGES
    for core, _ in KNOWN_VALID:
        with pytest.raises(
            MpxnError,
            match=rf"MPAN {core} is not in the reserved dummy range \(MPAN cores starting 99\); "
            "the bench refuses real MPxNs unless switched to lab-only mode",
        ):
            policy.check(core)
    with pytest.raises(MpxnError, match="MPRN 1234567890 is not in the reserved dummy range"):
        policy.check(Mprn("1234567890"))
    # A real MPAN with the dummy prefix inside it (distributor 13) is still real.
    with pytest.raises(MpxnError, match="MPAN 1399123456785 is not in the reserved dummy range"):
        policy.check("1399123456785")


def test_policy_still_rejects_malformed_input_before_range() -> None:
    for policy in (ProductionProvingPolicy(), ProductionProvingPolicy(lab_only=True)):
        with pytest.raises(MpxnError, match="bad check digit"):
            policy.check("9900000000010")
        with pytest.raises(MpxnError, match="unknown distributor ID 98"):
            policy.check(with_check("980000000001"))


def test_lab_only_accepts_real_mpxns() -> None:
    policy = ProductionProvingPolicy(lab_only=True)
    policy.check("1312345678907")
    policy.check(Mpan("1800021679848"))
    policy.check("1234567890")
    assert policy.parse(FULL_EXAMPLE) == Mpan("1312345678907")


def test_policy_with_no_range_for_a_kind() -> None:
    policy = ProductionProvingPolicy((DummyRange("mpan", "99"),))
    with pytest.raises(MpxnError, match=r"\(none configured\)"):
        policy.check("9999990001")
    with pytest.raises(MpxnError, match="no dummy MPRN range"):
        policy.dummy_mprn(0)


def test_custom_policy_ranges_and_examples() -> None:
    policy = ProductionProvingPolicy(
        [DummyRange("mpan", "1099"), DummyRange("mprn", first="7000000000", last="7000000999")]
    )
    assert isinstance(policy.dummy_ranges, tuple)
    mpan = policy.dummy_mpan(3)
    assert mpan.core.startswith("1099")
    policy.check(mpan)
    policy.check(policy.dummy_mprn(5))
    with pytest.raises(MpxnError, match="not in the reserved dummy range"):
        policy.check(dummy_mpan(3))  # the kit's default range is no longer a dummy here


def test_policy_rejects_bad_construction_and_input() -> None:
    with pytest.raises(MpxnError, match="not a DummyRange"):
        ProductionProvingPolicy(("99",))  # type: ignore[arg-type]
    with pytest.raises(MpxnError, match="lab_only must be a bool"):
        ProductionProvingPolicy(lab_only="yes")  # type: ignore[arg-type]
    with pytest.raises(MpxnError, match="expected an Mpan"):
        ProductionProvingPolicy().check(1312345678907)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- environment


def test_from_env_defaults() -> None:
    policy = ProductionProvingPolicy.from_env({})
    assert policy == ProductionProvingPolicy()


def test_from_env_reads_the_real_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GBCS_HIL_LAB_ONLY", "1")
    monkeypatch.delenv("GBCS_HIL_DUMMY_MPAN_PREFIXES", raising=False)
    monkeypatch.delenv("GBCS_HIL_DUMMY_MPRN_PREFIXES", raising=False)
    assert ProductionProvingPolicy.from_env().lab_only is True


def test_from_env_prefixes_and_lab_only() -> None:
    policy = ProductionProvingPolicy.from_env(
        {
            "GBCS_HIL_DUMMY_MPAN_PREFIXES": " 97 , 9812 ",
            "GBCS_HIL_DUMMY_MPRN_PREFIXES": "888888",
            "GBCS_HIL_LAB_ONLY": "0",
        }
    )
    assert policy.dummy_ranges == (
        DummyRange("mpan", "97"),
        DummyRange("mpan", "9812"),
        DummyRange("mprn", "888888"),
    )
    assert policy.lab_only is False
    assert policy.dummy_distributor_ids == {"97", "98"}
    policy.check(with_check("981200000001"))
    policy.check("8888880001")
    with pytest.raises(MpxnError, match="unknown distributor ID 99"):
        policy.check(str(dummy_mpan(1)))  # text: "99" is no longer an accepted distributor
    with pytest.raises(MpxnError, match="not in the reserved dummy range"):
        policy.check(dummy_mpan(1))  # object: well formed, but not a dummy here
    only_mprn = ProductionProvingPolicy.from_env({"GBCS_HIL_DUMMY_MPRN_PREFIXES": "7"})
    assert only_mprn.ranges_for("mpan") == (DummyRange("mpan", "99"),)


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_from_env_lab_only_true(value: str) -> None:
    assert ProductionProvingPolicy.from_env({"GBCS_HIL_LAB_ONLY": value}).lab_only


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"GBCS_HIL_LAB_ONLY": "2"}, "GBCS_HIL_LAB_ONLY='2': expected 1 or 0"),
        ({"GBCS_HIL_DUMMY_MPAN_PREFIXES": ""}, "GBCS_HIL_DUMMY_MPAN_PREFIXES is set but empty"),
        ({"GBCS_HIL_DUMMY_MPRN_PREFIXES": " , "}, "GBCS_HIL_DUMMY_MPRN_PREFIXES is set but"),
        ({"GBCS_HIL_DUMMY_MPAN_PREFIXES": "99,,98"}, "entry 2 is empty"),
        ({"GBCS_HIL_DUMMY_MPAN_PREFIXES": "9A"}, "GBCS_HIL_DUMMY_MPAN_PREFIXES=.*non-digit"),
        ({"GBCS_HIL_DUMMY_MPRN_PREFIXES": "12345678901"}, "MPRN_PREFIXES=.*longer than 10"),
    ],
)
def test_from_env_errors_name_the_variable(env: dict[str, str], match: str) -> None:
    with pytest.raises(MpxnError, match=match):
        ProductionProvingPolicy.from_env(env)


# --------------------------------------------------------------------------- SRV guard


def test_excluded_set() -> None:
    assert frozenset({"6.15", "6.21", "6.23"}) == EXCLUDED_PRODUCTION_PROVING_SRVS


@pytest.mark.parametrize("srv", ["6.15", "6.21", "6.23", " 6.15 ", "SRV 6.21", "srv6.23", "6.15.1"])
def test_refuse_excluded(srv: str) -> None:
    assert is_excluded(srv)
    with pytest.raises(ExcludedServiceRequest, match=r"Service Request 6\.\d\d(\.1)? is excl") as e:
        refuse_excluded(srv)
    assert e.value.srv in {"6.15", "6.21", "6.23", "6.15.1"}


@pytest.mark.parametrize("srv", ["6.2", "6.24", "6.150", "1.1.1", "8.14.1", "16.1"])
def test_allowed_srvs_pass(srv: str) -> None:
    assert not is_excluded(srv)
    refuse_excluded(srv)


@pytest.mark.parametrize("srv", ["", "six", "6.", ".15", "6..15", "6.15x"])
def test_malformed_srv_is_not_silently_allowed(srv: str) -> None:
    with pytest.raises(GbcsError, match="not a Service Request number"):
        refuse_excluded(srv)


def test_a_prefix_mprn_range_gives_examples_of_full_length() -> None:
    # With the default 6-digit prefix there used to be room for one MPRN only (n = 0).
    policy = ProductionProvingPolicy()
    assert policy.dummy_mprn(1) == Mprn("9999990001") == dummy_mprn(1)
    assert policy.dummy_mprn(9999) == Mprn("9999999999")
    for n in (0, 1, 42):
        policy.check(policy.dummy_mprn(n))
    with pytest.raises(MpxnError, match="outside"):
        policy.dummy_mprn(10_000)
