"""The gateway load bench's quick mode runs end to end (a real `providerhub serve`), so it
cannot rot: every stream exact, every row printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parent.parent / "bench" / "bench_gateway_load.py"


def test_quick_mode_runs_every_stream_exactly() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    rows = [
        (line[:4].strip(), line[5:19].strip(), line[20:42].strip())
        for line in lines
        if line.startswith(("   1 ", "  20 "))
    ]
    assert rows == [
        (level, shape, target)
        for level in ("1", "20")
        for shape in ("200 batched", "200 per write", "5 batched", "5 per write")
        for target in ("direct", "gateway", "aiohttp pass-through", "asyncio byte relay")
    ]
    assert "  ok   every stream exact: 0 errors" in lines
    for target in ("gateway", "aiohttp pass-through", "asyncio byte relay"):
        assert any(line.startswith(f"{target}: CPU per request 200 batched") for line in lines)
        assert any(line.startswith(f"{target}: CPU batched ") for line in lines)
