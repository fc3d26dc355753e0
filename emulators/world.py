"""An emulated world: places with their HAN media, hubs, meters and the DCC head end.

It wires the GBCS state machines (:mod:`emulators.chf`, :mod:`emulators.meters`,
:mod:`emulators.gpf`) to their ZigBee nodes (:mod:`emulators.node`) and the
hubs to the head end, on one virtual clock, with one seeded fault injector.
Everything random comes from the seed, so a world replays exactly.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import serialization

from emulators.chf import CommsHub, HubPort
from emulators.clock import VirtualClock
from emulators.credentials import DeviceCredentials, TrustAnchor, TrustAnchors
from emulators.device import saved_credentials
from emulators.faults import NO_FAULTS, FaultInjector, FaultPlan
from emulators.gpf import Gpf
from emulators.headend import HeadEnd
from emulators.medium import Capture, HanMedium, Radio
from emulators.meters import Esme, Gsme, Meter
from emulators.node import (
    ALL_CHANNELS,
    CoordinatorNode,
    MeterNode,
    NetworkSettings,
    NodeState,
    check_network,
    checked_channels,
    saved_channels,
)
from emulators.saved_state import U64, SavedState, saved_int
from gbcs import strict_json
from gbcs.devicelog import DeviceType
from gbcs.errors import GbcsError
from gbcs.files import write_together
from gbcs.keys import KeyUsage
from gbcs.options import SEED_RANGE, check_seed
from gbcs.primitives import RESERVED_EUI64
from gbcs.testpki import RemotePartyRole, TestPki, role_label

__all__ = ["SEED_RANGE", "Hub", "MeterUnit", "World", "check_seed"]


class HubRadio(HubPort, Protocol):
    """A hub's radio as the world drives it: the emulated coordinator or a zigpy one.

    It is the CHF's :class:`emulators.chf.HubPort` and asks the CHF (its
    ``trust_centre``) whom to admit.
    """

    medium: HanMedium | None
    trust_centre: Any
    trace: Callable[[str], None] | None

    def place(self, medium: HanMedium | None) -> None: ...

    def form(
        self, channel: int, pan_id: int, extended_pan_id: bytes, network_key: bytes
    ) -> Any: ...

    def adopt_extended_pan_id(self, extended_pan_id: bytes) -> None: ...

    def has_child(self, device: bytes) -> bool: ...

    def tunnel_of(self, device: bytes) -> int | None: ...

    def state(self) -> dict[str, Any]: ...

    def load_state(self, obj: dict[str, Any]) -> None: ...

    def handed_out(self) -> dict[bytes, bytes]: ...


def _emulated_hub_radio(clock: VirtualClock, eui: bytes, name: str) -> HubRadio:
    return CoordinatorNode(clock, eui, name=name)


@dataclass(slots=True)
class Hub:
    """A Communications Hub: its CHF, its GPF and the CHF's radio."""

    chf: CommsHub
    gpf: Gpf
    node: HubRadio
    place: str

    @property
    def eui64(self) -> bytes:
        return self.chf.eui64


@dataclass(slots=True)
class MeterUnit:
    """A meter: its GBCS logic and its radio, and where it physically is."""

    device: Meter
    node: MeterNode
    place: str | None
    events: list[str] = field(default_factory=list)

    @property
    def eui64(self) -> bytes:
        return self.device.eui64

    @property
    def kind(self) -> str:
        return self.device.device_type.name


# 2: trust anchors carry their certificates' key identifiers (ka_ski, ds_ski).
# 3: what is under way is saved too (booked alerts, a decided CS02f, a power cycle, open
#    tunnels, the next poll, NWK frame counters), with the epoch, faults and PKI fingerprint.
# 4: a CHF's logged devices carry frames_failed (what CCS05/CCS06 report as failures).
# 5: a meter's next step replaces its keepalive_at: its next keep-alive, scan or rejoin and
#    when (a scan part-way through with its next channel and the beacons heard), so one
#    saved while it looks for a network is not loaded as joined.
STATE_FORMAT = "gbcs-hil world 5"


def _derived_eui(prefix: str, index: int) -> bytes:
    return bytes.fromhex(prefix) + index.to_bytes(2, "big")


def _checked_text(value: Any, what: str) -> str:
    """A place or a name: text, as the saved world stores it (anything else saved would
    not load again)."""
    if not isinstance(value, str):
        raise GbcsError(f"{what} {value!r} is {type(value).__name__}, not text")
    return value


def _checked_certificates(certificates: Any) -> dict[KeyUsage, bytes]:
    """A meter's own certificates by key usage, DER (what CS02e returns and the state saves)."""
    if not isinstance(certificates, Mapping):
        raise GbcsError(f"certificates {certificates!r} is not a mapping of key usage to DER")
    out: dict[KeyUsage, bytes] = {}
    for usage, der in certificates.items():
        if not isinstance(usage, KeyUsage):
            raise GbcsError(f"certificates: {usage!r} is not a KeyUsage")
        if not isinstance(der, bytes):
            raise GbcsError(f"certificates[{usage.name}] is {type(der).__name__}, not DER bytes")
        out[usage] = der
    return out


def _checked_eui(eui: bytes, what: str) -> bytes:
    """An explicit EUI-64: exactly 8 bytes (a hub's GPF is derived from its last byte)."""
    if not isinstance(eui, bytes):
        raise GbcsError(f"{what} EUI-64 {eui!r} is not bytes")
    if len(eui) != 8:
        raise GbcsError(f"{what} EUI-64 {eui.hex().upper()!r} is {len(eui)} bytes, not 8")
    if eui in RESERVED_EUI64:
        raise GbcsError(f"{what} EUI-64 {eui.hex().upper()} is reserved: it names no device")
    return eui


# What a loader can raise on damage it does not check for itself (a zigpy hub radio's
# load_state, say): turned into a GbcsError naming where, never let through.
_LOAD_ERRORS = (LookupError, TypeError, ValueError, AttributeError, ArithmeticError)


@contextmanager
def _reading(where: str) -> Iterator[None]:
    """Any damage found while loading ``where`` is a GbcsError saying so and where."""
    try:
        yield
    except GbcsError as e:
        raise GbcsError(f"world state is damaged: {where}: {e}") from None
    except _LOAD_ERRORS as e:
        raise GbcsError(f"world state is damaged: {where}: {type(e).__name__} {e}") from e


def _label(kind: str, item: object, index: int) -> str:
    """How an error names a saved hub or meter: by its EUI-64 if it has a readable one."""
    eui = item.get("eui64") if isinstance(item, dict) else None
    if isinstance(eui, str) and len(eui) <= 16:
        return f"{kind} {eui.upper()}"
    return f"{kind}s[{index}]"


class World:
    """Everything one emulation run needs, built from one seed."""

    def __init__(
        self,
        seed: int = 0,
        *,
        faults: FaultPlan = NO_FAULTS,
        capture: bool = True,
        pki: TestPki | None = None,
        clock: VirtualClock | None = None,
    ) -> None:
        self.seed = check_seed(seed)
        self.clock = clock if clock is not None else VirtualClock()
        self.pki = pki if pki is not None else TestPki.default_cast(seed)
        self.anchors = TrustAnchors.from_pki(self.pki)
        self.capture = Capture() if capture else None
        self.faults = FaultInjector(faults, seed)
        self.random = random.Random(f"gbcs-hil world {seed}")  # sign kept (see faults)
        self.places: dict[str, HanMedium] = {}
        self.hubs: dict[bytes, Hub] = {}
        self.meters: dict[bytes, MeterUnit] = {}
        self.headend = HeadEnd(self.pki, self.clock)
        # What gives a hub its HAN: the emulated coordinator node, or another backend's
        # radio (zigpy on a real or simulated dongle) offering the same interface.
        self.hub_radio: Callable[[VirtualClock, bytes, str], HubRadio] = _emulated_hub_radio
        self.headend.capture = self.capture
        self.trace: Callable[[str], None] | None = None
        self._pki_fingerprint: tuple[int, str] | None = None

    # Places -----------------------------------------------------------------------
    def place(self, name: str) -> HanMedium:
        medium = self.places.get(name)
        if medium is None:
            medium = HanMedium(
                self.clock,
                name=name,
                faults=self.faults if self.faults.plan.active else None,
                capture=self.capture,
            )
            medium.on_power_cycle = self._power_cycle
            self.places[name] = medium
        return medium

    def _power_cycle(self, radio: Radio) -> None:
        if isinstance(radio, MeterNode):
            radio.power_cycle(self.faults.plan.power_off_time)

    # Credentials ----------------------------------------------------------------------
    def _certified(self, eui: bytes) -> DeviceCredentials | None:
        """The test PKI's credentials for a device EUI-64 it certifies (None: it does not)."""
        try:
            party = self.pki.party(eui)
        except GbcsError:
            return None
        return DeviceCredentials.from_party(party) if party.is_device else None

    def _credentials(self, eui: bytes, given: DeviceCredentials | None = None) -> DeviceCredentials:
        """The device's credentials: given, the test PKI's for its EUI-64, or generated.
        Nothing is trusted yet (:meth:`_trust`, once the device is made): a device
        refused on the way must leave no keys behind at the head end."""
        if given is not None:
            if given.eui64 != eui:
                raise GbcsError(f"credentials are for {given.eui64.hex().upper()}, not {eui.hex()}")
            return given
        return self._certified(eui) or DeviceCredentials.generate(eui, self.seed)

    def _trust(self, *devices: DeviceCredentials) -> None:
        """The head end holds every device's public keys, as the DCC holds every device's
        certificates: it knows the test PKI's already, so only other keys (generated, or
        given in place of the PKI's) are added."""
        for credentials in devices:
            if credentials != self._certified(credentials.eui64):
                self.headend.trust_device(
                    credentials.eui64,
                    credentials.public_point(KeyUsage.KA),
                    credentials.public_point(KeyUsage.DS),
                )

    def _certificates(self, eui: bytes, credentials: DeviceCredentials) -> dict[KeyUsage, bytes]:
        """A meter's DER certificates when the test PKI certified its key pairs (CS02e)."""
        if credentials != self._certified(eui):
            return {}
        party = self.pki.party(eui)
        return {
            usage: party.certificate(usage).public_bytes(serialization.Encoding.DER)
            for usage in (KeyUsage.KA, KeyUsage.DS)
        }

    # Hubs ---------------------------------------------------------------------------
    def add_hub(
        self,
        place: str,
        eui: bytes | None = None,
        *,
        name: str = "",
        channel: int | None = None,
        pan_id: int | None = None,
        extended_pan_id: bytes | None = None,
        network_key: bytes | None = None,
        credentials: tuple[DeviceCredentials, DeviceCredentials] | None = None,
    ) -> Hub:
        _checked_text(place, "place")
        _checked_text(name, "name")
        if eui is None:
            eui = _derived_eui("00DB12345678", 0xC000 + 2 * len(self.hubs))
        else:
            eui = _checked_eui(eui, "hub")
        gpf_eui = eui[:7] + bytes(((eui[7] + 1) % 256,))
        for taken in (eui, gpf_eui):
            self._check_free(taken)
        # Each hub's draws come from the seed and its own EUI-64, not from a stream shared
        # with other hubs: a hub added after a restart gets what it would have got anyway,
        # never an earlier hub's network key.
        r = random.Random(f"gbcs-hil hub {self.seed} {eui.hex().upper()}")
        channel = channel if channel is not None else r.choice(ALL_CHANNELS)
        pan_id = pan_id if pan_id is not None else r.randrange(1, 0xFFF0)
        epid = extended_pan_id if extended_pan_id is not None else bytes(r.randbytes(8))
        key = network_key if network_key is not None else r.randbytes(16)
        # Before anything is made for it: its keys are trusted by the head end as soon as
        # its credentials exist, and a zigpy radio would raise zigpy's own error.
        check_network(channel, pan_id, epid, key)
        given = credentials or (None, None)
        own = self._credentials(eui, given[0]), self._credentials(gpf_eui, given[1])
        chf = CommsHub(own[0], self.anchors, self.clock, extended_pan_id=epid, name=name)
        gpf = Gpf(own[1], self.anchors, self.clock, hub=eui)
        node = self.hub_radio(self.clock, eui, name or eui.hex().upper())
        node.trace = self.trace
        created = place not in self.places
        node.place(self.place(place))  # a zigpy radio forms through its place's medium
        try:
            node.form(channel, pan_id, epid, key)
        except BaseException:
            node.place(None)  # not a radio on the air, nor a place, for a hub never added
            if created:
                self.places.pop(place, None)
            raise
        node.trust_centre = chf
        if isinstance(node, CoordinatorNode):  # a zigpy radio hooks itself up
            chf.on_log_change = node.whitelist_changed
        chf.han = node
        chf.on_network_change = node.adopt_extended_pan_id
        chf.local[gpf.eui64] = gpf
        gpf.on_alert = chf.wan_to
        self._trust(*own)
        self.headend.connect(chf)
        hub = Hub(chf, gpf, node, place)
        self.hubs[eui] = hub
        return hub

    def _check_free(self, eui: bytes) -> None:
        """No two devices share an EUI-64: hubs, their GPFs (the hub's EUI-64 plus one)
        and meters. A meter on a GPF's EUI-64 had its CCS01 refused, and the GPF answered
        the commands meant for it."""
        if eui in self.meters or eui in self.hubs:
            raise GbcsError(f"{eui.hex().upper()} is already in this world")
        try:
            party = self.pki.party(eui)
        except GbcsError:
            party = None
        if party is not None and not party.is_device:  # it would be given the party's keys
            raise GbcsError(
                f"{eui.hex().upper()} is the test PKI's {party.name or 'remote party'} "
                f"({role_label(party.role)}), not a device"
            )
        for hub in self.hubs.values():
            if hub.gpf.eui64 == eui:
                raise GbcsError(f"{eui.hex().upper()} is the GPF of hub {hub.eui64.hex().upper()}")

    # Meters ------------------------------------------------------------------------------
    def operator_anchors(self, network_operator: str) -> TrustAnchors:
        """The world's anchors with another network operator's: a meter of its region."""
        party = self.pki.party(network_operator)
        if party.role is not RemotePartyRole.NETWORK_OPERATOR:
            role = "a device" if party.role is None else f"the {party.role.name.lower()}"
            raise GbcsError(f"{network_operator!r} is {role}, not a network operator")
        return replace(self.anchors, network_operator=TrustAnchor.from_party(party))

    def add_meter(
        self,
        place: str | None,
        kind: str = "esme",
        eui: bytes | None = None,
        *,
        install_code: bytes | None = None,
        name: str = "",
        power: bool = True,
        channels: tuple[int, ...] = ALL_CHANNELS,
        credentials: DeviceCredentials | None = None,
        certificates: Mapping[KeyUsage, bytes] | None = None,
        network_operator: str | None = None,
    ) -> MeterUnit:
        """A meter; ``network_operator`` names the test-PKI party whose anchors it holds
        (a meter installed in another operator's region), the world's own when None."""
        if not isinstance(kind, str) or kind.lower() not in ("esme", "gsme"):
            raise GbcsError(f"unknown meter kind {kind!r} (esme or gsme)")
        kind = kind.lower()
        if place is not None:
            _checked_text(place, "place")
        _checked_text(name, "name")
        channels = checked_channels(channels)  # once: a generator is read only once
        if certificates is not None:
            certificates = _checked_certificates(certificates)
        anchors = (
            self.anchors if network_operator is None else self.operator_anchors(network_operator)
        )
        if eui is None:
            eui = _derived_eui("00DB12345678", 0xB000 + len(self.meters))
        else:
            eui = _checked_eui(eui, "meter")
        self._check_free(eui)
        if install_code is None:
            install_code = hashlib.sha256(
                b"install code" + eui + self.seed.to_bytes(8, "big", signed=True)
            ).digest()[:16]
        cls = Esme if kind == "esme" else Gsme
        own = self._credentials(eui, credentials)
        device = cls(
            own,
            anchors,
            self.clock,
            install_code=install_code,
            name=name,
            certificates=self._certificates(eui, own) if certificates is None else certificates,
        )
        node = MeterNode(
            self.clock,
            eui,
            install_code=install_code,
            sleepy=device.sleepy,
            channels=channels,
            name=name or eui.hex().upper(),
        )
        node.trace = self.trace
        device.han = node
        unit = MeterUnit(device, node, place)

        def on_gbcs(peer: bytes, data: bytes) -> None:
            response = device.receive(data)
            if response is not None:
                node.send_gbcs(peer, response)

        def on_state(state: NodeState) -> None:
            if state is NodeState.JOINED and node.joined:
                device.log_event("joined HAN", node.settings.trust_centre.hex().upper())

        node.on_gbcs = on_gbcs
        node.on_state = on_state
        node.on_left = lambda trust_centre: device.log_event("left HAN", trust_centre.hex().upper())
        self._trust(own)
        if place is not None:
            node.place(self.place(place))
        if power:
            node.power_on()
        self.meters[eui] = unit
        return unit

    def move(self, meter: MeterUnit, place: str | None, *, unplug: bool | None = None) -> None:
        """Carry a meter somewhere else (None: in a van, out of range of every HAN).

        A mains-powered ESME is unplugged on the way and powered again where it
        is put down (nowhere: it stays off); a battery GSME stays powered.
        """
        if unplug is None:
            unplug = not meter.device.sleepy
        node = meter.node
        if unplug and node.powered:
            node.power_off()
        node.place(None if place is None else self.place(place))
        meter.place = place
        if unplug and place is not None and not node.powered:
            node.power_on()

    # Queries -------------------------------------------------------------------------------
    def joined_to(self, meter: MeterUnit) -> bytes | None:
        """The hub a meter is joined to right now (its trust centre, when it is reachable)."""
        node = meter.node
        if not node.joined or node.settings is None:
            return None
        hub = self.hubs.get(node.settings.trust_centre)
        if hub is None or hub.node.medium is not node.medium:
            return None
        # Both ends hold the same tunnel: an ESME grants a new one before the hub has its
        # answer, and a hub re-opening one in doubt still holds the old one meanwhile.
        eui = meter.eui64
        same = hub.node.reachable(eui) and hub.node.tunnel_of(eui) == node.tunnel_id
        return hub.eui64 if hub.node.has_child(eui) and same else None

    def logs_holding(self, meter: MeterUnit) -> list[bytes]:
        """The hubs whose current device log lists the meter."""
        return [h.eui64 for h in self.hubs.values() if meter.eui64 in h.chf.current]

    def joinable(self, meter: MeterUnit) -> bool:
        """Whether the meter can still get onto some HAN: it auto-joins with its
        install code, or a hub whitelists it under the network it remembers."""
        node = meter.node
        if node.settings is None:
            return True  # auto-join (or off with no network: joins when powered)
        epid = node.settings.extended_pan_id
        return any(
            meter.eui64 in h.chf.current and h.chf.extended_pan_id == epid
            for h in self.hubs.values()
        )

    def run(self, seconds: float) -> None:
        self.clock.run_for(seconds)

    def run_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        return self.clock.run_until(condition, timeout=timeout)

    def device_type(self, eui: bytes) -> DeviceType | None:
        if eui in self.hubs:
            return DeviceType.CHF
        unit = self.meters.get(eui)
        return None if unit is None else unit.device.device_type

    def summary(self) -> dict[str, Any]:
        return {
            m.eui64.hex().upper(): {
                "kind": m.kind,
                "joined_to": None if (h := self.joined_to(m)) is None else h.hex().upper(),
                "state": m.node.state.value,
                "in_device_logs": [h.hex().upper() for h in self.logs_holding(m)],
                # Whose region the meter belongs to (DESIGN §2): the anchor it holds now.
                "network_operator": m.device.anchors.network_operator.party_id.hex().upper(),
            }
            for m in self.meters.values()
        }

    # State ----------------------------------------------------------------------------
    def meta_json(self) -> dict[str, Any]:
        faults = self.faults
        return {
            "format": STATE_FORMAT,
            "seed": self.seed,
            "time": self.clock.now,
            "epoch": self.clock.epoch.isoformat(),
            "pki": self.pki_fingerprint(),
            # The plan and where its random stream stands: a restarted world goes on
            # drawing the same faults the uninterrupted one would have.
            "faults": None if not faults.plan.active else faults.state(),
            "headend": {"counters": {k.hex().upper(): v for k, v in self.headend.counters.items()}},
        }

    def pki_fingerprint(self) -> str:
        """Which test PKI the world's keys come from: a state only loads with the same one."""
        cached = self._pki_fingerprint
        if cached is not None and cached[0] == len(self.pki):
            return cached[1]
        digest = hashlib.sha256()
        for party in sorted(self.pki.parties, key=lambda p: p.eui64):
            digest.update(party.eui64)
            for usage in (KeyUsage.KA, KeyUsage.DS):
                digest.update(
                    party.private_key(usage)
                    .public_key()
                    .public_bytes(
                        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
                    )
                )
        fingerprint = digest.hexdigest()[:32]
        self._pki_fingerprint = (len(self.pki), fingerprint)
        return fingerprint

    @staticmethod
    def hub_json(h: Hub) -> dict[str, Any]:
        node = h.node.state()  # first: on a wall clock reading a zigpy radio runs due timers
        chf = h.chf.state()
        # A held message handed to a GSME but not yet acknowledged is still the CHF's to
        # deliver: saved as held, first in line (the GSME's counter check stops a replay),
        # and as handed over (the GSME may have run it).
        held = chf["held"]
        handed = set(chf["handed_over"])
        for device, data in h.node.handed_out().items():  # (CCS02 takes a device's back)
            key = _hex(device)
            held[key] = [data.hex(), *held.get(key, [])]
            handed.add(data.hex())
        chf["handed_over"] = sorted(handed)
        return {
            "eui64": _hex(h.eui64),
            "name": h.chf.name,
            "place": h.place,
            "chf": chf,
            "gpf": h.gpf.state(),
            "node": node,
        }

    @staticmethod
    def meter_json(m: MeterUnit) -> dict[str, Any]:
        return {
            "eui64": _hex(m.eui64),
            "kind": m.kind.lower(),
            "name": m.device.name,
            "place": m.place,
            "device": m.device.state(),
            "node": m.node.node_state(),
            "dead": m.node.dead,
        }

    def to_json(self) -> dict[str, Any]:
        """Everything a fleet needs to survive a restart (frames in flight are lost)."""
        return {
            **self.meta_json(),
            "hubs": [self.hub_json(h) for h in self.hubs.values()],
            "meters": [self.meter_json(m) for m in self.meters.values()],
        }

    def entities(self, only: set[bytes] | None = None) -> dict[str, dict[str, Any]]:
        """The state split per hub and meter (``only`` those EUI-64s), plus ``meta``."""
        out: dict[str, dict[str, Any]] = {"meta": self.meta_json()}
        hubs = (
            self.hubs.values() if only is None else [self.hubs[e] for e in only if e in self.hubs]
        )
        for h in hubs:
            out["hub:" + _hex(h.eui64)] = self.hub_json(h)
        meters = (
            self.meters.values()
            if only is None
            else [self.meters[e] for e in only if e in self.meters]
        )
        for m in meters:
            out["meter:" + _hex(m.eui64)] = self.meter_json(m)
        return out

    @classmethod
    def from_entities(cls, rows: dict[str, dict[str, Any]], **kwargs: Any) -> World:
        """Rebuild a world saved with :meth:`entities` (hubs and meters in saved order)."""
        meta = rows.get("meta")
        if meta is None:
            raise GbcsError("world state has no meta entry")
        if not isinstance(meta, dict):
            raise GbcsError("world state is damaged: its meta entry is not an object")
        return cls.from_json(
            {
                **meta,
                "hubs": [v for k, v in rows.items() if k.startswith("hub:")],
                "meters": [v for k, v in rows.items() if k.startswith("meter:")],
            },
            **kwargs,
        )

    @classmethod
    def from_json(
        cls,
        obj: dict[str, Any],
        *,
        faults: FaultPlan | None = None,
        capture: bool = True,
        pki: TestPki | None = None,
        hub_radio: Callable[[VirtualClock, bytes, str], HubRadio] | None = None,
    ) -> World:
        """Rebuild a world saved with :meth:`to_json`.

        Strict: every key the writers always write is required and checked, so damage is
        a :class:`GbcsError` saying where ("hub <EUI-64> chf: counters is missing"),
        never another exception, and no half-built world is returned. The exceptions are
        the few keys this format gained after its first states were saved (a node's
        ``beacon`` counter, a meter's ``hub_time``, ``next_tunnel_id`` and
        ``parent_failures``, a CHF's
        ``handed_over``, a hub child's ``tunnel_ask``): absent, they take the value such
        a state implies (nothing handed over, nothing asked, and so on).
        ``faults`` None goes on with the saved plan and its random stream; a plan given
        replaces it and starts its stream from the seed. ``pki`` must be the test PKI the
        world was made with (None: the seed's default cast); ``hub_radio`` makes the hubs'
        radios (None: the emulated coordinator; a state saved from zigpy radios needs one
        that makes those).
        """
        found = obj.get("format") if isinstance(obj, dict) else None
        if isinstance(found, str) and found.startswith("gbcs-hil world ") and found != STATE_FORMAT:
            raise GbcsError(
                f"a world state of format {found!r}, from another version of the kit; "
                f"this one reads {STATE_FORMAT!r}"
            )
        if found != STATE_FORMAT:
            raise GbcsError(f"not a gbcs-hil world state (format {STATE_FORMAT} expected)")
        top = SavedState(obj)
        with _reading("world"):
            seed = check_seed(top.value("seed"))
            epoch = dt.datetime.fromisoformat(top.text("epoch"))
            if epoch.tzinfo is None:
                raise GbcsError(f"epoch {top.text('epoch')!r} has no time zone")
            saved_faults = top.optional_member("faults")
            injector = None
            if faults is None:
                if saved_faults is not None:
                    injector = FaultInjector.from_state(saved_faults.obj, seed)
                    faults = injector.plan
                else:
                    faults = NO_FAULTS
            world = cls(seed, faults=faults, capture=capture, pki=pki, clock=VirtualClock(epoch))
            if injector is not None:
                world.faults = injector
            if hub_radio is not None:
                world.hub_radio = hub_radio
            if top.text("pki") != world.pki_fingerprint():
                raise GbcsError(
                    "saved with another test PKI than "
                    + ("the one given" if pki is not None else f"seed {seed}'s default cast")
                    + ": pass the PKI it was made with (pki=...)"
                )
            world.clock.now = top.seconds("time")
            hubs, meters = top.array("hubs"), top.array("meters")
        with _reading("headend"):
            counters = SavedState(top.value("headend")).table("counters")
            world.headend.counters = {k: saved_int(v, w, 0, U64) for k, w, v in counters}
        for i, item in enumerate(hubs):
            world._load_hub(item, _label("hub", item, i))
        for i, item in enumerate(meters):
            world._load_meter(item, _label("meter", item, i))
        return world

    def _load_hub(self, item: object, where: str) -> None:
        with _reading(where):
            h = SavedState(item)
            chf, gpf, node = h.member("chf"), h.member("gpf"), h.member("node")
            backend = node.obj.get("backend", "emulated")
            if backend != "emulated" and self.hub_radio is _emulated_hub_radio:
                raise GbcsError(
                    f"its radio was saved from a {backend} backend: load the state with a "
                    "hub_radio that makes such radios (e.g. hardware.sim_radio.sim_hub_radio)"
                )
            settings = node.optional_member("settings")
            if settings is None:
                raise GbcsError("node.settings is null: a hub's network is always formed")
            network = NetworkSettings.from_json(settings.obj, settings.where)
            hub = self.add_hub(
                h.text("place"),
                h.octets("eui64", 8),
                name=h.text("name"),
                channel=network.channel,
                pan_id=network.pan_id,
                extended_pan_id=network.extended_pan_id,
                network_key=network.network_key,
                credentials=(saved_credentials(chf), saved_credentials(gpf)),
            )
        with _reading(f"{where} chf"):
            hub.chf.load_state(chf.obj)
        with _reading(f"{where} gpf"):
            hub.gpf.load_state(gpf.obj)
        with _reading(f"{where} node"):
            hub.node.load_state(node.obj)

    def _load_meter(self, item: object, where: str) -> None:
        with _reading(where):
            m = SavedState(item)
            device, node = m.member("device"), m.member("node")
            dead, powered = m.flag("dead"), node.flag("powered")
            unit = self.add_meter(
                m.optional_text("place"),
                m.text("kind"),
                m.octets("eui64", 8),
                install_code=device.octets("install_code", 16),
                name=m.text("name"),
                power=False,
                channels=saved_channels(node),
                credentials=saved_credentials(device),
            )
        with _reading(f"{where} device"):
            unit.device.load_state(device.obj)
        with _reading(f"{where} node"):
            unit.node.load_node_state(node.obj)
            unit.node.dead = dead
            unit.node.restart(powered)
            unit.device.resume()

    def save(self, path: str | Path) -> Path:
        """Write the state to ``path`` whole or not at all: a failed write (a full disk)
        leaves the previous save as it was, and is a GbcsError naming the file."""
        target = Path(path)
        text = json.dumps(self.to_json(), indent=1)
        try:
            write_together([(target, text.encode("utf-8"))])
        except OSError as e:
            raise GbcsError(f"{path}: cannot write ({e.strerror or e})") from None
        return target

    @classmethod
    def load(cls, path: str | Path, **kwargs: Any) -> World:
        """A world saved with :meth:`save`; any failure is a GbcsError naming the file."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise GbcsError(f"{path}: not UTF-8 text") from None
        except OSError as e:
            raise GbcsError(f"{path}: cannot read ({e.strerror or e})") from None
        try:
            obj = strict_json.loads(text)
        except RecursionError:
            raise GbcsError(f"{path}: not JSON (nested too deeply)") from None
        except ValueError as e:  # JSONDecodeError, or an integer too long to convert
            raise GbcsError(f"{path}: not JSON ({e})") from None
        try:
            return cls.from_json(obj, **kwargs)
        except GbcsError as e:
            raise GbcsError(f"{path}: {e}") from None


def _hex(eui: bytes) -> str:
    return eui.hex().upper()
