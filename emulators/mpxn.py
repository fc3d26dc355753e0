"""GB meter point identifiers (MPAN, MPRN) and the Production Proving guard of a bench.

A warehouse bench is modelled on SEC Section P (Production Proving): it may only
ever address *dummy* meter points from a reserved range, never a real one, and it
refuses the Service Requests that Production Proving excludes (6.15, 6.21, 6.23).
This module validates the identifiers and applies that policy; see DESIGN.md §3.

MPAN (electricity)
    The 13-digit *MPAN core* is the unique identifier: digits 1-2 are the
    distributor ID, digits 3-12 the unique reference number within that
    distributor's area, digit 13 a check digit.  The *full* MPAN ("S-number",
    21 characters as printed on bills) puts an 8-character top line in front of
    the core: profile class (2 digits), meter timeswitch code (3 digits) and line
    loss factor class (3 characters, which may be letters).  :meth:`Mpan.parse`
    accepts either form and keeps only the core.

    Check digit (public algorithm, e.g. the Wikipedia MPAN article and its copies;
    https://www.amcrou.ch/validating-mpan-numbers; https://bitbucket.org/tlocke/mpan):
    multiply the first 12 digits by 3, 5, 7, 13, 17, 19, 23, 29, 31, 37, 41, 43
    (the primes from 3, skipping 11), add the products, and take the sum modulo
    11, then modulo 10.  Because residues 0 and 10 both give check digit 0, a
    single mistyped digit in a core whose check digit is 0 can go unnoticed; for
    check digits 1-9 every single-digit substitution is caught.

    Distributor IDs: 10-23 are the 14 DNO licence areas, 24-38 the IDNOs
    allocated so far (Independent Power Networks, ESP, Last Mile, GTC, UK Power
    Networks IDNO, Harlaxton, Leep, UK Power Distribution, Energy Assets, Eclipse,
    Murphy, Fulcrum, Vattenfall, Optimal Power, Indigo; as listed from Wikipedia
    and Ofgem in the public limejump/mpan project).  New IDNOs get the next
    number, so the list is extended through ``extra_distributor_ids``.

MPRN (gas)
    6 to 10 digits (public descriptions vary: some say 6-11, one 3-11; this kit
    follows the 6-10 of its brief).  **Only length and digits are checked.**  No
    authoritative public description of an MPRN check-digit rule was found: one
    unsourced wiki page (en.everybodywiki.com "Meter Point Reference Number")
    describes a two-digit weighted modulo-11 check, but nothing corroborates it,
    so it is deliberately not implemented and a mistyped MPRN is not detected.

Dummy range
    The range the DCC publishes for Production Proving is not available to this
    kit.  The default here is **the kit's own**: MPAN cores whose distributor ID
    is 99 (no distributor holds 99; allocation runs upwards from 10 and has reached
    38) and MPRNs starting 999999 (there is no public MPRN allocation scheme to
    prove that prefix unused, so collision with a real MPRN cannot be ruled out).
    A bench must be configured to the range the DCC publishes, through
    :class:`ProductionProvingPolicy` or the environment (see
    :meth:`ProductionProvingPolicy.from_env`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from gbcs.errors import GbcsError

__all__ = [
    "ALLOCATED_DISTRIBUTOR_IDS",
    "DEFAULT_DUMMY_MPAN_PREFIX",
    "DEFAULT_DUMMY_MPRN_PREFIX",
    "DEFAULT_DUMMY_RANGES",
    "ENV_DUMMY_MPAN_PREFIXES",
    "ENV_DUMMY_MPRN_PREFIXES",
    "ENV_LAB_ONLY",
    "EXCLUDED_PRODUCTION_PROVING_SRVS",
    "MPAN_WEIGHTS",
    "DummyRange",
    "ExcludedServiceRequest",
    "Mpan",
    "MpanTopLine",
    "Mprn",
    "Mpxn",
    "MpxnError",
    "ProductionProvingPolicy",
    "dummy_mpan",
    "dummy_mprn",
    "is_excluded",
    "mpan_check_digit",
    "parse_full_mpan",
    "parse_mpxn",
    "refuse_excluded",
]

Kind = Literal["mpan", "mprn"]

MPAN_CORE_LENGTH = 13
MPAN_FULL_LENGTH = 21
MPRN_MIN_LENGTH = 6
MPRN_MAX_LENGTH = 10

#: Weights of MPAN core digits 1-12: the primes from 3 upwards, 11 left out.
MPAN_WEIGHTS: tuple[int, ...] = (3, 5, 7, 13, 17, 19, 23, 29, 31, 37, 41, 43)

#: Distributor IDs in use: 10-23 DNO licence areas, 24-38 IDNOs.
ALLOCATED_DISTRIBUTOR_IDS: frozenset[str] = frozenset(str(i) for i in range(10, 39))

#: The kit's own dummy ranges (not the DCC's published range; configure that one).
DEFAULT_DUMMY_MPAN_PREFIX = "99"
DEFAULT_DUMMY_MPRN_PREFIX = "999999"

ENV_DUMMY_MPAN_PREFIXES = "GBCS_HIL_DUMMY_MPAN_PREFIXES"
ENV_DUMMY_MPRN_PREFIXES = "GBCS_HIL_DUMMY_MPRN_PREFIXES"
ENV_LAB_ONLY = "GBCS_HIL_LAB_ONLY"

_SEPARATORS = re.compile(r"[\s\-]+")
_NAMES = {"mpan": "MPAN", "mprn": "MPRN"}


class MpxnError(GbcsError, ValueError):
    """An MPAN or MPRN that is malformed, or that the Production Proving policy refuses."""


class ExcludedServiceRequest(GbcsError):
    """A Service Request that Production Proving excludes (SEC Section P)."""

    def __init__(self, srv: str) -> None:
        self.srv = srv
        super().__init__(
            f"Service Request {srv} is excluded from Production Proving; "
            "the bench refuses to send it"
        )


# --------------------------------------------------------------------------- helpers


def _compact(text: object, what: str) -> str:
    """``text`` with spaces and dashes removed; MpxnError when not a non-empty string."""
    if not isinstance(text, str):
        raise MpxnError(f"{what} must be a string, got {type(text).__name__}")
    compact = _SEPARATORS.sub("", text)
    if not compact:
        raise MpxnError(f"{what} is empty")
    return compact


def _require_digits(value: str, what: str) -> None:
    for position, char in enumerate(value, start=1):
        if not ("0" <= char <= "9"):
            raise MpxnError(f"{what} has a non-digit {char!r} at position {position}")


def mpan_check_digit(body: str) -> int:
    """Check digit of an MPAN core from its first 12 digits."""
    if len(body) != MPAN_CORE_LENGTH - 1:
        raise MpxnError(f"MPAN check digit needs 12 digits, got {len(body)}")
    _require_digits(body, "MPAN core")
    total = sum(int(d) * w for d, w in zip(body, MPAN_WEIGHTS, strict=True))
    return total % 11 % 10


def _check_core(core: object) -> None:
    if not isinstance(core, str):
        raise MpxnError(f"MPAN core must be a string, got {type(core).__name__}")
    if len(core) != MPAN_CORE_LENGTH:
        raise MpxnError(f"MPAN core must be 13 digits, got {len(core)}: {core!r}")
    _require_digits(core, "MPAN core")
    expected = mpan_check_digit(core[:12])
    if int(core[12]) != expected:
        raise MpxnError(
            f"MPAN {core} has a bad check digit {core[12]}: expected {expected} "
            "(the last digit of the 13-digit core)"
        )


# --------------------------------------------------------------------------- MPAN


@dataclass(frozen=True, slots=True)
class MpanTopLine:
    """The supplementary top line of a full MPAN: profile class, MTC, LLFC."""

    profile_class: str
    meter_timeswitch_code: str
    line_loss_factor_class: str

    def __str__(self) -> str:
        return f"{self.profile_class}{self.meter_timeswitch_code}{self.line_loss_factor_class}"


@dataclass(frozen=True, slots=True)
class Mpan:
    """A 13-digit MPAN core.

    The constructor checks length, digits and the check digit.  :meth:`parse`
    also checks that the distributor ID is allocated (or explicitly allowed),
    since a dummy range may use an unallocated one.
    """

    core: str

    def __post_init__(self) -> None:
        _check_core(self.core)

    @property
    def distributor_id(self) -> str:
        return self.core[:2]

    @property
    def unique_reference(self) -> str:
        """Digits 3-12: the meter point's number within the distributor's area."""
        return self.core[2:12]

    @property
    def check_digit(self) -> int:
        return int(self.core[12])

    @classmethod
    def parse(cls, text: str, *, extra_distributor_ids: Iterable[str] = ()) -> Mpan:
        """An MPAN from a 13-digit core or a 21-character full MPAN (spaces/dashes allowed).

        ``extra_distributor_ids`` lists distributor IDs to accept besides
        :data:`ALLOCATED_DISTRIBUTOR_IDS` (a newly allocated IDNO, a dummy range).
        """
        return parse_full_mpan(text, extra_distributor_ids=extra_distributor_ids)[1]

    def __str__(self) -> str:
        return self.core


def parse_full_mpan(
    text: str, *, extra_distributor_ids: Iterable[str] = ()
) -> tuple[MpanTopLine | None, Mpan]:
    """The top line (None for a bare core) and the core of an MPAN.

    The full form is 21 characters, optionally after a leading ``S``: profile
    class (2 digits), meter timeswitch code (3 digits), line loss factor class
    (3 digits or capital letters), then the 13-digit core.
    """
    compact = _compact(text, "MPAN")
    if len(compact) == MPAN_FULL_LENGTH + 1 and compact[0] in "Ss":
        compact = compact[1:]
    top: MpanTopLine | None = None
    if len(compact) == MPAN_FULL_LENGTH:
        _require_digits(compact[:5], "MPAN top line (profile class and MTC)")
        llfc = compact[5:8]
        for offset, char in enumerate(llfc, start=6):
            if not (char.isascii() and (char.isdigit() or char.isupper())):
                raise MpxnError(
                    f"MPAN top line has {char!r} at position {offset}; "
                    "the line loss factor class is digits or capital letters"
                )
        top = MpanTopLine(compact[:2], compact[2:5], llfc)
        compact = compact[8:]
    elif len(compact) != MPAN_CORE_LENGTH:
        raise MpxnError(
            f"MPAN must be 13 digits (the core) or 21 characters (the full S-number), "
            f"got {len(compact)}: {text!r}"
        )
    mpan = Mpan(compact)
    allowed = ALLOCATED_DISTRIBUTOR_IDS | frozenset(extra_distributor_ids)
    if mpan.distributor_id not in allowed:
        raise MpxnError(
            f"MPAN {mpan.core} has unknown distributor ID {mpan.distributor_id} "
            "(allocated: 10-23 DNOs, 24-38 IDNOs)"
        )
    return top, mpan


# --------------------------------------------------------------------------- MPRN


@dataclass(frozen=True, slots=True)
class Mprn:
    """A gas Meter Point Reference Number: 6 to 10 digits.

    Only length and digits are checked; no check-digit rule is applied (no
    reliable public description of one was found; see the module docstring).
    """

    value: str

    def __post_init__(self) -> None:
        if not isinstance(self.value, str):
            raise MpxnError(f"MPRN must be a string, got {type(self.value).__name__}")
        if not MPRN_MIN_LENGTH <= len(self.value) <= MPRN_MAX_LENGTH:
            raise MpxnError(f"MPRN must be 6 to 10 digits, got {len(self.value)}: {self.value!r}")
        _require_digits(self.value, "MPRN")

    @classmethod
    def parse(cls, text: str) -> Mprn:
        """An MPRN from text; spaces and dashes are ignored."""
        return cls(_compact(text, "MPRN"))

    def __str__(self) -> str:
        return self.value


Mpxn = Mpan | Mprn


def parse_mpxn(
    text: str, kind: Kind | None = None, *, extra_distributor_ids: Iterable[str] = ()
) -> Mpxn:
    """An MPAN or MPRN.  With ``kind`` None the length decides: 13 or 21 -> MPAN, 6-10 -> MPRN."""
    if kind == "mpan":
        return Mpan.parse(text, extra_distributor_ids=extra_distributor_ids)
    if kind == "mprn":
        return Mprn.parse(text)
    if kind is not None:
        raise MpxnError(f"kind must be 'mpan', 'mprn' or None, got {kind!r}")
    compact = _compact(text, "MPxN")
    length = len(compact)
    if length == MPAN_FULL_LENGTH + 1 and compact[0] in "Ss":
        length -= 1
    if length in (MPAN_CORE_LENGTH, MPAN_FULL_LENGTH):
        return Mpan.parse(compact, extra_distributor_ids=extra_distributor_ids)
    if MPRN_MIN_LENGTH <= length <= MPRN_MAX_LENGTH:
        return Mprn.parse(compact)
    raise MpxnError(
        f"cannot tell an MPAN from an MPRN with {length} characters: {text!r}; "
        "an MPAN core has 13 digits (21 for the full S-number), an MPRN 6 to 10"
    )


# --------------------------------------------------------------------------- dummies


def _digits_arg(value: str, what: str, max_length: int) -> None:
    if not isinstance(value, str) or not value:
        raise MpxnError(f"{what} must be a non-empty string of digits, got {value!r}")
    if len(value) > max_length:
        raise MpxnError(f"{what} {value!r} is longer than {max_length} digits")
    _require_digits(value, f"{what} {value!r}")


def dummy_mpan(n: int, prefix: str = DEFAULT_DUMMY_MPAN_PREFIX) -> Mpan:
    """The ``n``-th dummy MPAN core under ``prefix``, with its correct check digit."""
    _digits_arg(prefix, "dummy MPAN prefix", MPAN_CORE_LENGTH - 1)
    width = MPAN_CORE_LENGTH - 1 - len(prefix)
    if not 0 <= n < 10**width:
        raise MpxnError(f"dummy MPAN number {n} is outside 0..{10**width - 1} for prefix {prefix}")
    body = prefix + (f"{n:0{width}d}" if width else "")
    return Mpan(body + str(mpan_check_digit(body)))


def dummy_mprn(
    n: int, prefix: str = DEFAULT_DUMMY_MPRN_PREFIX, length: int = MPRN_MAX_LENGTH
) -> Mprn:
    """The ``n``-th dummy MPRN of ``length`` digits under ``prefix``."""
    _digits_arg(prefix, "dummy MPRN prefix", MPRN_MAX_LENGTH)
    if not MPRN_MIN_LENGTH <= length <= MPRN_MAX_LENGTH or length < len(prefix):
        raise MpxnError(f"dummy MPRN length {length} must be 6-10 and at least the prefix's")
    width = length - len(prefix)
    if not 0 <= n < 10**width:
        raise MpxnError(f"dummy MPRN number {n} is outside 0..{10**width - 1} for prefix {prefix}")
    return Mprn(prefix + (f"{n:0{width}d}" if width else ""))


@dataclass(frozen=True, slots=True)
class DummyRange:
    """Reserved dummy identifiers of one kind: every value under ``prefix``, or ``first..last``.

    For an MPAN the range applies to the 13-digit core.  Bounds are compared as
    digit strings of the same length (``first`` and ``last`` must have equal
    length: 13 for MPAN, 6-10 for MPRN), so a bounded MPRN range also fixes the
    length.
    """

    kind: Kind
    prefix: str | None = None
    first: str | None = field(default=None, kw_only=True)
    last: str | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        if self.kind not in _NAMES:
            raise MpxnError(f"dummy range kind must be 'mpan' or 'mprn', got {self.kind!r}")
        name = _NAMES[self.kind]
        longest = MPAN_CORE_LENGTH if self.kind == "mpan" else MPRN_MAX_LENGTH
        bounded = self.first is not None or self.last is not None
        if (self.prefix is None) == (not bounded):
            raise MpxnError(f"dummy {name} range needs either a prefix or first and last")
        if self.prefix is not None:
            _digits_arg(self.prefix, f"dummy {name} prefix", longest)
            return
        if self.first is None or self.last is None:
            raise MpxnError(f"dummy {name} range needs both first and last")
        _digits_arg(self.first, f"dummy {name} range start", longest)
        _digits_arg(self.last, f"dummy {name} range end", longest)
        if len(self.first) != len(self.last):
            raise MpxnError(
                f"dummy {name} range {self.first}..{self.last}: bounds differ in length"
            )
        shortest = MPAN_CORE_LENGTH if self.kind == "mpan" else MPRN_MIN_LENGTH
        if len(self.first) < shortest:
            raise MpxnError(
                f"dummy {name} range {self.first}..{self.last}: bounds must be "
                f"{shortest}-{longest} digits"
            )
        if self.first > self.last:
            raise MpxnError(f"dummy {name} range {self.first}..{self.last} is empty")

    def __str__(self) -> str:
        noun = "MPAN cores" if self.kind == "mpan" else "MPRNs"
        if self.prefix is not None:
            return f"{noun} starting {self.prefix}"
        return f"{noun} {self.first}..{self.last}"

    def contains(self, mpxn: Mpxn) -> bool:
        """True when ``mpxn`` is of this range's kind and inside it."""
        if self.kind == "mpan":
            if not isinstance(mpxn, Mpan):
                return False
            value = mpxn.core
        else:
            if not isinstance(mpxn, Mprn):
                return False
            value = mpxn.value
        if self.prefix is not None:
            return value.startswith(self.prefix)
        assert self.first is not None and self.last is not None
        return len(value) == len(self.first) and self.first <= value <= self.last

    @property
    def distributor_ids(self) -> frozenset[str]:
        """The MPAN distributor IDs this range covers (empty for an MPRN range)."""
        if self.kind != "mpan":
            return frozenset()
        if self.prefix is not None:
            if len(self.prefix) >= 2:
                return frozenset({self.prefix[:2]})
            return frozenset(self.prefix + d for d in "0123456789")
        assert self.first is not None and self.last is not None
        low, high = int(self.first[:2]), int(self.last[:2])
        return frozenset(f"{i:02d}" for i in range(low, high + 1))

    def example(self, n: int) -> Mpxn:
        """The ``n``-th valid identifier in this range (check digit correct for an MPAN)."""
        if n < 0:
            raise MpxnError(f"dummy number must be >= 0, got {n}")
        if self.prefix is not None:
            if self.kind == "mpan":
                return dummy_mpan(n, self.prefix)
            # As long as an MPRN can be: a 6-digit prefix leaves room for 10**4 of them.
            return dummy_mprn(n, self.prefix, MPRN_MAX_LENGTH)
        assert self.first is not None and self.last is not None
        if self.kind == "mprn":
            value = f"{int(self.first) + n:0{len(self.first)}d}"
            if value > self.last:
                raise MpxnError(f"dummy number {n} is past the end of {self}")
            return Mprn(value)
        # One valid core per 12-digit body, in order: start at the first body whose
        # core is not below ``first``.
        start = int(self.first[:12])
        first_body = self.first[:12]
        if first_body + str(mpan_check_digit(first_body)) < self.first:
            start += 1
        body = f"{start + n:012d}"
        if len(body) > 12:
            raise MpxnError(f"dummy number {n} is past the end of {self}")
        core = body + str(mpan_check_digit(body))
        if core > self.last:
            raise MpxnError(f"dummy number {n} is past the end of {self}")
        return Mpan(core)


DEFAULT_DUMMY_RANGES: tuple[DummyRange, ...] = (
    DummyRange("mpan", DEFAULT_DUMMY_MPAN_PREFIX),
    DummyRange("mprn", DEFAULT_DUMMY_MPRN_PREFIX),
)


# --------------------------------------------------------------------------- policy

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def _env_prefixes(environ: Mapping[str, str], name: str, kind: Kind) -> tuple[DummyRange, ...]:
    raw = environ[name]
    entries = [entry.strip() for entry in raw.split(",")]
    if not any(entries):
        raise MpxnError(f"{name} is set but empty; unset it to use the kit's default range")
    ranges = []
    for position, entry in enumerate(entries, start=1):
        if not entry:
            raise MpxnError(f"{name}={raw!r}: entry {position} is empty")
        try:
            ranges.append(DummyRange(kind, entry))
        except MpxnError as exc:
            raise MpxnError(f"{name}={raw!r}: {exc}") from None
    return tuple(ranges)


@dataclass(frozen=True, slots=True)
class ProductionProvingPolicy:
    """Lets through only dummy MPxNs, unless the bench is in lab-only mode.

    ``lab_only`` is for a bench that is not connected to anything live (a
    shielded lab with emulated devices only): it then accepts real identifiers,
    still checking that they are well formed.
    """

    dummy_ranges: tuple[DummyRange, ...] = DEFAULT_DUMMY_RANGES
    lab_only: bool = False

    def __post_init__(self) -> None:
        ranges = tuple(self.dummy_ranges)
        for item in ranges:
            if not isinstance(item, DummyRange):
                raise MpxnError(f"dummy_ranges holds {item!r}, not a DummyRange")
        object.__setattr__(self, "dummy_ranges", ranges)
        if not isinstance(self.lab_only, bool):
            raise MpxnError(f"lab_only must be a bool, got {self.lab_only!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ProductionProvingPolicy:
        """The policy configured by the environment.

        ``GBCS_HIL_DUMMY_MPAN_PREFIXES`` and ``GBCS_HIL_DUMMY_MPRN_PREFIXES``
        (comma-separated digit prefixes) replace the kit's default range of
        their kind; ``GBCS_HIL_LAB_ONLY=1`` switches to lab-only mode (``0`` or
        unset: off).  Anything malformed raises MpxnError naming the variable.
        """
        env = os.environ if environ is None else environ
        mpan = [r for r in DEFAULT_DUMMY_RANGES if r.kind == "mpan"]
        mprn = [r for r in DEFAULT_DUMMY_RANGES if r.kind == "mprn"]
        if ENV_DUMMY_MPAN_PREFIXES in env:
            mpan = list(_env_prefixes(env, ENV_DUMMY_MPAN_PREFIXES, "mpan"))
        if ENV_DUMMY_MPRN_PREFIXES in env:
            mprn = list(_env_prefixes(env, ENV_DUMMY_MPRN_PREFIXES, "mprn"))
        flag = env.get(ENV_LAB_ONLY, "").strip().lower()
        if flag not in _TRUE | _FALSE:
            raise MpxnError(f"{ENV_LAB_ONLY}={env[ENV_LAB_ONLY]!r}: expected 1 or 0")
        return cls(tuple(mpan + mprn), lab_only=flag in _TRUE)

    @property
    def dummy_distributor_ids(self) -> frozenset[str]:
        """Distributor IDs the MPAN dummy ranges use (accepted when parsing)."""
        ids: frozenset[str] = frozenset()
        for item in self.dummy_ranges:
            ids |= item.distributor_ids
        return ids

    def ranges_for(self, kind: Kind) -> tuple[DummyRange, ...]:
        return tuple(r for r in self.dummy_ranges if r.kind == kind)

    def is_dummy(self, mpxn: Mpxn) -> bool:
        return any(r.contains(mpxn) for r in self.dummy_ranges)

    def check(self, mpxn: Mpxn | str) -> None:
        """Raise MpxnError unless ``mpxn`` is well formed and a dummy (or lab-only is on)."""
        if isinstance(mpxn, str):
            mpxn = parse_mpxn(mpxn, extra_distributor_ids=self.dummy_distributor_ids)
        elif not isinstance(mpxn, Mpan | Mprn):
            raise MpxnError(f"expected an Mpan, Mprn or string, got {type(mpxn).__name__}")
        if self.lab_only or self.is_dummy(mpxn):
            return
        kind: Kind = "mpan" if isinstance(mpxn, Mpan) else "mprn"
        ranges = self.ranges_for(kind)
        where = "; ".join(str(r) for r in ranges) if ranges else "none configured"
        raise MpxnError(
            f"{_NAMES[kind]} {mpxn} is not in the reserved dummy range ({where}); "
            "the bench refuses real MPxNs unless switched to lab-only mode "
            f"({ENV_LAB_ONLY}=1)"
        )

    def parse(self, text: str, kind: Kind | None = None) -> Mpxn:
        """Parse ``text`` (accepting the dummy distributor IDs) and :meth:`check` it."""
        mpxn = parse_mpxn(text, kind, extra_distributor_ids=self.dummy_distributor_ids)
        self.check(mpxn)
        return mpxn

    def dummy_mpan(self, n: int) -> Mpan:
        """The ``n``-th dummy MPAN of the first MPAN range."""
        example = self._example("mpan", n)
        assert isinstance(example, Mpan)
        return example

    def dummy_mprn(self, n: int) -> Mprn:
        """The ``n``-th dummy MPRN of the first MPRN range."""
        example = self._example("mprn", n)
        assert isinstance(example, Mprn)
        return example

    def _example(self, kind: Kind, n: int) -> Mpxn:
        ranges = self.ranges_for(kind)
        if not ranges:
            raise MpxnError(f"no dummy {_NAMES[kind]} range is configured")
        return ranges[0].example(n)


# --------------------------------------------------------------------------- SRV guard

#: Service Requests that Production Proving excludes (SEC Section P; DESIGN.md §3).
EXCLUDED_PRODUCTION_PROVING_SRVS: frozenset[str] = frozenset({"6.15", "6.21", "6.23"})

_SRV = re.compile(r"(?i:srv)?\s*(\d+(?:\.\d+)*)")


def _normalise_srv(srv: object) -> str:
    if not isinstance(srv, str):
        raise GbcsError(f"a Service Request number must be a string, got {type(srv).__name__}")
    match = _SRV.fullmatch(srv.strip())
    if match is None:
        raise GbcsError(f"not a Service Request number: {srv!r}")
    return match.group(1)


def is_excluded(srv: str) -> bool:
    """True for an excluded SRV or any variant of one (``6.15.1`` falls under ``6.15``)."""
    number = _normalise_srv(srv)
    return any(
        number == excluded or number.startswith(excluded + ".")
        for excluded in EXCLUDED_PRODUCTION_PROVING_SRVS
    )


def refuse_excluded(srv: str) -> None:
    """Raise :class:`ExcludedServiceRequest` for an SRV Production Proving excludes.

    ``srv`` may carry an ``SRV`` prefix and surrounding spaces; variants of an
    excluded request (``6.15.1``, ``6.15.2``) are refused too.  A string that is
    not an SRV number raises GbcsError rather than passing silently.
    """
    if is_excluded(srv):
        raise ExcludedServiceRequest(_normalise_srv(srv))
