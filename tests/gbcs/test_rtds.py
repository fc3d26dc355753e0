"""Where the RTDS corpus is looked for: $GBCS_RTDS, else ../shared/rtds, nowhere else."""

from __future__ import annotations

from pathlib import Path

import pytest

from gbcs.rtds import find_rtds


def test_the_corpus_is_found_beside_the_repository_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GBCS_RTDS", raising=False)
    (tmp_path / "shared" / "rtds").mkdir(parents=True)
    beside = tmp_path / "main"
    deeper = tmp_path / "elsewhere" / "main"
    beside.mkdir()
    deeper.mkdir(parents=True)
    assert find_rtds(beside) == tmp_path / "shared" / "rtds"
    # A shared/ further up belongs to something else: it would hide a missing corpus.
    assert find_rtds(deeper) is None
    monkeypatch.chdir(beside)
    assert find_rtds() == tmp_path / "shared" / "rtds"


def test_gbcs_rtds_names_the_corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GBCS_RTDS", str(tmp_path))
    assert find_rtds(Path("/nowhere")) == tmp_path
    monkeypatch.setenv("GBCS_RTDS", str(tmp_path / "missing"))
    assert find_rtds(Path("/nowhere")) is None
