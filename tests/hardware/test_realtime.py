"""Real time without a dongle: the WallClock, zigpy on an ordinary asyncio loop, SerialBackend.

The CHF's zigpy radio runs here on :class:`hardware.sim_radio.SimControllerApplication`
but on a :class:`emulators.clock.WallClock`: real seconds, a real asyncio event
loop, zigpy's tasks and timeouts on it. That is the path a bellows dongle takes;
only the serial port is missing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from emulators.clock import DEFAULT_EPOCH, VirtualClock, WallClock
from emulators.scenarios import Run
from emulators.world import World
from emulators.zigbee.install_code import link_key_from_install_code
from gbcs.errors import GbcsError
from hardware.pytest_plugin import SerialBackend
from hardware.realtime import (
    DongleRadioFactory,
    SerialSettings,
    bellows_app,
    serial_settings,
    use_wall_clock,
)
from hardware.sim_radio import (
    SimControllerApplication,
    register_place,
    sim_config,
    sim_hub_radio,
)
from hardware.zigpy_han import WELL_KNOWN_KEY, VirtualTimeLoop, ZigpyHubRadio
from tests.hardware.fake_ncp import fake_ncp

SEED = 7


@pytest.fixture
def clock() -> Iterator[WallClock]:
    made = WallClock()
    try:
        yield made
    finally:
        made.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_port() -> Iterator[str]:
    """A TCP port that accepts and never answers: ser2net with nothing behind it."""
    server = socket.create_server(("127.0.0.1", 0))
    server.listen(4)
    try:
        yield f"socket://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


# --- WallClock ----------------------------------------------------------------------------


def test_wall_clock_follows_real_time(clock: WallClock) -> None:
    start = time.monotonic()
    assert 0 <= clock.now < 0.5
    utc = clock.utc
    clock.run_for(0.1)
    assert time.monotonic() - start >= 0.1
    assert 0.1 <= clock.now < 1.0
    assert 0.09 <= (clock.utc - utc).total_seconds() < 1.0
    assert abs((clock.utc - dt.datetime.now(dt.UTC)).total_seconds()) < 1.0  # real UTC
    given = WallClock(DEFAULT_EPOCH, loop=clock.loop)  # another epoch is kept
    assert given.epoch == DEFAULT_EPOCH and (given.utc - DEFAULT_EPOCH).total_seconds() < 1.0
    given.now = 100.0  # a restored world's saved time: the clock reads on from there
    assert 100.0 <= given.now < 101.0
    assert isinstance(clock, VirtualClock)  # everything taking a clock takes it


def test_timers_fire_in_order_when_real_time_reaches_them(clock: WallClock) -> None:
    fired: list[tuple[str, float, float]] = []

    def note(name: str) -> None:
        fired.append((name, clock.now, clock.elapsed()))

    a = clock.call_later(0.06, note, "a")
    b = clock.call_later(0.02, note, "b")
    c = clock.call_at(0.04, note, "c")
    cancelled = clock.call_later(0.03, note, "cancelled")
    cancelled.cancel()
    clock.call_later(0.5, note, "later")
    assert clock.run(0.1) == 3
    assert [name for name, _, _ in fired] == ["b", "c", "a"]
    for (_, now, wall), timer in zip(fired, (b, c, a), strict=True):
        assert now == timer.due  # a timer sees its own due time
        assert wall >= timer.due  # ... and never runs before real time reaches it
    assert clock.elapsed() >= 0.1 and clock.pending() == 1
    assert clock.step() and fired[-1][0] == "later" and fired[-1][2] >= 0.5
    assert not clock.step()


def test_sub_millisecond_chains_keep_their_timing(clock: WallClock) -> None:
    """Frames 0.2 ms apart stay 0.2 ms apart although the OS wakes in milliseconds."""
    times: list[float] = []

    def hop(left: int) -> None:
        times.append(clock.now)
        if left:
            clock.call_later(0.0002, hop, left - 1)

    clock.call_later(0.01, hop, 9)
    clock.run_until(lambda: len(times) == 10, timeout=2)
    assert [round(b - a, 9) for a, b in itertools.pairwise(times)] == [0.0002] * 9


def test_run_until_returns_on_condition_or_timeout(clock: WallClock) -> None:
    flag: list[bool] = []
    clock.call_later(0.05, flag.append, True)
    start = time.monotonic()
    assert clock.run_until(lambda: bool(flag), timeout=5)
    assert 0.05 <= time.monotonic() - start < 1.0

    start = time.monotonic()
    assert not clock.run_until(lambda: False, timeout=0.2)
    assert 0.2 <= time.monotonic() - start < 1.0
    assert clock.run_until(lambda: True, timeout=0)  # already true: no wait


def test_asyncio_tasks_progress_during_run_until(clock: WallClock) -> None:
    seen: list[str] = []

    async def radio_task() -> str:
        await asyncio.sleep(0.05)  # an asyncio timer on the real loop
        seen.append("task woke")
        clock.call_soon(seen.append, "clock timer from the task")  # the world hears at once
        await asyncio.sleep(0.05)
        seen.append("task done")
        return "ok"

    task = clock.loop.create_task(radio_task())
    start = time.monotonic()
    assert clock.run_until(task.done, timeout=5)
    assert task.result() == "ok"
    assert seen == ["task woke", "clock timer from the task", "task done"]
    assert 0.1 <= time.monotonic() - start < 1.0


def test_a_timer_booked_inside_a_slice_is_not_held_to_its_end() -> None:
    clock = WallClock(slice_seconds=5.0)  # a slice far longer than the test may take
    try:
        fired: list[float] = []

        async def book() -> None:
            await asyncio.sleep(0.02)
            clock.call_later(0.01, lambda: fired.append(clock.elapsed()))

        clock.loop.create_task(book())
        start = time.monotonic()
        assert clock.run_until(lambda: bool(fired), timeout=10)
        assert time.monotonic() - start < 1.0
    finally:
        clock.close()


def test_complete_runs_a_coroutine_or_times_out(clock: WallClock) -> None:
    async def answer() -> int:
        await asyncio.sleep(0.01)
        return 42

    assert clock.complete(answer(), timeout=5) == 42
    unwound: list[bool] = []

    async def silent() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            unwound.append(True)

    start = time.monotonic()
    with pytest.raises(TimeoutError, match=r"not done within 0\.2 s"):
        clock.complete(silent(), timeout=0.2)
    assert time.monotonic() - start < 2.0 and unwound == [True]


def test_waiting_inside_the_running_loop_is_refused(clock: WallClock) -> None:
    async def nested() -> None:
        clock.run_until(lambda: False, timeout=1)

    with pytest.raises(RuntimeError, match="inside its own running event loop"):
        clock.loop.run_until_complete(nested())


def test_a_runaway_timer_loop_is_an_error(clock: WallClock) -> None:
    def again() -> None:
        clock.call_soon(again)

    clock.call_soon(again)
    with pytest.raises(RuntimeError, match="without settling"):
        clock.run_for(1.0, max_events=1000)


# --- The CHF on zigpy in real time (the sim radio on a wall clock) --------------------------


def test_install_code_join_and_cs07_through_zigpy_in_real_time() -> None:
    world = World(SEED)
    clock = use_wall_clock(world)
    world.hub_radio = sim_hub_radio
    try:
        started = time.monotonic()
        run = Run("real time", world)
        hub = world.add_hub("bench", name="bench CHF")
        radio = hub.node
        assert isinstance(radio, ZigpyHubRadio) and isinstance(radio.app, SimControllerApplication)
        assert radio.loop is clock.loop and not isinstance(radio.loop, VirtualTimeLoop)
        meter = world.add_meter("bench", "esme", name="ESME")

        assert run.add_device(hub, meter).ok  # CCS01 through the head end, in real time
        joined = run.wait_joined(meter, hub, "HAN join (install code)", timeout=10)
        assert joined.ok, joined.result
        cs07 = run.join_details(hub, meter)  # CS07 through the CHF's GBCS tunnel
        assert cs07.ok, cs07.result
        assert [s.result for s in run.qa_reads(hub, meter)] == ["ok"] * 4
        wall = time.monotonic() - started

        # Real seconds passed, and the world's clock followed them.
        assert 0.05 < clock.now <= wall + 0.01 and wall < 10
        assert cs07.time <= clock.now
        # zigpy admitted it with the install-code key from the CHF's device log, only.
        ncp = radio.app.ncp
        assert [(a.ieee, a.key, a.how) for a in ncp.admitted] == [
            (meter.eui64, link_key_from_install_code(meter.device.install_code), "join")
        ]
        assert all(a.key != WELL_KNOWN_KEY for a in ncp.admitted)
        assert meter.node.joins == 1 and world.joined_to(meter) == hub.eui64
        radio.close()
    finally:
        clock.close()


def test_a_sim_radio_on_another_clocks_loop_is_refused() -> None:
    world = World(SEED)
    use_wall_clock(world)
    other = WallClock()

    def wrong_loop(clock: VirtualClock, eui: bytes, name: str) -> ZigpyHubRadio:
        radio = sim_hub_radio(clock, eui, name)
        radio.loop = other.loop
        return radio

    world.hub_radio = wrong_loop
    try:
        with pytest.raises(GbcsError, match=r"did not come up: .*loop of its medium's clock"):
            world.add_hub("bench")
    finally:
        other.close()
        world.clock.close()  # type: ignore[attr-defined]


def test_use_wall_clock_only_on_a_fresh_world() -> None:
    world = World(SEED)
    world.add_hub("bench")
    with pytest.raises(GbcsError, match="before anything is added"):
        use_wall_clock(world)


# --- bellows and SerialBackend ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path", "baudrate", "flow"),
    [
        ("/dev/ttyUSB0", "/dev/ttyUSB0", 115200, None),
        ("/dev/ttyACM0?baudrate=460800", "/dev/ttyACM0", 460800, None),
        ("socket://pi:3333?flow_control=hardware", "socket://pi:3333", 115200, "hardware"),
        (
            "rfc2217://pi:4001?logging=debug&baudrate=57600",
            "rfc2217://pi:4001?logging=debug",
            57600,
            None,
        ),
    ],
)
def test_serial_settings_from_the_url(url: str, path: str, baudrate: int, flow: str) -> None:
    assert serial_settings(url) == SerialSettings(path, baudrate, flow)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("/dev/ttyUSB0?baudrate=fast", "is not a number"),
        ("/dev/ttyUSB0?flow_control=none", "is not one of hardware, software"),
        ("?baudrate=9600", "names no port"),
        # A rate no C int holds raised OverflowError out of pyserial in every test.
        ("/dev/ttyUSB0?baudrate=2147483648", "not a positive rate below 2"),
        ("/dev/ttyUSB0?baudrate=0", "not a positive rate"),
    ],
)
def test_bad_serial_settings_say_why(url: str, says: str) -> None:
    with pytest.raises(GbcsError, match=says):
        serial_settings(url)


def test_bellows_application_config() -> None:
    from bellows.zigbee.application import ControllerApplication as BellowsApplication

    app = bellows_app(SerialSettings("socket://pi:3333", 230400, "hardware"))
    assert isinstance(app, BellowsApplication)
    device = app.config["device"]
    assert (device["path"], device["baudrate"], device["flow_control"]) == (
        "socket://pi:3333",
        230400,
        "hardware",
    )
    assert app.config["ota"]["enabled"] is False
    assert not app.config["backup_enabled"] and not app.config["topology_scan_enabled"]


@pytest.mark.parametrize("where", ["missing", "closed"])
def test_prepare_on_a_port_that_is_not_there_fails_fast(where: str) -> None:
    url = (
        "/dev/gbcs-hil-no-such-dongle"
        if where == "missing"
        else f"socket://127.0.0.1:{closed_port()}"
    )
    backend = SerialBackend(url)
    world = World(SEED)
    start = time.monotonic()
    with pytest.raises(GbcsError, match=f"cannot open {url}"):
        backend.prepare(world)
    assert time.monotonic() - start < 5
    assert type(world.clock) is VirtualClock  # nothing was changed


@pytest.mark.parametrize("where", ["missing", "closed"])
def test_bellows_on_a_port_that_is_not_there_fails_fast(where: str) -> None:
    """Past the pyserial check (the port went away): bellows' own error, at once."""
    url = (
        "/dev/gbcs-hil-no-such-dongle"
        if where == "missing"
        else f"socket://127.0.0.1:{closed_port()}"
    )
    world = World(SEED)
    clock = use_wall_clock(world)
    radios = DongleRadioFactory(serial_settings(url), sync_timeout=30)
    world.hub_radio = radios
    start = time.monotonic()
    says = (
        re.escape(f"{url}: no such device (unplugged?)")
        if where == "missing"
        else re.escape(f"{url}: ConnectionRefusedError")
    )
    try:
        with pytest.raises(GbcsError, match=f"bench CHF: the zigpy radio did not come up: {says}"):
            world.add_hub("bench", name="bench CHF")
        assert time.monotonic() - start < 5
    finally:
        radios.close()
        clock.close()


def test_prepare_on_a_silent_port_fails_with_the_probe_reason_once(silent_port: str) -> None:
    """Nothing answers EZSP: prepare fails before the world leaves its virtual clock, and
    every later prepare at once with the same reason (the port is probed once)."""
    backend = SerialBackend(silent_port + "?baudrate=57600", probe_timeout=1.0)
    reason = (
        f"--han {backend.name}: no EZSP answer from {silent_port} at 57600 baud within 1 s "
        "(not an EZSP radio, wrong baud rate, in its bootloader, or in use)"
    )
    for _ in range(2):
        world = World(SEED)
        start = time.monotonic()
        with pytest.raises(GbcsError) as failed:
            backend.prepare(world)
        assert str(failed.value) == reason and type(world.clock) is VirtualClock
        assert not [t for t in threading.enumerate() if t.name.startswith("bellows")]
    assert time.monotonic() - start < 1  # the second time: no probe


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pty (POSIX)")
def test_prepare_puts_the_world_on_real_time_and_a_radio_that_stops_answering_times_out() -> None:
    """The NCP answers its version (the probe passes) and nothing more: the hub's radio does
    not come up within connect_timeout, and later tests fail at once with that reason."""
    with fake_ncp("version-only") as path:
        backend = SerialBackend(path, connect_timeout=2.0)
        world = World(SEED)
        backend.prepare(world)
        try:
            assert isinstance(world.clock, WallClock) and world.headend.clock is world.clock
            assert isinstance(world.hub_radio, DongleRadioFactory)
            assert world.hub_radio.settings == SerialSettings(path, 115200, None)
            start = time.monotonic()
            with pytest.raises(
                GbcsError,
                match=r"did not come up: no EZSP answer from /dev/\S+ at 115200 baud "
                r"within 2(\.\d+)? s \(not an EZSP radio, wrong baud rate, in its bootloader, "
                r"or in use\)$",
            ):
                world.add_hub(backend.bench, name="bench CHF")
            assert time.monotonic() - start < 10
            assert not [t for t in threading.enumerate() if t.name.startswith("bellows")]
        finally:
            backend.release()
        assert world.clock.loop.is_closed()  # type: ignore[attr-defined]
        again = World(SEED)
        start = time.monotonic()
        with pytest.raises(GbcsError) as failed:
            backend.prepare(again)
        assert str(failed.value).startswith(f"--han {backend.name}: bench CHF: the zigpy radio did")
        assert str(failed.value).endswith("or in use) (earlier test; not retried)")
        assert time.monotonic() - start < 1 and type(again.clock) is VirtualClock


def test_one_dongle_gives_one_hub_its_radio(clock: WallClock) -> None:
    world = World(SEED)
    use_wall_clock(world, clock)
    radios = DongleRadioFactory(SerialSettings("socket://pi:3333"))
    first = radios(clock, bytes(8), "first")
    first._formed = True  # as if its network were up
    with pytest.raises(GbcsError, match="already the HAN of first"):
        radios(clock, bytes.fromhex("0000000000000001"), "second")
    with pytest.raises(GbcsError, match="needs a world on a WallClock"):
        DongleRadioFactory(SerialSettings("/dev/x"))(VirtualClock(), bytes(8), "virtual")


@pytest.mark.parametrize(
    ("raised", "says"),
    [
        (TimeoutError(), r"no EZSP answer from /dev/ttyGONE at 57600 baud within \d.* s \(not an"),
        (OSError(), r"/dev/ttyGONE: OSError: no detail given$"),
        (FileNotFoundError(2, "x"), r"/dev/ttyGONE: no such device \(unplugged\?\)$"),
    ],
)
def test_a_dongle_that_fails_without_a_message_still_says_why(raised: Exception, says: str) -> None:
    """bellows gives up with a bare TimeoutError(): the reason must not end in 'TimeoutError:'."""

    def app_factory(settings: SerialSettings) -> Any:
        app = bellows_app(settings)

        async def connect() -> None:
            raise raised

        app.connect = connect  # type: ignore[method-assign]
        return app

    world = World(SEED)
    clock = use_wall_clock(world)
    radios = DongleRadioFactory(SerialSettings("/dev/ttyGONE", 57600), app_factory=app_factory)
    world.hub_radio = radios
    try:
        with pytest.raises(GbcsError, match=f"bench CHF: the zigpy radio did not come up: {says}"):
            world.add_hub("bench", name="bench CHF")
        assert radios.failure is not None and not radios.failure.rstrip().endswith(":")
    finally:
        radios.close()
        clock.close()


def test_a_zigpy_radio_that_times_out_without_a_message_still_says_why() -> None:
    """The generic zigpy radio (not a dongle) words a bare timeout, not an empty reason."""

    class Silent(SimControllerApplication):
        async def connect(self) -> None:
            raise TimeoutError()

    def hub_radio(clock: VirtualClock, eui: bytes, name: str) -> ZigpyHubRadio:
        def app_factory(medium: Any) -> Silent:
            return Silent(sim_config(register_place(medium)))

        return ZigpyHubRadio(clock, eui, name, app_factory=app_factory)

    world = World(SEED)
    world.hub_radio = hub_radio
    with pytest.raises(GbcsError, match=r"did not come up: no answer from the radio within \d"):
        world.add_hub("bench", name="bench CHF")
