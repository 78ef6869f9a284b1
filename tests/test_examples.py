"""The examples are real uses: each runs offline and prints what it promises."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import openai
import pytest

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


async def test_serve_fakes_runs_the_gateway_until_ctrl_c() -> None:
    example = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / "serve_fakes.py"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert example.stdout is not None and example.stderr is not None
    try:
        lines = []
        while not lines or lines[-1] != "(Ctrl-C stops the gateway and the fakes)":
            line = await asyncio.wait_for(example.stdout.readline(), 60)
            assert line, "the example ended before it was ready"
            lines.append(line.decode().rstrip("\n"))
        fakes, command, serving, try_it, curl, sdk, _ = lines
        flaky, local = re.findall(r"http://127\.0\.0\.1:\d+", fakes)
        assert fakes == f"Fakes: flaky at {flaky} (HTTP 500), local at {local}"
        assert re.fullmatch(r"Gateway: providerhub serve --config \S+ --port 0", command)
        base_url = serving.split()[2]
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", base_url)
        assert serving == f"providerhub: serving {base_url} (OpenAI base_url; Ctrl-C stops)"
        assert try_it == "Try, from another terminal:"
        assert curl.startswith(f"  curl -s {base_url}/chat/completions ")
        assert f'OpenAI(base_url="{base_url}", api_key="unused")' in sdk

        hello = [{"role": "user", "content": "Hi"}]
        async with openai.AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0) as client:
            raw = await client.chat.completions.with_raw_response.create(
                model="fast", messages=hello
            )
            assert raw.headers["x-providerhub-route"] == "default > local"
            assert raw.parse().choices[0].message.content == "Hello from the local fake."
            stream = await client.chat.completions.create(model="fast", messages=hello, stream=True)
            chunks = [chunk.choices[0].delta.content async for chunk in stream if chunk.choices]
            assert "".join(filter(None, chunks)) == "Hello from the local fake."

        example.send_signal(signal.SIGINT)
        rest, err = await asyncio.wait_for(example.communicate(), 60)
    finally:
        if example.returncode is None:
            example.kill()
            await example.wait()
    assert example.returncode == 0, err.decode()
    assert rest == b""
    log = err.decode()
    access = [line.split(" INFO ", 1)[1] for line in log.splitlines() if "server INFO" in line]
    assert [line.rsplit(" ", 1)[0] for line in access] == [
        "POST /v1/chat/completions 200 provider=local"
    ] * 2
    assert "default: flaky: failed (HTTP 500: " in log and "Traceback" not in log
    for url in (flaky, local, base_url):  # the gateway and both fakes have stopped listening
        with pytest.raises(aiohttp.ClientConnectionError):
            async with aiohttp.ClientSession() as session, session.get(url):
                pass
