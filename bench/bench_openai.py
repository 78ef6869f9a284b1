"""OpenAI-compatible streaming: providerhub's OpenAICompatible vs a raw reader vs the SDKs.

The upstream is a FakeUpstream (serve_in_thread, in a child process so it does not share our
GIL) on 127.0.0.1 serving a pre-rendered OpenAI chat.completion.chunk stream of N events; only
the client side is measured. Each round runs the two fast readers several times, alternating,
then each SDK once; the report gives per-reader medians and their ratios to the raw reader,
all from this one run. Target (issue 4): OpenAICompatible at most 1.15x the raw reader.

Readers: OpenAICompatible end to end (request, SSE decoding, JSON, the guard); the raw floor
(iter_chunked, split on newlines, json.loads); and, when importable, the openai SDK's
AsyncOpenAI stream and LiteLLM's acompletion(stream=True). Neither SDK is a providerhub
dependency: run from a scratch venv that has them, with providerhub on PYTHONPATH:

    .venv/bin/python bench/bench_openai.py [--events 20000] [--rounds 5]
    python3 -m venv /tmp/phbench && /tmp/phbench/bin/pip install aiohttp pluggy \\
        importlib-metadata openai litellm
    PYTHONPATH=core:plugins/openai /tmp/phbench/bin/python bench/bench_openai.py
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from importlib.metadata import version
from typing import Any

from _common import RAW, Run, raw_read, rotated, streaming_main, timed
from providerhub_openai import OpenAICompatible

TARGET = 1.15
PROVIDERHUB = "providerhub OpenAICompatible"
MESSAGES = [{"role": "user", "content": "Say hello"}]
MODEL = "fake-model"
KEY = "sk-bench"
Reader = Callable[[str], Awaitable[int]]
FAST = (PROVIDERHUB, RAW)
FAST_REPEAT = 5
SDK_HINT = (
    "for the comparison: python3 -m venv /tmp/phbench && "
    "/tmp/phbench/bin/pip install aiohttp pluggy importlib-metadata openai litellm, then "
    "PYTHONPATH=core:plugins/openai /tmp/phbench/bin/python bench/bench_openai.py"
)


def providerhub_reader() -> Reader:
    provider: OpenAICompatible | None = None

    async def read(base_url: str) -> int:
        nonlocal provider
        if provider is None:
            provider = OpenAICompatible(name="bench", base_url=base_url, api_key=KEY)
        total = 0
        async for chunk in provider.create_async_generator(MODEL, MESSAGES):
            total += len(chunk)
        return total

    return read


def raw_reader() -> Reader:
    async def read(base_url: str) -> int:
        body = {"model": MODEL, "messages": MESSAGES, "stream": True}
        headers = {"Authorization": f"Bearer {KEY}"}
        return await raw_read(f"{base_url}/chat/completions", body, headers)

    return read


async def sdk_total(chunks: AsyncIterator[Any]) -> int:
    """Content characters in an SDK's stream of ChatCompletionChunk-like objects."""
    total = 0
    async for chunk in chunks:
        content = chunk.choices[0].delta.content if chunk.choices else None
        if content:
            total += len(content)
    return total


def openai_reader() -> Reader | None:
    try:
        from openai import AsyncOpenAI  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    clients: dict[str, Any] = {}

    async def read(base_url: str) -> int:
        client: Any = clients.get(base_url)
        if client is None:
            client = clients[base_url] = AsyncOpenAI(base_url=base_url, api_key=KEY, max_retries=0)
        return await sdk_total(
            await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        )

    return read


def litellm_reader() -> Reader | None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        import litellm  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    litellm.telemetry = False

    async def read(base_url: str) -> int:
        return await sdk_total(
            await litellm.acompletion(
                model=f"openai/{MODEL}",
                api_base=base_url,
                api_key=KEY,
                messages=MESSAGES,
                stream=True,
                max_retries=0,
            )
        )

    return read


def readers() -> dict[str, Reader]:
    """The two fast readers, and each SDK importable here; one line saying what is missing."""
    found: dict[str, Reader] = {PROVIDERHUB: providerhub_reader(), RAW: raw_reader()}
    missing, versions = [], []
    for name, distribution, make in (
        ("openai AsyncOpenAI", "openai", openai_reader),
        ("litellm acompletion", "litellm", litellm_reader),
    ):
        reader = make()
        if reader is None:
            missing.append(distribution)
        else:
            found[name] = reader
            versions.append(f"{distribution} {version(distribution)}")
    if missing:
        print(f"  ({' and '.join(missing)} not installed here, skipped; {SDK_HINT})")
    if versions:
        print(f"  (SDKs: {', '.join(versions)})")
    return found


async def settle() -> None:
    """Let work a previous reader left behind (SDK logging tasks, garbage) finish untimed."""
    for _ in range(50):
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if not pending:
            break
        await asyncio.sleep(0.01)
    gc.collect()
    await asyncio.sleep(0.05)


def schedule(names: list[str], _round: int) -> list[str]:
    """One round: FAST_REPEAT alternating runs of the two fast readers, then each SDK once.

    The fast pair gets more samples because a 50 ms stream is easily disturbed by other work
    on a 2-core machine; their medians are what the 1.15x budget is checked against.
    """
    fast = [name for name in names if name in FAST]
    slow = [name for name in names if name not in FAST]
    return [name for repeat in range(FAST_REPEAT) for name in rotated(fast, repeat)] + slow


def runs(base: str, expected: int) -> dict[str, Run]:
    base_url = f"{base}/v1"
    return {
        name: timed(name, partial(read, base_url), expected, before=settle)
        for name, read in readers().items()
    }


if __name__ == "__main__":
    sys.exit(streaming_main(__doc__ or "", __file__, runs, 5, PROVIDERHUB, TARGET, order=schedule))
