"""The parked-streams bench runs end to end on a small count, so it cannot rot: both rows are
measured against a real upstream that stalls after its first chunk, and held to the target."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parent.parent / "bench" / "bench_parked.py"


def test_small_run_measures_both_rows_within_the_target() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--streams", "40", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = re.findall(r"^  (\S+) +heap +([\d.]+) KiB per stream", done.stdout, re.MULTILINE)
    assert [name for name, _ in rows] == ["OpenAICompatible", "FallbackChain"]
    assert all(1.0 < float(kib) <= 20.0 for _, kib in rows), rows
