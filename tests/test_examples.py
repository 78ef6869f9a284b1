"""The examples are real uses: each runs offline and prints what it promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout


def test_demo_lists_selects_and_routes() -> None:
    out = run_example("demo.py")
    lines = out.splitlines()
    assert "Discovered providers (from installed plugins):" in lines
    assert any(
        line.split()[:3] == ["CodeLinkAva", "not", "working"]
        and line.endswith("providerhub-codelinkava 0.1.0")
        for line in lines
    )
    assert "Hello, providerhub!" in lines
    trace = lines[lines.index("served by local-b; attempts:") + 1 :]
    assert trace[0] == "  CodeLinkAva: skipped (not working)"
    assert trace[1] == "  local-a: failed (HTTP 500: model crashed)"
    assert trace[2] == "  local-b: served"
    assert lines[lines.index("served by local-b; attempts:") - 1] == "Hello from the backup."


def test_chain_in_code_retries_the_local_endpoint_then_serves() -> None:
    out = run_example("chain_in_code.py")
    assert "Because one provider is never always up." in out
    assert "served by ollama; attempts:" in out
    trace = out.split("attempts:\n", 1)[1].splitlines()
    assert len(trace) == 2
    assert trace[0] == "  ollama: failed (HTTP 503: model is loading)"
    assert trace[1] == "  ollama: served"


def test_agent_loop_runs_the_local_function_and_answers() -> None:
    out = run_example("agent_loop.py")
    sections = out.split("\n\n")
    assert len(sections) == 3 and sections[2] == ""
    for section, served in zip(
        sections[:2], ("served by local; 51 tokens", "finish_reason stop; 51 tokens"), strict=True
    ):
        lines = section.splitlines()
        assert lines[1:] == [
            'model calls get_weather({"city": "Paris"})',
            "model says: It is 18 °C and sunny in Paris.",
            served,
            "the last request carried 3 messages: ['user', 'assistant', 'tool']",
        ]
