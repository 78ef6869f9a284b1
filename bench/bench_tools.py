"""Tool-call streaming: OpenAICompatible's events vs a raw reader, on one long tool call.

The upstream (a child process, loopback) serves a pre-rendered OpenAI stream of one tool call
whose arguments arrive in N two-character fragments, as a model writing a long JSON argument
sends them. Readers: providerhub `OpenAICompatible.stream().events()` with the calls assembled
(`stream.tool_calls`), the raw floor (iter_chunked, split, json.loads, arguments concatenated),
and the openai SDK's stream with its own accumulation when importable. Target: providerhub at
most 1.15x the raw reader, as for text (issue 7).

    .venv/bin/python bench/bench_tools.py [--events 20000] [--rounds 5]
"""

from __future__ import annotations

import json
import sys
from functools import partial
from typing import Any

import aiohttp
from _common import RAW, Run, streaming_main, timed
from providerhub.testing import Reply
from providerhub_openai import OpenAICompatible

TARGET = 1.15
PROVIDERHUB = "providerhub OpenAICompatible events"
MESSAGES = [{"role": "user", "content": "Call the tool"}]
TOOLS = [{"type": "function", "function": {"name": "save", "parameters": {"type": "object"}}}]
MODEL = "fake-model"


def tool_reply(events: int) -> Reply:
    """One call whose arguments come in `events` two-character fragments."""
    arguments = "".join(f"t{index % 10}" for index in range(events))
    return Reply.raw_bytes(Reply.tool_call(("save", arguments), fragment=2).wire())


async def providerhub_read(provider: OpenAICompatible) -> int:
    stream = provider.stream(MODEL, MESSAGES, tools=TOOLS)
    async for _ in stream.events():
        pass
    [call] = stream.tool_calls
    return len(call["function"]["arguments"])


async def raw_read(url: str) -> int:
    """The floor: 64 KiB reads, split on newlines, `json.loads`, arguments joined per index."""
    body = {"model": MODEL, "messages": MESSAGES, "tools": TOOLS, "stream": True}
    arguments: dict[int, list[str]] = {}
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        buffer = b""
        async for piece in response.content.iter_chunked(65536):
            lines = (buffer + piece).split(b"\n")
            buffer = lines.pop()
            for line in lines:
                if line.startswith(b"data: "):
                    if line == b"data: [DONE]":
                        return sum(len("".join(parts)) for parts in arguments.values())
                    choices = json.loads(line[6:])["choices"]
                    calls = choices[0]["delta"].get("tool_calls") if choices else None
                    for call in calls or ():
                        fragment = call["function"].get("arguments")
                        arguments.setdefault(call["index"], []).append(fragment)
    return 0


async def openai_read(client: Any) -> int:
    async with client.chat.completions.stream(
        model=MODEL, messages=MESSAGES, tools=TOOLS
    ) as stream:
        final = await stream.get_final_completion()
    return len(final.choices[0].message.tool_calls[0].function.arguments)


def runs(base: str, expected: int) -> dict[str, Run]:
    base_url = f"{base}/v1"
    provider = OpenAICompatible(name="bench", base_url=base_url)
    found = {
        PROVIDERHUB: timed(PROVIDERHUB, partial(providerhub_read, provider), expected),
        RAW: timed(RAW, partial(raw_read, f"{base_url}/chat/completions"), expected),
    }
    try:
        from openai import AsyncOpenAI  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        print("  (openai not installed here: its row is skipped)")
    else:
        client = AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0)
        name = "openai SDK stream + accumulation"
        found[name] = timed(name, partial(openai_read, client), expected)
    return found


if __name__ == "__main__":
    sys.exit(
        streaming_main(__doc__ or "", __file__, runs, 5, PROVIDERHUB, TARGET, reply=tool_reply)
    )
