"""An agent loop: the model asks for a local Python function, we run it and send the result back.

Offline: the model is a FakeUpstream on 127.0.0.1 that answers the first request with a
`get_weather` tool call and the second (which carries the tool result) with text. The loop
runs twice: once from Python through a FallbackChain, once through `providerhub serve` with the
official openai SDK (installed by the dev extra), exactly as any OpenAI client would.

    .venv/bin/python examples/agent_loop.py
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from providerhub import FallbackChain, Registry
from providerhub.server import create_app, start
from providerhub.testing import FakeUpstream, Reply
from providerhub_codelinkava import CodeLinkAva
from providerhub_openai import OpenAICompatible

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


def get_weather(city: str) -> dict[str, Any]:
    """The local function the model may call."""
    return {"city": city, "celsius": 18, "sky": "sunny"}


FUNCTIONS = {"get_weather": get_weather}


def run_tool(name: str, arguments: str) -> str:
    """Call the named local function with the model's JSON arguments; its result as JSON."""
    return json.dumps(FUNCTIONS[name](**json.loads(arguments)))


def script() -> list[Reply]:
    """What the fake model answers: a tool call, then the final text."""
    return [
        Reply.tool_call(("get_weather", '{"city": "Paris"}'), fragment=6, usage=USAGE),
        Reply.text("It is 18 °C and sunny in Paris.", usage=USAGE),
    ]


USAGE = {"prompt_tokens": 42, "completion_tokens": 9, "total_tokens": 51}


async def with_a_chain(base_url: str) -> None:
    """The loop from Python: `stream.message()` is the assistant turn, ready for the history."""
    model = OpenAICompatible(name="local", base_url=base_url, default_model="fake-model")
    chain = FallbackChain([CodeLinkAva, model])  # CodeLinkAva: not working, and has no tools
    messages: list[dict[str, Any]] = [{"role": "user", "content": "What's the weather in Paris?"}]
    while True:
        stream = chain.stream("", messages, tools=TOOLS)
        reply = await stream.message()
        messages.append(dict(reply))
        for call in reply.get("tool_calls") or []:
            function = call["function"]
            print(f"model calls {function['name']}({function['arguments']})")
            result = run_tool(function["name"], function["arguments"])
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": result})
        if not reply.get("tool_calls"):
            print(f"model says: {reply['content']}")
            usage = stream.usage["total_tokens"] if stream.usage else None
            print(f"served by {stream.provider}; {usage} tokens")
            return


async def with_the_gateway(base_url: str) -> None:
    """The same loop through `providerhub serve`, with the official openai SDK."""
    from openai import AsyncOpenAI

    registry = Registry()
    registry.register(OpenAICompatible(name="local", base_url=base_url, default_model="fake-model"))
    runner, url = await start(create_app(registry))
    try:
        async with AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as client:
            messages: list[Any] = [{"role": "user", "content": "What's the weather in Paris?"}]
            while True:
                answer = await client.chat.completions.create(
                    model="local", messages=messages, tools=TOOLS
                )
                message = answer.choices[0].message
                messages.append(message.model_dump(exclude_none=True))
                for call in message.tool_calls or []:
                    function = call.function
                    print(f"model calls {function.name}({function.arguments})")
                    result = run_tool(function.name, function.arguments)
                    messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
                if not message.tool_calls:
                    print(f"model says: {message.content}")
                    usage = answer.usage.total_tokens if answer.usage else None
                    print(f"finish_reason {answer.choices[0].finish_reason}; {usage} tokens")
                    return
    finally:
        await runner.cleanup()


async def main() -> None:
    for title, loop in (("From Python", with_a_chain), ("Through the gateway", with_the_gateway)):
        async with FakeUpstream(*script()) as fake:
            print(f"{title} (a FakeUpstream at {fake.url}/v1 stands in for the model):")
            await loop(f"{fake.url}/v1")
            sent = fake.requests[-1].json["messages"]
            print(f"the last request carried {len(sent)} messages: {[m['role'] for m in sent]}\n")


if __name__ == "__main__":
    asyncio.run(main())
