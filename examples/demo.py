"""The main job, end to end and offline: discover providers, pick one by name, route a chain.

1. List the providers that installed plugins registered (entry points, no network).
2. Select CodeLinkAva by name and stream its answer.
3. Stream through a fallback chain: CodeLinkAva is skipped (marked not working), a local
   endpoint fails with HTTP 500, a second local endpoint serves; then print the attempt trace.

Every upstream here is a FakeUpstream on 127.0.0.1 speaking the real wire format (CodeLinkAva's
service is gone, which is why it is marked not working), so nothing leaves this machine.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import providerhub
from providerhub import FallbackChain, MemoryHealthStore
from providerhub.testing import FakeUpstream, Reply
from providerhub_openai import OpenAICompatible

QUESTION = [{"role": "user", "content": "Say hello to providerhub."}]


async def show(chunks: AsyncIterator[str]) -> None:
    async for chunk in chunks:
        sys.stdout.write(chunk)
        sys.stdout.flush()
    print()


async def main() -> None:
    registry = providerhub.Registry.discover()
    print("Discovered providers (from installed plugins):")
    for entry in registry.entries():
        provider = entry.provider
        state = "working" if provider.working else "not working"
        print(f"  {provider.name:<14} {state:<12} from {entry.plugin.source}")

    codelinkava = registry.get("codelinkava")
    async with (
        FakeUpstream(Reply.text("Hello", ", ", "providerhub", "!")) as ava,
        FakeUpstream(Reply.error(500, "model crashed")) as broken,
        FakeUpstream(Reply.text("Hello ", "from ", "the backup.")) as backup,
    ):
        codelinkava.api_url = f"{ava.url}/api/chat"  # type: ignore[attr-defined]
        print(f"\n1) {codelinkava.name} by name (a local fake of its API at {ava.url}):")
        await show(codelinkava.create_async_generator("gpt-3.5-turbo", QUESTION))

        chain = FallbackChain(
            [
                "CodeLinkAva",
                OpenAICompatible(name="local-a", base_url=f"{broken.url}/v1", default_model="m"),
                OpenAICompatible(name="local-b", base_url=f"{backup.url}/v1", default_model="m"),
            ],
            registry=registry,
            health=MemoryHealthStore(),
        )
        print("\n2) A fallback chain: CodeLinkAva -> local-a -> local-b")
        stream = chain.stream("", QUESTION)
        await show(stream)
        print(f"served by {stream.provider}; attempts:")
        for attempt in stream.attempts:
            print(f"  {attempt}")


if __name__ == "__main__":
    asyncio.run(main())
