"""The ``gbcs-hil`` command line, run in-process and as a console script."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gbcs.cli import main
from gbcs.rtds import RtdsVector
from tests.conftest import RTDS


def run(
    argv: list[str],
    capsys: pytest.CaptureFixture[str],
    stdin: str = "",
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> tuple[int, str, str]:
    if monkeypatch is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_example_then_decode_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = tmp_path / "keys"
    code, out, _ = run(["example", "disconnect", "--keys", str(keys)], capsys)
    assert code == 0 and (keys / "90b3d51f30010000-ds.pem").exists()
    wire = out.strip()
    code, out, _ = run(
        ["decode", "--keystore", str(keys), "--json", "--roundtrip", "-"], capsys, wire, monkeypatch
    )
    assert code == 0
    result = json.loads(out)
    assert result["use_case"] == "CS02f-SECMP0013" and result["message_code"] == 0x7F00
    assert (result["mac"], result["signature"], result["roundtrip"]) == ("valid", "valid", True)
    assert result["cra_flag"] == "command" and result["payload_family"] == "asn1"
    assert result["originator"] == "90B3D51F30010000"
    assert result["target"] == "00DB1234567890A0"
    # Human form names the use case and the ASN.1 field.
    code, out, _ = run(["decode", "--keystore", str(keys), wire], capsys)
    assert code == 0 and "DisconnectFromHanCommand" in out and "deviceId" in out
    assert "MAC: valid   signature: valid" in out


def test_edit_and_encode_resigns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = tmp_path / "keys"
    _, out, _ = run(["example", "disconnect", "--keys", str(keys)], capsys)
    _, out, _ = run(["decode", "--json", out.strip()], capsys)
    obj = json.loads(out)
    obj["payload"]["value"]["deviceId"] = "00DB1234567890A1"
    obj["target"] = "00DB1234567890A1"
    obj["originator_counter"] += 1
    text = json.dumps(obj)
    # Without re-signing, the edited message no longer verifies...
    code, out, _ = run(["encode", "-"], capsys, text, monkeypatch)
    assert code == 0
    _, checked, _ = run(["decode", "--keystore", str(keys), "--json", out.strip()], capsys)
    assert json.loads(checked)["signature"] == "invalid"
    # ...with --resign it does.
    code, out, _ = run(
        ["encode", "--keystore", str(keys), "--resign", "-"], capsys, text, monkeypatch
    )
    assert code == 0
    _, checked, _ = run(["decode", "--keystore", str(keys), "--json", out.strip()], capsys)
    result = json.loads(checked)
    assert (result["mac"], result["signature"]) == ("valid", "valid")
    assert result["payload"]["value"]["deviceId"] == "00DB1234567890A1"
    code, _, err = run(["encode", "--resign", "-"], capsys, text, monkeypatch)
    assert code == 1 and "--keystore" in err
    # --sign on a MAC'd message recomputes the MAC that covers the new signature: it kept
    # the old one, which could not verify (audit 8, codec 4).
    code, out, _ = run(
        ["encode", "--keystore", str(keys), "--sign", "-"], capsys, text, monkeypatch
    )
    assert code == 0
    _, checked, _ = run(["decode", "--keystore", str(keys), "--json", out.strip()], capsys)
    assert (json.loads(checked)["mac"], json.loads(checked)["signature"]) == ("valid", "valid")


def test_a_payload_hex_edit_beside_a_tree_is_not_dropped_without_a_word(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tree wins (the documented way to edit), but a payload_hex that no longer
    matches it is named on stderr rather than silently unused (audit 8, codec 3)."""
    _, wire = _example(tmp_path, capsys)
    obj = _decoded_json(wire, capsys)
    code, out, err = _encode(obj, capsys, monkeypatch)
    assert (code, out.strip(), err) == (0, wire, "")  # untouched: nothing to say
    edited = {**obj, "payload_hex": obj["payload_hex"][:-2] + "00"}
    code, out, err = _encode(edited, capsys, monkeypatch)
    assert code == 0 and out.strip() == wire  # the tree's payload went out
    assert "warning: $.payload_hex differs from the encoded $.payload tree" in err
    code, out, err = _encode({**edited, "payload": None}, capsys, monkeypatch)
    assert code == 0 and err == "" and out.strip() != wire  # the hex, verbatim


def test_malformed_inputs_report_and_exit_nonzero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.hex"
    bad.write_text("DD0000000000008191")
    code, out, _ = run(["decode", "--json", f"@{bad}", "zz-not-hex"], capsys)
    assert code == 1
    first, second = (json.loads(line) for line in out.splitlines())
    assert first["file"] == str(bad)
    assert first["error"]["layer"] == "frame" and first["error"]["offset"] == 7
    assert "declares 145 bytes" in first["error"]["reason"]
    assert second["error"]["layer"] == "input"
    code, out, _ = run(["decode", f"@{bad}"], capsys)
    assert code == 1 and "error in frame (ciphered-service length) at offset 7" in out


def test_encode_rejects_bad_json(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(["encode", "-"], capsys, "{not json", monkeypatch)
    assert code == 2 and "not JSON" in err
    code, _, err = run(["encode", "-"], capsys, '{"cra_flag": "command"}', monkeypatch)
    assert code == 1 and "missing" in err


def test_encode_refuses_a_key_given_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first of two equal keys was dropped without a word (helper audit): the edit
    the user made may be the one lost."""
    _, wire = _example(tmp_path, capsys)
    text = json.dumps(_decoded_json(wire, capsys))
    counter = text.index('"originator_counter"')
    twice = text[:counter] + '"originator_counter": 5, ' + text[counter:]
    code, out, err = run(["encode", "-"], capsys, twice, monkeypatch)
    assert code == 2 and out == ""
    assert "key 'originator_counter' is given twice in one object" in err
    code, out, _ = run(["encode", "-"], capsys, text, monkeypatch)
    assert code == 0 and out.strip() == wire


@pytest.mark.parametrize(
    "text", ["[" * 100_000 + "]" * 100_000, '{"x": ' + "9" * 5000 + "}"], ids=["deep", "long"]
)
def test_encode_json_the_reader_cannot_take_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    """Nesting too deep (RecursionError) or an integer over 4,300 digits (ValueError)
    made encode print a traceback."""
    code, _, err = run(["encode", "-"], capsys, text, monkeypatch)
    assert code == 2 and "cannot be read as JSON" in err


def test_encode_mac_and_no_mac_together_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--no-mac silently won over --mac."""
    with pytest.raises(SystemExit) as exit_:
        main(["encode", "--mac", "--no-mac", "-"])
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_unknown_example(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["example", "nope"], capsys)
    assert code == 1 and "choose from" in err
    code, out, _ = run(["example", "--list"], capsys)
    assert code == 0 and "ccs07" in out


@pytest.mark.skipif(RTDS is None, reason="../shared/rtds is not present")
def test_decode_whole_reference_folder(
    capsys: pytest.CaptureFixture[str], corpus: list[RtdsVector]
) -> None:
    assert RTDS is not None
    code, out, _ = run(
        [
            "decode",
            "--keystore",
            str(RTDS / "keystore"),
            "--json",
            "--roundtrip",
            f"@{RTDS / 'RTDS-4.5.0'}",
        ],
        capsys,
    )
    assert code == 0
    results = [json.loads(line) for line in out.splitlines()]
    assert len(results) == len(corpus) == 766
    assert all(r["roundtrip"] for r in results)
    assert {r["mac"] for r in results} == {"valid", "absent", "no-key"}
    assert [r["file"] for r in results if r["mac"] == "no-key"] == [
        r["file"]
        for r in results
        if "PCS0" in r["file"] and "PRECOMMAND" not in r["file"] and r["mac"] != "absent"
    ]
    assert {r["signature"] for r in results} == {"valid", "absent"}


@pytest.mark.skipif(shutil.which("gbcs-hil") is None, reason="console script not installed")
def test_console_script_pipeline(tmp_path: Path) -> None:
    """Example and decode chained as a lab engineer pipes them."""
    keys = tmp_path / "demo-keys"
    result = subprocess.run(
        f"gbcs-hil example disconnect --keys {keys} | gbcs-hil decode --keystore {keys} -",
        shell=True,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "MAC: valid   signature: valid" in result.stdout


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full to write to")
@pytest.mark.parametrize("command", [["example", "disconnect"], ["dongles"]])
def test_an_output_that_cannot_be_written_is_said_so(command: list[str], tmp_path: Path) -> None:
    """A full disk behind a redirect (/dev/full): one line naming it and exit status 2,
    not a traceback (helper audit), nor a second complaint as the process exits."""
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, "-m", "gbcs", *command],
            cwd=tmp_path,  # example writes its keys here
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            timeout=120,
        )
    assert result.returncode == 2
    name = command[0]
    assert result.stderr == (f"gbcs-hil {name}: cannot write the output: No space left on device\n")


def test_a_closed_standard_output_is_no_error(tmp_path: Path) -> None:
    """Started with stdout closed (``>&-``), Python has no sys.stdout: flushing it
    raised AttributeError (helper review)."""
    result = subprocess.run(
        [sys.executable, "-m", "gbcs", "example", "--list"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
        timeout=120,
        preexec_fn=lambda: os.close(1),
    )
    assert (result.returncode, result.stderr) == (0, "")


def _stderr_on_a_read_only_file() -> None:
    """As a pyenv shim leaves it when started with ``2>&-``: its own script, read-only,
    on descriptor 2."""
    os.close(2)
    assert os.open(__file__, os.O_RDONLY) == 2


@pytest.mark.parametrize(
    "start", [lambda: os.close(2), _stderr_on_a_read_only_file], ids=["closed", "read-only"]
)
def test_a_standard_error_that_cannot_be_written_is_no_error(tmp_path: Path, start: Any) -> None:
    """The triage's progress lines went to it: a traceback, exit 1 (helper review)."""
    result = subprocess.run(
        [sys.executable, "-m", "gbcs", "triage", "--workdir", str(tmp_path / "run")],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
        timeout=300,
        preexec_fn=start,
    )
    assert result.returncode == 0 and "reports in" in result.stdout


def test_a_closed_standard_input_is_an_empty_one(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gbcs", "decode", "-"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        preexec_fn=lambda: os.close(0),
    )
    assert (result.returncode, result.stderr) == (1, "")
    assert "standard input: input is empty" in result.stdout


@pytest.mark.skipif(shutil.which("gbcs-hil") is None, reason="console script not installed")
def test_readme_main_job_command(tmp_path: Path) -> None:
    """The README's first command after the install: ``gbcs-hil triage``, as a process."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    first = next(line.strip() for line in readme.splitlines() if line.startswith("    pip install"))
    assert first == "pip install . && gbcs-hil triage"
    result = subprocess.run(
        ["gbcs-hil", "triage", "--quiet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAULTY" in result.stdout and result.stdout.count("PASS") == 5
    assert (tmp_path / "triage-run" / "report.json").is_file()


# --------------------------------------------------------------------------
# Bad input: a clear error and an exit code, never a traceback
# --------------------------------------------------------------------------

SUPPLIER = "90b3d51f30010000"  # signs the disconnect example


def _example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    keys = tmp_path / "keys"
    _, out, _ = run(["example", "disconnect", "--keys", str(keys)], capsys)
    return keys, out.strip()


def _p384_pem(private: bool) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP384R1())
    if private:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_encode_unreadable_input_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"x": "\xe9"}')
    for path, reason in (
        (tmp_path / "nonexist.json", "No such file"),
        (tmp_path, "directory"),
        (latin, "not UTF-8"),
    ):
        code, _, err = run(["encode", str(path)], capsys)
        assert code == 2 and str(path) in err and reason in err


@pytest.mark.parametrize("acb", ["XYZ", "0011", "00DB1234567890A0FF", "00DB1234567890AG"])
def test_acb_must_be_16_hex_digits(acb: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["decode", "--acb", acb, "00"])
    assert info.value.code == 2 and "EUI-64" in capsys.readouterr().err


def test_acb_accepts_colons(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys, wire = _example(tmp_path, capsys)
    acb = ":".join(["90", "B3", "D5", "1F", "30", "00", "00", "02"])
    code, out, _ = run(["decode", "--keystore", str(keys), "--acb", acb, "--json", wire], capsys)
    assert code == 0 and json.loads(out)["mac"] in ("valid", "invalid")


@pytest.mark.parametrize(
    ("code", "reason"),
    [("0x10000", "not a uint16"), ("-1", "not a uint16"), ("0x0013", "already"), ("x", "integer")],
)
def test_disconnect_code_is_a_usage_error(
    code: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["decode", f"--disconnect-code={code}", "00"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and reason in err and "Traceback" not in err


def test_example_keys_path_unusable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    existing = tmp_path / "file"
    existing.write_text("")
    for keys in (existing, existing / "sub"):
        code, out, err = run(["example", "--keys", str(keys)], capsys)
        assert code == 2 and out == "" and "cannot write keys" in err


def test_broken_key_file_fails_that_input_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys, wire = _example(tmp_path, capsys)
    msg = tmp_path / "msg.hex"
    msg.write_text(wire)
    (keys / f"{SUPPLIER}-ds.pem").write_text("garbage")
    code, out, _ = run(["decode", "--keystore", str(keys), "--json", f"@{msg}", "00"], capsys)
    assert code == 1
    first, second = (json.loads(line) for line in out.splitlines())
    assert first["file"] == str(msg) and first["error"]["layer"] == "keystore"
    assert f"{SUPPLIER}-ds.pem" in first["error"]["reason"]
    assert second["error"]["layer"] == "frame"  # the batch went on


def test_p384_keys_are_named_not_tracebacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    keys, wire = _example(tmp_path, capsys)
    _, text, _ = run(["decode", "--json", wire], capsys)
    (keys / f"{SUPPLIER}-ds.key").write_bytes(_p384_pem(private=True))
    code, _, err = run(
        ["encode", "--keystore", str(keys), "--resign", "-"], capsys, text, monkeypatch
    )
    assert code == 1 and f"{SUPPLIER}-ds.key" in err and "P-256" in err
    (keys / f"{SUPPLIER}-ds.key").unlink()  # a decode needs the public key only
    (keys / f"{SUPPLIER}-ds.pem").write_bytes(_p384_pem(private=False))
    code, out, _ = run(["decode", "--keystore", str(keys), "--json", wire], capsys)
    error = json.loads(out)["error"]
    assert code == 1 and f"{SUPPLIER}-ds.pem" in error["reason"] and "P-256" in error["reason"]


def test_input_errors_have_a_field(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["decode", "--json", "zz-not-hex"], capsys)
    error = json.loads(out)["error"]
    assert code == 1 and set(error) == {"layer", "field", "offset", "reason"}
    assert (error["layer"], error["field"]) == ("input", "input")


def test_hex_file_with_a_typo_names_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A text file that is not hex or base64 was taken as a binary message, so the error
    was about its ASCII bytes as a frame, not about the typo."""
    _, wire = _example(tmp_path, capsys)
    typo = tmp_path / "typo.hex"
    typo.write_text(wire[:10] + "O" + wire[11:])
    code, out, _ = run(["decode", "--json", f"@{typo}"], capsys)
    error = json.loads(out)["error"]
    assert code == 1 and error["layer"] == "input"
    assert error["reason"] == "input is not hexadecimal: 'O' at character 11 (1 non-hex character)"


def test_hex_file_with_utf8_bom_is_hex(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, wire = _example(tmp_path, capsys)
    bom = tmp_path / "bom.hex"
    bom.write_bytes(b"\xef\xbb\xbf" + wire.encode() + b"\r\n")
    code, out, _ = run(["decode", "--json", f"@{bom}"], capsys)
    assert code == 0 and json.loads(out)["use_case"] == "CS02f-SECMP0013"


def test_a_utf8_text_file_is_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A text file with one non-ASCII character (a no-break space from a PDF, an ellipsis)
    was taken as a binary message, and the error named its first ASCII byte as a frame
    tag (audit 9, readme M1): it is text, decoded as hex, or an input error naming it."""
    _, wire = _example(tmp_path, capsys)
    spaced = " ".join(wire[i : i + 2] for i in range(0, len(wire), 2))
    nbsp = tmp_path / "nbsp.hex"
    nbsp.write_text(spaced.replace(" ", "\u00a0", 1) + "\n", encoding="utf-8")
    code, out, _ = run(["decode", "--json", f"@{nbsp}"], capsys)
    assert code == 0 and json.loads(out)["use_case"] == "CS02f-SECMP0013"
    ellipsis = tmp_path / "ellipsis.hex"
    ellipsis.write_text(wire + "\u2026\n", encoding="utf-8")
    code, out, _ = run(["decode", "--json", f"@{ellipsis}"], capsys)
    error = json.loads(out)["error"]
    assert code == 1 and error["layer"] == "input" and "'\u2026'" in error["reason"]
    # A binary message is never UTF-8: it is still read as one.
    binary = tmp_path / "message.bin"
    binary.write_bytes(bytes.fromhex(wire))
    code, out, _ = run(["decode", "--json", f"@{binary}"], capsys)
    assert code == 0 and json.loads(out)["use_case"] == "CS02f-SECMP0013"


def test_an_empty_folder_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It printed nothing and exited 0, like a clean run (audit 9, readme L2)."""
    empty = tmp_path / "captures"
    (empty / "sub").mkdir(parents=True)
    code, out, _ = run(["decode", "--json", f"@{empty}"], capsys)
    error = json.loads(out)["error"]
    assert code == 1 and error["layer"] == "input"
    assert json.loads(out)["file"] == str(empty)
    assert error["reason"] == "no file below this folder"


def test_ten_byte_other_information_prints_no_counter(
    rtds_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The ECS200 alert's other-information names the load controller but no counter
    (CRIB 2.3); the human output said "(counter None)"."""
    vector = rtds_root / "RTDS-4.5.0" / "NA_ECS200" / "ECS200_NA_8F88_ALERT_GBCS.HEX"
    code, out, _ = run(["decode", f"@{vector}"], capsys)
    assert code == 0
    assert "  on behalf of 90B3D51F30010008\n" in out and "counter None" not in out


def test_supplementary_remote_party_counter_printed_when_present(
    rtds_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vector = rtds_root / "RTDS-4.5.0" / "4.14_GCS16b" / "GCS16b_4.14_URP_SUCCESS_COMMAND_GBCS.HEX"
    code, out, _ = run(["decode", f"@{vector}"], capsys)
    assert code == 0 and "  on behalf of 90B3D51F30030000 (counter 1100)\n" in out


def _decoded_json(wire: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, _ = run(["decode", "--json", wire], capsys)
    assert code == 0
    return dict(json.loads(out))


def _encode(
    obj: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *extra: str,
) -> tuple[int, str, str]:
    return run(["encode", *extra, "-"], capsys, json.dumps(obj), monkeypatch)


def test_encode_refuses_a_payload_tree_that_does_not_fit_the_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relabelling the message code or CRA flag encoded cleanly into a message the kit's
    own decoder refused (codec audit F7)."""
    _, wire = _example(tmp_path, capsys)
    obj = _decoded_json(wire, capsys)
    relabelled = {**obj, "message_code": 0x000E}
    relabelled["other_information"] = {**obj["other_information"], "message_code": 0x000E}
    code, out, err = _encode(relabelled, capsys, monkeypatch)
    assert code == 1 and out == ""
    assert "$.payload does not fit the header (message code 0x000E, command)" in err
    as_response = {**obj, "cra_flag": "response"}
    code, _, err = _encode(as_response, capsys, monkeypatch)
    assert code == 1 and "(message code 0x7F00, response): it would not decode" in err
    # payload_hex goes out verbatim: the way to build a mismatched message on purpose
    # (the names, left as they were, would contradict the new code: left out here).
    names = ("use_case", "use_case_name", "critical")
    raw = {k: v for k, v in relabelled.items() if k not in names}
    code, out, _ = _encode({**raw, "payload": None}, capsys, monkeypatch)
    assert code == 0 and obj["payload_hex"].upper() in out
    code, decoded, _ = run(["decode", "--json", out.strip()], capsys)
    assert code == 1 and json.loads(decoded)["error"]["layer"] == "asn1"


def test_encode_takes_the_disconnect_code_like_decode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, wire = _example(tmp_path, capsys)
    obj = _decoded_json(wire, capsys)
    moved = {**obj, "message_code": 0x7F01}
    moved["other_information"] = {**obj["other_information"], "message_code": 0x7F01}
    code, _, err = _encode(moved, capsys, monkeypatch)
    assert code == 1 and "does not fit the header (message code 0x7F01" in err
    code, out, _ = _encode(moved, capsys, monkeypatch, "--disconnect-code", "0x7F01")
    assert code == 0
    code, decoded, _ = run(["decode", "--disconnect-code", "0x7F01", "--json", out.strip()], capsys)
    assert code == 0 and json.loads(decoded)["payload"] == obj["payload"]


@pytest.mark.parametrize(
    ("key", "value"),
    [("use_case", "CS11"), ("use_case_name", "wrong name"), ("critical", False)],
)
def test_encode_refuses_names_the_message_code_does_not_have(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    key: str,
    value: Any,
) -> None:
    """Message-level names were not read: an edit of them encoded, exit 0, as if it had
    changed something (README audit)."""
    _, wire = _example(tmp_path, capsys)
    obj = _decoded_json(wire, capsys)
    code, out, err = _encode({**obj, key: value}, capsys, monkeypatch)
    assert code == 1 and out == ""
    assert f"$.{key} {value!r} is not message code 0x7F00's" in err
    # Left out, or as decode printed them, they are fine; check results are not read.
    code, out, _ = _encode({k: v for k, v in obj.items() if k != key}, capsys, monkeypatch)
    assert code == 0 and out.strip() == wire
    code, out, _ = _encode({**obj, "mac": "invalid", "signature": "absent"}, capsys, monkeypatch)
    assert code == 0 and out.strip() == wire


def test_mac_on_a_pre_command_asks_for_it_to_be_signed_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pre-command has no signature field for a MAC to cover: --mac alone is refused
    saying so (it named the frame rule instead); with --sign it becomes a command."""
    keys = tmp_path / "keys"
    _, out, _ = run(["example", "disconnect", "--keys", str(keys)], capsys)
    _, out, _ = run(["decode", "--json", out.strip()], capsys)
    pre = {**json.loads(out), "signature_bytes": None, "mac_bytes": None}
    text = json.dumps(pre)
    code, _, err = run(["encode", "--keystore", str(keys), "--mac", "-"], capsys, text, monkeypatch)
    assert code == 1
    assert err == (
        "gbcs-hil encode: --mac: a pre-command (no signature field) is not MAC'd; sign it "
        "into a command first (--sign --mac)\n"
    )
    code, out, _ = run(
        ["encode", "--keystore", str(keys), "--sign", "--mac", "-"], capsys, text, monkeypatch
    )
    assert code == 0
    _, checked, _ = run(["decode", "--keystore", str(keys), "--json", out.strip()], capsys)
    assert (json.loads(checked)["mac"], json.loads(checked)["signature"]) == ("valid", "valid")


def test_a_binary_message_on_standard_input_decodes_as_from_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``decode - < msg.bin`` said "neither hexadecimal nor base64" while ``@msg.bin``
    decoded the same bytes (helper audit)."""
    _, wire = _example(tmp_path, capsys)
    raw = bytes.fromhex(wire)
    (tmp_path / "msg.bin").write_bytes(raw)
    _, from_file, _ = run(["decode", "--json", f"@{tmp_path / 'msg.bin'}"], capsys)
    for given in (raw, wire.encode(), b"\xef\xbb\xbf" + wire.encode() + b"\n"):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(given)))
        code, out, err = run(["decode", "--json", "-"], capsys)
        assert (code, err) == (0, "")
        assert {**json.loads(out), "file": None} == {**json.loads(from_file), "file": None}
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"not a message")))
    code, out, _ = run(["decode", "-"], capsys)
    assert code == 1 and "standard input: " in out


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_folder_entry_that_is_no_file_is_reported_not_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A dangling link or a FIFO below a decoded folder was skipped without a word, and
    the run exited 0 (helper audit); a FIFO must not be read either (it would block)."""
    _, wire = _example(tmp_path, capsys)
    folder = tmp_path / "messages"
    folder.mkdir()
    (folder / "a.hex").write_text(wire)
    (folder / "b.hex").symlink_to(tmp_path / "gone.hex")
    os.mkfifo(folder / "c.fifo")
    code, out, _ = run(["decode", "--json", f"@{folder}"], capsys)
    assert code == 1
    results = [json.loads(line) for line in out.splitlines()]
    assert [r["file"] for r in results] == [str(folder / n) for n in ("a.hex", "b.hex", "c.fifo")]
    assert "error" not in results[0]
    assert [r["error"]["reason"] for r in results[1:]] == [
        "cannot read: a symbolic link to nothing",
        "cannot read: not a regular file",
    ]


def test_example_reads_its_seed_as_triage_and_emulate_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Decimal only, and any size, while the world's commands took 0x.. and stopped at
    64 bits (helper audit): the same seed is the same test PKI everywhere."""
    outs = [
        run(["example", "disconnect", "--keys", str(tmp_path / seed), "--seed", seed], capsys)
        for seed in ("0x11", "17", "0o21")
    ]
    assert outs[0][0] == 0 and outs[0] == outs[1] == outs[2]
    with pytest.raises(SystemExit) as stop:
        main(["example", "disconnect", "--keys", str(tmp_path / "big"), "--seed", str(2**64)])
    assert stop.value.code == 2
    assert "outside the signed 64-bit range" in capsys.readouterr().err
    assert not (tmp_path / "big").exists()
