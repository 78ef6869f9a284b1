"""The kit as a pytest plugin in someone else's project: plain pytest, no configuration, with
pytest-asyncio absent or in its default strict mode (this repository's own tests are in auto
mode)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SUITE = """
import json
import urllib.request

import aiohttp
import pytest
from providerhub.testing import Reply


async def test_async(fake_upstream):
    upstream = await fake_upstream(Reply.text("Hel", "lo"), wire="ndjson")
    async with aiohttp.ClientSession() as session:
        async with session.post(upstream.url + "/api/chat", json={}) as response:
            lines = (await response.read()).decode().splitlines()
    assert [json.loads(line)["message"]["content"] for line in lines] == ["Hel", "lo", ""]


def test_sync(fake_upstream):
    upstream = fake_upstream.serve(Reply.text("hi"), wire="anthropic")
    request = urllib.request.Request(upstream.url + "/v1/messages", data=b"{}")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.loads(response.read())["content"] == [{"type": "text", "text": "hi"}]


@pytest.mark.anyio
async def test_under_anyio(fake_upstream):
    assert (await fake_upstream()).port


async def test_a_failure_is_reported(fake_upstream):
    assert (await fake_upstream()).port == 0
"""


QUIET = ["-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:langsmith_plugin"]
"""Plugins of this environment that cost a second at start and play no part here."""


@pytest.mark.parametrize("options", [["-p", "no:asyncio"], []])
def test_a_project_without_configuration(tmp_path: Path, options: list[str]) -> None:
    (tmp_path / "test_plugin.py").write_text(SUITE)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *QUIET, *options],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith("1 failed, 3 passed"), result.stdout + result.stderr
    assert "test_plugin.py::test_a_failure_is_reported - assert " in result.stdout
