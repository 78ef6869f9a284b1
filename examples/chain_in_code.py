"""The chain of examples/providerhub.toml, built in code: local endpoint, hosted one, CodeLinkAva.

Offline by default: the "ollama" provider is pointed at a FakeUpstream on 127.0.0.1 that
stands in for Ollama's OpenAI-compatible /v1 API (its first answer is a 503, to show a retry),
so nothing leaves this machine. Run with
--real to use a real Ollama on 127.0.0.1:11434 instead. The hosted provider is skipped unless
OPENAI_API_KEY is set; CodeLinkAva is marked not working and always skipped.

    .venv/bin/python examples/chain_in_code.py [--real]
"""

from __future__ import annotations

import asyncio
import sys

from providerhub import AllProvidersFailedError, FallbackChain, Timeouts
from providerhub.testing import FakeUpstream, Reply
from providerhub_codelinkava import CodeLinkAva
from providerhub_openai import OpenAICompatible

QUESTION = [{"role": "user", "content": "In one sentence: why chain LLM providers?"}]
OLLAMA = "http://127.0.0.1:11434/v1"


def build_chain(local_url: str) -> FallbackChain:
    """The same chain as [chains.default] in examples/providerhub.toml."""
    ollama = OpenAICompatible(name="ollama", base_url=local_url, default_model="llama3.2")
    openai = OpenAICompatible(
        name="openai",
        base_url="https://api.openai.com/v1",
        api_key_env="OPENAI_API_KEY",
        models=["gpt-4o-mini", "gpt-4o"],
        default_model="gpt-4o-mini",
        supports_gpt_4=True,
    )
    return FallbackChain(
        [ollama, openai, CodeLinkAva],
        name="default",
        retries=1,
        timeouts=Timeouts(connect=3, first_chunk=30, idle=30, total=300),
    )


async def ask(chain: FallbackChain) -> None:
    stream = chain.stream("", QUESTION)  # "": each provider uses its default model
    async for chunk in stream:
        sys.stdout.write(chunk)
        sys.stdout.flush()
    print(f"\n\nserved by {stream.provider}; attempts:")
    for attempt in stream.attempts:
        print(f"  {attempt}")


async def main() -> None:
    if "--real" in sys.argv:
        try:
            await ask(build_chain(OLLAMA))
        except AllProvidersFailedError as exc:
            sys.exit(str(exc))
        return
    busy = Reply.error(503, "model is loading")  # the first request fails; retries=1 retries it
    reply = Reply.text("Because ", "one provider ", "is never always up.")
    async with FakeUpstream(busy, reply) as fake:
        print(f"(offline: a FakeUpstream at {fake.url}/v1 stands in for Ollama)\n")
        await ask(build_chain(f"{fake.url}/v1"))


if __name__ == "__main__":
    asyncio.run(main())
