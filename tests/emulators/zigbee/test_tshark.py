"""Wireshark as an independent reader of the codec's PSDUs.

A capture of a whole GB HAN conversation (link type 195, 802.15.4 with FCS)
is dissected by tshark given the network key and the install-code link key;
every frame must dissect without a malformed or expert warning/error, every
secured layer must decrypt, the fragmented GET-RESPONSE must reassemble into
the GBCS message, and with a wrong network key nothing above the NWK layer of a
secured frame may be readable.

Wireshark hands a tunnel TransferData payload to ``gbcs_tunnel`` through the
heuristic it registers on the ``zbee_zcl_se.tun`` list (enabled by default),
which looks only at the first byte (GET 0x01, GET-RESPONSE 0x02, PUT 0x03, or
a bare 0xDD/0xDF GBCS message); the capture needs no RequestTunnel for it.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import pytest

from gbcs.frame import decode_message
from gbcs.pcap import LINKTYPE_IEEE802_15_4_WITHFCS, pcap_file

from .scenario import LINK_KEY, NETWORK_KEY, gbcs_command, gbcs_response, han_steps

TSHARK = shutil.which("tshark")
FIELDS = (
    "frame.number",
    "wpan.fcs_ok",
    "zbee_beacon.ext_panid",
    "zbee_nwk.cmd.id",
    "zbee_nwk.cmd.addr",
    "zbee_aps.cmd.key",
    "zbee_zdp.nwk_addr",
    "zbee_zcl_se.tun.protocol_id",
    "zbee_zcl_se.tun.tunnel_id",
    "gbcs_tunnel.command",
    "zbee_aps.fragment.count",
    "gbcs_message.grouping_header.message_code",
    "zbee_aps.counter",
    "_ws.malformed",
    "_ws.expert.severity",
    "_ws.expert.message",  # kept last: messages may hold commas
)
PI_WARN = 0x00600000  # epan/proto.h severity; PI_ERROR is 0x00800000

pytestmark = pytest.mark.skipif(
    TSHARK is None, reason="tshark (Wireshark command line) is not installed"
)


@functools.cache
def _missing_dissector() -> str | None:
    assert TSHARK is not None
    out = subprocess.run(
        [TSHARK, "-G", "protocols"], capture_output=True, text=True, timeout=60, check=False
    ).stdout
    for name in ("zbee_nwk", "gbcs_tunnel", "gbcs_message"):
        if f"\t{name}\n" not in out:
            return f"this tshark has no {name} dissector"
    return None


def _key_options(keys: dict[str, bytes]) -> list[str]:
    options = []
    for label, key in keys.items():
        options += ["-o", f'uat:zigbee_pc_keys:"{key.hex()}","Normal","{label}"']
    return options


GOOD_KEYS = {"nwk": NETWORK_KEY, "install-code link key": LINK_KEY}


def _dissect(path: Path, keys: dict[str, bytes]) -> list[dict[str, str]]:
    if (reason := _missing_dissector()) is not None:
        pytest.skip(reason)
    assert TSHARK is not None
    cmd = [TSHARK, "-n", "-r", str(path), *_key_options(keys), "-T", "fields"]
    cmd += ["-E", "separator=,", "-E", "occurrence=a", "-E", "aggregator=|", "-E", "quote=n"]
    for name in FIELDS:
        cmd += ["-e", name]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split(",", len(FIELDS) - 1) for line in proc.stdout.splitlines()]
    return [dict(zip(FIELDS, row, strict=True)) for row in rows]


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    steps = han_steps()
    path = tmp_path_factory.mktemp("han") / "han.pcap"
    records = [(1_700_000_000 + i, step.psdu) for i, step in enumerate(steps)]
    path.write_bytes(pcap_file(LINKTYPE_IEEE802_15_4_WITHFCS, records))
    return path, [step.label for step in steps]


@pytest.fixture(scope="module")
def dissected(capture: tuple[Path, list[str]]) -> dict[str, dict[str, str]]:
    path, labels = capture
    rows = _dissect(path, GOOD_KEYS)
    assert [int(r["frame.number"]) for r in rows] == list(range(1, len(labels) + 1))
    return dict(zip(labels, rows, strict=True))


def test_no_frame_is_malformed_or_warned_about(dissected: dict[str, dict[str, str]]) -> None:
    problems = {
        label: (row["_ws.malformed"], row["_ws.expert.severity"], row["_ws.expert.message"])
        for label, row in dissected.items()
        if row["_ws.malformed"]
        or any(int(s) >= PI_WARN for s in row["_ws.expert.severity"].split("|") if s)
    }
    assert problems == {}


def test_fcs_is_accepted(dissected: dict[str, dict[str, str]]) -> None:
    assert {label: row["wpan.fcs_ok"] for label, row in dissected.items()} == {
        label: "1" for label in dissected
    }


def test_beacon_and_mac_commands(dissected: dict[str, dict[str, str]]) -> None:
    assert dissected["beacon"]["zbee_beacon.ext_panid"] == "00:db:12:34:56:78:90:ff"


def test_transport_key_decrypts_with_the_install_code_link_key(
    dissected: dict[str, dict[str, str]],
) -> None:
    assert dissected["transport key"]["zbee_aps.cmd.key"] == NETWORK_KEY.hex()


def test_nwk_payloads_decrypt(dissected: dict[str, dict[str, str]]) -> None:
    assert dissected["device announce"]["zbee_zdp.nwk_addr"] == "0x1234"
    assert dissected["request tunnel"]["zbee_zcl_se.tun.protocol_id"] == "0x06"
    assert dissected["request tunnel response"]["zbee_zcl_se.tun.tunnel_id"] == "0x0007"
    assert dissected["aps ack"]["zbee_aps.counter"] == "2"
    assert dissected["leave"]["zbee_nwk.cmd.id"] == "0x04"


def test_rejoin_is_unsecured_and_read(dissected: dict[str, dict[str, str]]) -> None:
    assert dissected["rejoin request"]["zbee_nwk.cmd.id"] == "0x06"
    assert dissected["rejoin response"]["zbee_nwk.cmd.id"] == "0x07"
    assert dissected["rejoin response"]["zbee_nwk.cmd.addr"] == "0x1234"


def test_gbcs_tunnel_and_reassembled_message(dissected: dict[str, dict[str, str]]) -> None:
    code = decode_message(gbcs_response())[0].header.message_code
    assert dissected["gbcs get"]["gbcs_tunnel.command"] == "0x01"
    blocks = [label for label in dissected if label.startswith("gbcs get-response")]
    assert len(blocks) >= 3
    last = dissected[blocks[-1]]
    assert last["zbee_aps.fragment.count"] == str(len(blocks))
    assert last["gbcs_tunnel.command"] == "0x02"
    assert int(last["gbcs_message.grouping_header.message_code"], 0) == code == 0x00FE
    for label in blocks[:-1]:
        assert dissected[label]["gbcs_message.grouping_header.message_code"] == ""
    put = [label for label in dissected if label.startswith("gbcs put (aps-secured)")]
    assert len(put) >= 2
    assert dissected[put[-1]]["zbee_aps.fragment.count"] == str(len(put))
    assert dissected[put[-1]]["gbcs_tunnel.command"] == "0x03"
    put_code = decode_message(gbcs_command())[0].header.message_code
    assert int(dissected[put[-1]]["gbcs_message.grouping_header.message_code"], 0) == put_code


def test_wrong_network_key_hides_everything_above_nwk(
    capture: tuple[Path, list[str]],
) -> None:
    """Only a wrong network key is given: no link key either, since Wireshark would
    otherwise learn the real network key from the decrypted Transport Key."""
    path, labels = capture
    rows = dict(zip(labels, _dissect(path, {"wrong nwk": bytes(16)}), strict=True))
    secured = [
        "device announce",
        "request tunnel",
        "request tunnel response",
        "aps ack",
        "gbcs get",
        "leave",
    ]
    secured += [label for label in labels if label.startswith(("gbcs get-response", "gbcs put"))]
    readable = {
        label: rows[label]["zbee_aps.counter"] + rows[label]["zbee_nwk.cmd.id"] for label in secured
    }
    assert readable == dict.fromkeys(secured, "")
    assert rows["transport key"]["zbee_aps.cmd.key"] == ""
    # Unsecured layers are still read: the key, not the layout, is what hides the rest.
    assert rows["transport key"]["zbee_aps.counter"] == "1"
    assert rows["rejoin request"]["zbee_nwk.cmd.id"] == "0x06"


def test_gbcs_tunnel_needs_no_request_tunnel_in_the_capture(tmp_path: Path) -> None:
    get = next(step.psdu for step in han_steps() if step.label == "gbcs get")
    path = tmp_path / "get.pcap"
    path.write_bytes(pcap_file(LINKTYPE_IEEE802_15_4_WITHFCS, [(1_700_000_000, get)]))
    (row,) = _dissect(path, GOOD_KEYS)
    assert row["gbcs_tunnel.command"] == "0x01"
