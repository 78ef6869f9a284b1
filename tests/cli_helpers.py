"""Running the `providerhub` command for real in a child process, and reading what it prints."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from providerhub.config import CONFIG_ENV
from providerhub.registry import STRICT_ENV

SCRIPT = str(Path(sys.executable).parent / "providerhub")
MODULE = [sys.executable, "-m", "providerhub"]
TRACE = re.compile(
    r"providerhub: attempt (?P<number>[\d.]+): (?P<provider>\w+): (?P<outcome>\w+)"
    r"(?: \((?P<reason>.*?)\))?"
    r"(?: \[first chunk (?P<first>-|\d+ ms), total (?P<total>\d+) ms(?P<flags>.*)\])?$"
)


def plugin_env(site: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of a child process that sees the plugins in `site`.

    No config file is found unless `extra` names one: the user's own must not leak in.
    """
    env = {key: value for key, value in os.environ.items() if key not in (STRICT_ENV, CONFIG_ENV)}
    env["XDG_CONFIG_HOME"] = "/nonexistent/providerhub-tests"
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def run(
    *args: str, env: dict[str, str] | None = None, stdin: str = "", module: bool = False
) -> subprocess.CompletedProcess[str]:
    command = MODULE if module else [SCRIPT]
    return subprocess.run(
        [*command, *args],
        env=env or plugin_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def _start_chat(
    args: tuple[str, ...], env: dict[str, str], **options: Any
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        SCRIPT, "chat", *args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **options
    )


async def chat(*args: str, env: dict[str, str], stdin: str = "") -> tuple[int, str, str]:
    """Run `providerhub chat ARGS` without blocking the loop that serves the fake upstream."""
    proc = await _start_chat(args, env, stdin=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def chat_until(printed: bytes, *args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    """Start `providerhub chat ARGS` and return it running once it has printed `printed`."""
    proc = await _start_chat(args, env, stdin=subprocess.DEVNULL, preexec_fn=default_sigint)
    assert proc.stdout is not None
    first = await asyncio.wait_for(proc.stdout.readuntil(printed), 30)
    assert first == printed
    return proc


async def interrupt(proc: asyncio.subprocess.Process) -> tuple[bytes, bytes]:
    """Ctrl-C: SIGINT, then the rest of stdout and all of stderr once the process has exited."""
    proc.send_signal(signal.SIGINT)
    return await asyncio.wait_for(proc.communicate(), 30)


def default_sigint() -> None:
    """Children get Python's KeyboardInterrupt even if this test run ignores SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def table(text: str) -> list[list[str]]:
    return [re.split(r" {2,}", line) for line in text.splitlines()]


def trace(stderr: str) -> list[dict[str, str | None]]:
    """The -v lines of stderr, parsed; every one must match the trace format."""
    lines = [line for line in stderr.splitlines() if line.startswith("providerhub: attempt ")]
    parsed = []
    for line in lines:
        match = TRACE.match(line)
        assert match, line
        parsed.append(match.groupdict())
    top = [str(item["number"]) for item in parsed if "." not in str(item["number"])]
    assert top == [str(number) for number in range(1, len(top) + 1)]
    return parsed


def outcomes(stderr: str) -> list[tuple[str | None, str | None, str | None]]:
    """(provider, outcome, reason) of each top-level attempt line."""
    return [
        (item["provider"], item["outcome"], item["reason"])
        for item in trace(stderr)
        if "." not in str(item["number"])
    ]
