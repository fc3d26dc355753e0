"""Shared fixtures: the RTDS reference corpus and its key store, when present."""

from __future__ import annotations

from pathlib import Path

import pytest

from gbcs.rtds import RtdsVector, find_rtds, load_corpus

REPO = Path(__file__).resolve().parents[1]
RTDS = find_rtds(REPO)
SKIP_REASON = (
    "../shared/rtds (RTDS 4.5.0 reference messages) is not beside the repository; "
    "set GBCS_RTDS to its path to run the reference-vector tests"
)

CORPUS: list[RtdsVector] = load_corpus(RTDS / "RTDS-4.5.0") if RTDS else []


def corpus_params() -> list:
    """Parametrize values over the corpus, or one skipped case when it is absent."""
    if not CORPUS:
        return [pytest.param(None, marks=pytest.mark.skip(reason=SKIP_REASON), id="no-rtds")]
    return [pytest.param(v, id=v.name.removesuffix("_GBCS.HEX")) for v in CORPUS]


@pytest.fixture(scope="session")
def rtds_root() -> Path:
    if RTDS is None:
        pytest.skip(SKIP_REASON)
    return RTDS


@pytest.fixture(scope="session")
def corpus() -> list[RtdsVector]:
    if not CORPUS:
        pytest.skip(SKIP_REASON)
    return CORPUS
