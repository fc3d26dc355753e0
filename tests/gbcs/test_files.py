"""write_together: all the files or none, and never the previous ones lost."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from gbcs import files
from gbcs.files import write_together


def _listing(folder: Path) -> dict[str, bytes | str]:
    return {p.name: "folder" if p.is_dir() else p.read_bytes() for p in sorted(folder.iterdir())}


def test_writes_every_file_and_replaces_the_previous_ones(tmp_path: Path) -> None:
    (tmp_path / "a.pcap").write_bytes(b"old capture")
    write_together([(tmp_path / "a.pcap", b"new capture"), (tmp_path / "a.pcap.keys", b"k")])
    assert _listing(tmp_path) == {"a.pcap": b"new capture", "a.pcap.keys": b"k"}


def test_a_folder_in_the_way_keeps_the_previous_files(tmp_path: Path) -> None:
    """The triage case: report and capture done before, and the keys path a folder."""
    (tmp_path / "report.json").write_bytes(b"old report")
    (tmp_path / "han.pcap").write_bytes(b"old capture")
    (tmp_path / "han.pcap.keys").mkdir()
    before = _listing(tmp_path)
    with pytest.raises(IsADirectoryError, match=r"han\.pcap\.keys"):
        write_together(
            [
                (tmp_path / "report.json", b"new report"),
                (tmp_path / "han.pcap", b"new capture"),
                (tmp_path / "han.pcap.keys", b"keys"),
            ]
        )
    assert _listing(tmp_path) == before  # nothing lost, nothing staged left behind


def test_a_rename_failing_part_way_puts_the_previous_files_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "report.json").write_bytes(b"old report")
    (tmp_path / "junit.xml").write_bytes(b"old junit")
    before = _listing(tmp_path)
    real = os.replace
    placed: list[str] = []

    def replace(src: Any, dst: Any) -> None:
        if Path(src).read_bytes().startswith(b"new"):  # a new file going into place
            placed.append(Path(dst).name)
            if len(placed) == 2:  # the second cannot
                raise PermissionError(13, "Permission denied", str(dst))
        real(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)
    with pytest.raises(PermissionError):
        write_together(
            [
                (tmp_path / "report.json", b"new report"),
                (tmp_path / "junit.xml", b"new junit"),
                (tmp_path / "han.pcap", b"new capture"),
            ]
        )
    assert placed == ["report.json", "junit.xml"]
    assert _listing(tmp_path) == before


def _second_rename_fails(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    """os.replace, as write_together sees it, raising ``error`` on its second call."""
    real = os.replace
    calls = 0

    def replace(src: Any, dst: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise error
        real(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)


def test_a_failure_with_no_previous_files_leaves_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _second_rename_fails(monkeypatch, OSError(28, "No space left on device"))
    with pytest.raises(OSError, match="No space"):
        write_together([(tmp_path / "a", b"1"), (tmp_path / "b", b"2")])
    assert _listing(tmp_path) == {}


def test_a_reader_always_finds_the_old_file_or_the_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each file is replaced in one rename: at no step of a write is it missing."""
    finals = [tmp_path / "world.json", tmp_path / "report.json"]
    for final in finals:
        final.write_bytes(b"old")
    real = os.replace
    missing: list[str] = []

    def replace(src: Any, dst: Any) -> None:
        missing.extend(f.name for f in finals if not f.exists())
        real(src, dst)
        missing.extend(f.name for f in finals if not f.exists())

    monkeypatch.setattr(files.os, "replace", replace)
    write_together([(f, b"new") for f in finals])
    assert missing == []
    assert _listing(tmp_path) == {"report.json": b"new", "world.json": b"new"}


def test_an_interrupt_between_renames_puts_the_previous_files_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").write_bytes(b"old a")
    (tmp_path / "b").write_bytes(b"old b")
    before = _listing(tmp_path)
    _second_rename_fails(monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        write_together([(tmp_path / "a", b"new a"), (tmp_path / "b", b"new b")])
    assert _listing(tmp_path) == before
