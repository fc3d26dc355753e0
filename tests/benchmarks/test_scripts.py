"""Every benchmark script still runs to its last line (tiny sizes: figures are not checked)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _last_line(script: str, *args: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_bench_throughput_runs(tmp_path: Path) -> None:
    line = _last_line("bench_throughput.py", "--meters", "6", "--per-premises", "2", cwd=tmp_path)
    assert re.fullmatch(
        r"bench_throughput meters=6 meters_per_min=\d+ crypto_share=0\.\d{3}", line
    ), line


def test_codec_corpus_runs(tmp_path: Path, rtds_root: Path) -> None:
    line = _last_line("codec_corpus.py", "--rtds", str(rtds_root), "--rounds", "1", cwd=tmp_path)
    assert re.fullmatch(r"codec_corpus msgs_per_s=\d+ ratio_to_crypto_floor=\d+\.\d+", line), line


def test_fleet_runs(tmp_path: Path) -> None:
    line = _last_line(
        "fleet.py",
        "--hans",
        "4",
        "--meters",
        "2",
        "--cycles",
        "2",
        "--per-step",
        "1",
        cwd=tmp_path,
    )
    assert line.startswith("fleet meters=8 joins_per_s="), line
    assert re.search(r"ratio_to_crypto_floor=\d+\.\d+$", line), line
