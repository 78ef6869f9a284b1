"""Anthropic Messages streaming: providerhub's AnthropicProvider vs a raw reader vs the SDK.

The upstream (a FakeUpstream in a child process, loopback, so it does not share our GIL) serves
a pre-rendered Anthropic stream of N text deltas as named SSE events (`event:
content_block_delta` then its `data:` line, with message_start, ping, content_block_start/stop,
message_delta and message_stop around them); only the client side is measured. Each round
runs the two fast readers several times, alternating, then the SDK once; the report gives
per-reader medians and their ratios to the raw reader, all from this one run. Target:
AnthropicProvider at most 1.15x the raw reader.

Readers: AnthropicProvider end to end (request translation, SSE decoding, JSON, the guard);
the raw floor (iter_chunked, split on newlines, json.loads of each data line, text deltas
counted); and, when importable, the official `anthropic` SDK's AsyncAnthropic stream
(`messages.create(stream=True)`; it is a dev extra, else `pip install anthropic`).

    .venv/bin/python bench/bench_anthropic.py [--events 20000] [--rounds 5]
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from importlib.metadata import version
from typing import Any

import aiohttp
from _common import RAW, Run, rotated, streaming_main, timed
from providerhub.testing import Reply
from providerhub_anthropic import AnthropicProvider

TARGET = 1.15
PROVIDERHUB = "providerhub AnthropicProvider"
SDK = "anthropic SDK AsyncAnthropic"
MESSAGES = [{"role": "user", "content": "Say hello"}]
MODEL = "claude-bench"
KEY = "sk-ant-bench"
FAST = (PROVIDERHUB, RAW)
FAST_REPEAT = 5
Reader = Callable[[str], Awaitable[int]]


def anthropic_reply(events: int) -> Reply:
    """A pre-rendered Anthropic stream of `events` two-character text deltas in one block."""
    tokens = (f"t{index % 10}" for index in range(events))
    return Reply.raw_bytes(Reply.text(*tokens).wire({"stream": True}, "anthropic"))


def providerhub_reader() -> Reader:
    providers: dict[str, AnthropicProvider] = {}

    async def read(base_url: str) -> int:
        provider = providers.get(base_url)
        if provider is None:
            provider = providers[base_url] = AnthropicProvider(
                name="bench", base_url=base_url, api_key=KEY
            )
        total = 0
        async for chunk in provider.create_async_generator(MODEL, MESSAGES):
            total += len(chunk)
        return total

    return read


async def raw_read(base_url: str) -> int:
    """The floor: 64 KiB reads, split on newlines, `json.loads` of each data line."""
    body = {"model": MODEL, "max_tokens": 4096, "messages": MESSAGES, "stream": True}
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    total = 0
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base_url}/v1/messages", json=body, headers=headers) as response,
    ):
        response.raise_for_status()
        buffer = b""
        async for piece in response.content.iter_chunked(65536):
            lines = (buffer + piece).split(b"\n")
            buffer = lines.pop()
            for line in lines:
                if line.startswith(b"data: "):
                    payload = json.loads(line[6:])
                    kind = payload["type"]
                    if kind == "content_block_delta" and payload["delta"]["type"] == "text_delta":
                        total += len(payload["delta"]["text"])
                    elif kind == "message_stop":
                        return total
    return total


def sdk_reader() -> Reader | None:
    try:
        from anthropic import AsyncAnthropic  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        print("  (anthropic SDK not installed here, skipped; .venv/bin/pip install anthropic)")
        return None
    print(f"  (SDK: anthropic {version('anthropic')})")
    clients: dict[str, Any] = {}

    async def read(base_url: str) -> int:
        client = clients.get(base_url)
        if client is None:
            client = clients[base_url] = AsyncAnthropic(
                base_url=base_url, api_key=KEY, max_retries=0
            )
        total = 0
        events = await client.messages.create(
            model=MODEL, max_tokens=4096, messages=MESSAGES, stream=True
        )
        async for event in events:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                total += len(event.delta.text)
        return total

    return read


async def settle() -> None:
    """Let what a previous reader left behind (the SDK's tasks, garbage) finish untimed."""
    for _ in range(50):
        if not [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
            break
        await asyncio.sleep(0.01)
    gc.collect()
    await asyncio.sleep(0.05)


def schedule(names: list[str], _round: int) -> list[str]:
    """One round: FAST_REPEAT alternating runs of the two fast readers, then the SDK once."""
    fast = [name for name in names if name in FAST]
    return [name for repeat in range(FAST_REPEAT) for name in rotated(fast, repeat)] + [
        name for name in names if name not in FAST
    ]


def runs(base_url: str, expected: int) -> dict[str, Run]:
    readers: dict[str, Reader] = {PROVIDERHUB: providerhub_reader(), RAW: raw_read}
    sdk = sdk_reader()
    if sdk is not None:
        readers[SDK] = sdk
    return {
        name: timed(name, partial(read, base_url), expected, before=settle)
        for name, read in readers.items()
    }


if __name__ == "__main__":
    sys.exit(
        streaming_main(
            __doc__ or "",
            __file__,
            runs,
            5,
            PROVIDERHUB,
            TARGET,
            order=schedule,
            reply=anthropic_reply,
        )
    )
