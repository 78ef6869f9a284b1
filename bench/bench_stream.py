"""Streaming throughput: CodeLinkAva through providerhub vs the seed's loop vs a raw reader.

providerhub runs twice: with the JSON decoder it picks (msgspec's when the `fast` extra is
installed) and with the standard library's (`providerhub.jsonload`).

The upstream is a FakeUpstream in a separate process on 127.0.0.1 serving a pre-rendered body
of N CodeLinkAva/OpenAI-style events, so only the client side is measured. Each round runs the
three readers once, in rotating order; the report gives per-reader medians and ratios to the
raw reader, all from this one run. Target (issue 2): providerhub at most 1.15x the raw reader.

    .venv/bin/python bench/bench_stream.py [--events 20000] [--rounds 7]
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from functools import partial

import aiohttp
from _common import RAW, Run, raw_read, streaming_main, timed
from providerhub import jsonload
from providerhub_codelinkava import CodeLinkAva

TARGET = 1.15
PROVIDERHUB = "providerhub (CodeLinkAva)"
MESSAGES = [{"role": "user", "content": "Say hello"}]
HEADERS = {
    "User-Agent": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/116.0.0.0 Safari/537.36"
    ),
    "Accept": "*/*",
    "Origin": CodeLinkAva.url,
    "Referer": f"{CodeLinkAva.url}/",
}
BODY = {"messages": MESSAGES, "temperature": 0.6, "stream": True}


async def providerhub_reader(url: str) -> int:
    """(a) The provider end to end: request, SSE decoding, JSON, the guard."""
    total = 0
    async for chunk in CodeLinkAva.create_async_generator("gpt-3.5-turbo", MESSAGES):
        total += len(chunk)
    return total


async def stdlib_reader(url: str) -> int:
    """(a') The same with the standard library's JSON decoder."""
    chosen = jsonload.loads
    jsonload.loads = jsonload.stdlib_loads
    try:
        return await providerhub_reader(url)
    finally:
        jsonload.loads = chosen


async def seed_reader(url: str) -> int:
    """(b) The seed's loop, as gpt4free's CodeLinkAva wrote it."""
    total = 0
    async with (
        aiohttp.ClientSession(headers=HEADERS) as session,
        session.post(url, json=BODY) as response,
    ):
        response.raise_for_status()
        async for raw in response.content:
            line = raw.decode()
            if line.startswith("data: "):
                if line.startswith("data: [DONE]"):
                    break
                chunk = json.loads(line[6:-1])
                content = chunk["choices"][0]["delta"].get("content")
                if content:
                    total += len(content)
    return total


async def raw_reader(url: str) -> int:
    """(c) The floor, with the same request as the seed."""
    return await raw_read(url, BODY, HEADERS)


READERS: dict[str, Callable[[str], Awaitable[int]]] = {
    PROVIDERHUB: providerhub_reader,
    "providerhub, stdlib json": stdlib_reader,
    "seed loop": seed_reader,
    RAW: raw_reader,
}


def runs(base: str, expected: int) -> dict[str, Run]:
    url = f"{base}/api/chat"
    CodeLinkAva.api_url = url
    return {name: timed(name, partial(read, url), expected) for name, read in READERS.items()}


if __name__ == "__main__":
    sys.exit(streaming_main(__doc__ or "", __file__, runs, 7, PROVIDERHUB, TARGET))
