"""The udev rules: a pure-Python lint that runs everywhere, and ``udevadm test`` where it can.

udevadm (Debian 12: systemd 252) has no ``verify`` and always exits 0 from ``test``; it reports a
bad line on stderr as ``<file>:<line> <problem>`` (invalid key, invalid key/value pair, GOTO
without LABEL, unknown group) and skips it. So the udevadm tests read stderr for lines naming the
file. It cannot see a misspelled attribute (``ATTRS{idVendr}`` is a valid name that simply never
matches): that is what the lint's known-attribute list is for.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hardware.dongles import KNOWN_RADIOS, RadioModel

REPO = Path(__file__).resolve().parents[2]
(RULES,) = sorted((REPO / "udev").glob("*.rules"))
INSTALL = REPO / "udev" / "install.sh"
EXPORTER = REPO / "hardware" / "labgrid" / "exporter.yaml"
NOBODY = 65534  # the user root's tests drop to for the install script's non-root runs

MATCH_KEYS = {
    "ACTION",
    "DEVPATH",
    "KERNEL",
    "KERNELS",
    "SUBSYSTEM",
    "SUBSYSTEMS",
    "DRIVER",
    "DRIVERS",
    "ATTRS",
    "TAGS",
    "TEST",
    "PROGRAM",
    "RESULT",
    "CONST",
}
ASSIGN_KEYS = {"OWNER", "GROUP", "MODE", "SECLABEL", "RUN", "LABEL", "GOTO", "OPTIONS", "IMPORT"}
BOTH_KEYS = {"NAME", "SYMLINK", "ATTR", "SYSCTL", "ENV", "TAG"}
KEYED = {"ATTR", "ATTRS", "ENV", "IMPORT", "RUN", "SYSCTL", "TEST", "SECLABEL", "CONST"}
# What this file may read or set; a typo in any of them is a rule that silently never applies.
KNOWN_ATTRS = {"idVendor", "idProduct", "serial", "manufacturer", "product", "bInterfaceNumber"}
KNOWN_ENV = {
    "ID_BUS",
    "ID_SERIAL_SHORT",
    "ID_USB_INTERFACE_NUM",
    "ID_MM_DEVICE_IGNORE",
    "ID_PATH_TAG",
    "GBCS_HIL_ID",
}
KNOWN_IMPORTS = {"builtin", "program", "file", "db", "cmdline", "parent"}
PAIR = re.compile(
    r'\s*(?P<key>[A-Z_]+)(?:\{(?P<attr>[^}]*)\})?\s*(?P<op>==|!=|\+=|-=|:=|=)\s*"(?P<value>[^"]*)"'
    r"\s*(?:,|$)"
)


@dataclass(frozen=True)
class Pair:
    key: str
    attr: str | None
    op: str
    value: str


@dataclass(frozen=True)
class Rule:
    line: int
    pairs: tuple[Pair, ...]

    def get(self, key: str, attr: str | None = None, op: str | None = None) -> str | None:
        for p in self.pairs:
            if p.key == key and p.attr == attr and (op is None or p.op == op):
                return p.value
        return None


def parse(text: str) -> tuple[list[Rule], list[str]]:
    """Rules (one per logical line, continuations joined) and the lines that are not rules."""
    rules: list[Rule] = []
    errors: list[str] = []
    logical: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not pending:
            start = number
        if raw.endswith("\\"):
            pending += raw[:-1]
            continue
        logical.append((start, pending + raw))
        pending = ""
    for number, line in logical:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pairs: list[Pair] = []
        pos = 0
        while pos < len(line):
            m = PAIR.match(line, pos)
            if m is None:
                errors.append(f'line {number}: not key-op-"value" at {line[pos:][:30]!r}')
                break
            pairs.append(Pair(m["key"], m["attr"], m["op"], m["value"]))
            pos = m.end()
            if line[pos:].strip() == "":
                break
        rules.append(Rule(number, tuple(pairs)))
    return rules, errors


def lint(text: str) -> list[str]:
    """Everything wrong with a rules file that we can tell without udev."""
    rules, errors = parse(text)
    labels = {r.get("LABEL") for r in rules}
    imported_usb_id = False
    for rule in rules:
        where = f"line {rule.line}"
        for p in rule.pairs:
            if p.key not in MATCH_KEYS | ASSIGN_KEYS | BOTH_KEYS:
                errors.append(f"{where}: unknown key {p.key}")
                continue
            if p.key in MATCH_KEYS and p.op not in ("==", "!="):
                errors.append(f"{where}: {p.key} only matches, {p.op} is an assignment")
            if p.key in ASSIGN_KEYS and p.op in ("==", "!="):
                errors.append(f"{where}: {p.key} is assigned, not matched")
            if (p.attr is not None) != (p.key in KEYED) and p.key != "TEST":
                errors.append(f"{where}: {p.key} {'needs' if p.attr is None else 'takes no'} {{}}")
            if p.key in ("ATTR", "ATTRS") and p.attr not in KNOWN_ATTRS:
                errors.append(f"{where}: unknown attribute {p.key}{{{p.attr}}}")
            if p.attr in ("idVendor", "idProduct") and not re.fullmatch(r"[0-9a-f]{4}", p.value):
                errors.append(f"{where}: {p.attr} is 4 lower-case hex digits in sysfs")
            if p.key == "ENV" and p.attr not in KNOWN_ENV:
                errors.append(f"{where}: unknown ENV{{{p.attr}}}")
            if p.key == "IMPORT" and p.attr not in KNOWN_IMPORTS:
                errors.append(f"{where}: unknown IMPORT{{{p.attr}}}")
            if p.key == "GOTO" and p.value not in labels:
                errors.append(f"{where}: GOTO {p.value} has no LABEL")
            for name in re.findall(r"\$env\{([^}]*)\}", p.value):
                if name not in KNOWN_ENV:
                    errors.append(f"{where}: unknown $env{{{name}}}")
            usb_id_env = p.key == "ENV" and p.attr in ("ID_SERIAL_SHORT", "ID_USB_INTERFACE_NUM")
            if usb_id_env and not imported_usb_id:
                errors.append(f"{where}: ENV{{{p.attr}}} read before usb_id is imported")
            if (p.key, p.attr, p.value) == ("IMPORT", "builtin", "usb_id"):
                imported_usb_id = True
    return errors


def dongle_rules(text: str) -> dict[tuple[str, str, str | None], Rule]:
    """The rules that select a dongle, by (vid, pid, interface number or None)."""
    rules, _ = parse(text)
    found: dict[tuple[str, str, str | None], Rule] = {}
    for rule in rules:
        vid, pid = rule.get("ATTRS", "idVendor", "=="), rule.get("ATTRS", "idProduct", "==")
        if vid is not None and pid is not None:
            found[(vid, pid, rule.get("ENV", "ID_USB_INTERFACE_NUM", "=="))] = rule
    return found


def _key(radio: RadioModel) -> tuple[str, str, str | None]:
    interface = None if radio.interface is None else f"{radio.interface:02x}"
    return (f"{radio.vid:04x}", f"{radio.pid:04x}", interface)


# Deliberate breakages: (name, old, new, which checks should catch it).
BREAKAGES = [
    ("misspelled-attribute", "ATTRS{idVendor}", "ATTRS{idVendr}", {"lint"}),
    ("misspelled-key", 'GROUP="dialout"', 'GROUPP="dialout"', {"lint", "udevadm"}),
    ("match-op-on-assign-key", 'MODE="0660"', 'MODE=="0660"', {"lint", "udevadm"}),
    ("bad-operator", 'ATTRS{idProduct}=="ea60"', 'ATTRS{idProduct}=~"ea60"', {"lint", "udevadm"}),
    ("unterminated-quote", 'TAG+="uaccess"', 'TAG+="uaccess', {"lint", "udevadm"}),
    ("goto-without-label", 'LABEL="gbcs_hil_zigbee_end"', 'LABEL="gbcs_end"', {"lint", "udevadm"}),
    ("unknown-group", 'GROUP="dialout"', 'GROUP="dialoutt"', {"udevadm"}),
    ("misspelled-env", "ENV{ID_MM_DEVICE_IGNORE}", "ENV{ID_MM_DEVICE_IGNOR}", {"lint"}),
    ("upper-case-hex", 'idProduct}=="ea60"', 'idProduct}=="EA60"', {"lint"}),
]


def _broken(old: str, new: str) -> str:
    text = RULES.read_text()
    assert old in text, f"the breakage no longer applies: {old!r} is not in {RULES.name}"
    return text.replace(old, new, 1)


# ---------------------------------------------------------------- the lint (runs everywhere)


def test_rules_file_is_numbered_between_60_and_73() -> None:
    """After 60-serial.rules' usb_id, before 73-seat-late.rules applies the uaccess tag."""
    number = int(RULES.name.split("-", 1)[0])
    assert 60 <= number <= 73, RULES.name


def test_rules_file_lints_clean() -> None:
    assert lint(RULES.read_text()) == []


@pytest.mark.parametrize("radio", KNOWN_RADIOS, ids=lambda m: f"{m.vid_pid}-{m.family}")
def test_every_known_dongle_has_a_complete_rule(radio: RadioModel) -> None:
    rule = dongle_rules(RULES.read_text()).get(_key(radio))
    assert rule is not None, f"no rule for {radio.vid_pid} ({radio.family})"
    assert rule.get("SUBSYSTEM", op="==") == "tty"
    assert rule.get("GROUP") == "dialout" and rule.get("MODE") == "0660"
    assert rule.get("TAG", op="+=") == "uaccess"
    assert rule.get("ENV", "ID_MM_DEVICE_IGNORE", "=") == "1"
    symlink = rule.get("SYMLINK", op="+=")
    assert symlink is not None and symlink.startswith(f"zigbee/{radio.family}-$env{{")
    assert symlink.endswith("-if$env{ID_USB_INTERFACE_NUM}") == radio.link_per_interface


def test_no_rule_for_an_unknown_dongle() -> None:
    assert set(dongle_rules(RULES.read_text())) == {_key(m) for m in KNOWN_RADIOS}


def test_husbzb1_rule_is_limited_to_interface_01() -> None:
    keys = [k for k in dongle_rules(RULES.read_text()) if k[:2] == ("10c4", "8a2a")]
    assert keys == [("10c4", "8a2a", "01")]


def test_link_name_is_the_serial_number_when_there_is_one() -> None:
    rules, _ = parse(RULES.read_text())
    assert any(
        r.get("ENV", "ID_SERIAL_SHORT", "==") == "?*"
        and r.get("ENV", "GBCS_HIL_ID", "=") == "$env{ID_SERIAL_SHORT}"
        for r in rules
    )


@pytest.mark.parametrize(
    ("old", "new"),
    [pytest.param(old, new, id=name) for name, old, new, by in BREAKAGES if "lint" in by],
)
def test_lint_catches_a_broken_copy(old: str, new: str) -> None:
    assert lint(_broken(old, new)) != []


def test_lint_joins_continuation_lines() -> None:
    rules, errors = parse('SUBSYSTEM=="tty", \\\n  GROUP="dialout"\n')
    assert errors == [] and rules == [
        Rule(1, (Pair("SUBSYSTEM", None, "==", "tty"), Pair("GROUP", None, "=", "dialout")))
    ]


# ---------------------------------------------------------------- udevadm test (root only)


def _sys_device() -> str | None:
    for candidate in ("/sys/class/tty/ttyS0", "/sys/class/tty/tty0", "/sys/class/tty/console"):
        if Path(candidate).exists():
            return candidate
    return None


def _needs_udevadm() -> None:
    if shutil.which("udevadm") is None:
        pytest.skip("udevadm is not installed (apt-get install -y udev)")
    if os.geteuid() != 0:
        pytest.skip("udevadm test needs root: it reads rules only from system folders")
    if _sys_device() is None:
        pytest.skip("no tty device in /sys to run udevadm test on")


def udevadm_diagnostics(text: str) -> list[str]:
    """What ``udevadm test`` says about these rules; [] means it took every line.

    udevadm reads rules only from the system folders, so the text goes into /run/udev/rules.d
    (volatile; nothing else uses it in a container) under a unique name, so it neither shadows an
    installed copy nor collides with a parallel run, and is removed afterwards. udevadm test also
    applies the stock rules' permissions to the probed tty, which udevd would do anyway.
    """
    folder = Path("/run/udev/rules.d")
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"61-gbcs-hil-pytest-{uuid.uuid4().hex}.rules"
    try:
        path.write_text(text)
        run = subprocess.run(
            ["udevadm", "test", "--action=add", str(_sys_device())],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        path.unlink(missing_ok=True)
        if created:
            for empty in (folder, folder.parent):
                try:
                    empty.rmdir()
                except OSError:
                    break
    output = run.stdout + run.stderr
    assert run.returncode == 0, f"udevadm test failed outright ({run.returncode}):\n{output}"
    assert f"Reading rules file: {path}" in output, f"udevadm did not read {path}:\n{output}"
    return [
        line
        for line in output.splitlines()
        if str(path) in line and not line.startswith("Reading rules file:")
    ]


def test_udevadm_accepts_the_rules() -> None:
    _needs_udevadm()
    assert udevadm_diagnostics(RULES.read_text()) == []


@pytest.mark.parametrize(
    ("old", "new"),
    [pytest.param(old, new, id=name) for name, old, new, by in BREAKAGES if "udevadm" in by],
)
def test_udevadm_rejects_a_broken_copy(old: str, new: str) -> None:
    _needs_udevadm()
    assert udevadm_diagnostics(_broken(old, new)) != []


# ---------------------------------------------------------------- install.sh


@pytest.fixture
def user_dir() -> Iterator[Path]:
    """A folder the (possibly dropped-to) normal user owns, with a copy of udev/ in it."""
    with tempfile.TemporaryDirectory(prefix="gbcs-hil-udev-") as name:
        folder = Path(name)
        shutil.copytree(REPO / "udev", folder / "udev")
        if os.geteuid() == 0:
            for path in [folder, *folder.rglob("*")]:
                os.chown(path, NOBODY, NOBODY)
        yield folder


def run_as_user(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The folder's install.sh as a normal user: this one, or nobody when the tests run as root."""
    argv = ["bash", str(folder / "udev" / "install.sh"), *args]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv to become a normal user")
        argv = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_install_script_needs_no_root_for_a_writable_folder(user_dir: Path) -> None:
    dest = user_dir / "rules.d" / "nested"
    done = run_as_user(user_dir, "--dest", str(dest), "--no-reload")
    assert done.returncode == 0, done.stderr
    assert (dest / RULES.name).read_text() == RULES.read_text()
    done = run_as_user(user_dir, "--dest", str(dest), "--no-reload", "--uninstall")
    assert done.returncode == 0, done.stderr
    assert not (dest / RULES.name).exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--dest", "{dest}"], "reloading udev needs root (add --no-reload"),
        (["--no-reload"], "/etc/udev/rules.d is not writable by "),
        (["--no-reload", "--uninstall"], "/etc/udev/rules.d is not writable by "),
    ],
    ids=["reload", "system-folder", "system-folder-uninstall"],
)
def test_install_script_needs_root_for_udev_itself(
    user_dir: Path, args: list[str], says: str
) -> None:
    dest = user_dir / "rules.d"
    done = run_as_user(user_dir, *(a.format(dest=dest) for a in args))
    assert done.returncode == 1
    assert says in done.stderr and "nothing was changed" in done.stderr
    assert "Run it again with sudo" in done.stderr
    assert not dest.exists()


@pytest.mark.parametrize("dest", ["", "not-a-folder"])
def test_install_script_refuses_a_dest_that_is_no_folder(tmp_path: Path, dest: str) -> None:
    (tmp_path / "not-a-folder").touch()
    done = subprocess.run(
        ["bash", str(INSTALL), "--dest", dest, "--no-reload"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("install.sh: --dest ")
    assert "install: " not in done.stderr and done.stdout == ""


# ---------------------------------------------------------------- the labgrid exporter example


def test_exporter_example_uses_a_link_the_rules_make() -> None:
    """The ser2net snippet's device is a /dev/zigbee/<family>-<serial> link of these rules."""
    devices = re.findall(r"serialdev,([^,\s]+)", EXPORTER.read_text())
    assert devices, "the exporter example names no ser2net serialdev"
    families = "|".join(re.escape(m.family) for m in KNOWN_RADIOS)
    for device in devices:
        found = re.fullmatch(rf"/dev/zigbee/({families})-([^/]+)", device)
        assert found, f"{device} is not a link udev/{RULES.name} creates"
        family = found[1]
        assert f'SYMLINK+="zigbee/{family}-$env{{GBCS_HIL_ID}}"' in RULES.read_text()
