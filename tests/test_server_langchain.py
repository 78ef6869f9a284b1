"""LangChain's `ChatOpenAI` (langchain-openai, in the dev extra) against the gateway: tools bound
from a pydantic model and from a function, the tool round trip (AIMessage.tool_calls, then a
ToolMessage back and the final text), with `ainvoke` and with `astream`, over real sockets.

Nothing here may leave the machine: a guard refuses any connection or DNS lookup that is not
loopback, so importing and invoking LangChain is proven to need no network (no tokenizer
download, no tracing).
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import pytest
from providerhub import MemoryHealthStore
from providerhub.testing import Reply
from pydantic import BaseModel, Field
from test_server_tools import KEY, USAGE, Ups, config_text, gateway

langchain_openai = pytest.importorskip("langchain_openai")
messages_module = pytest.importorskip("langchain_core.messages")
AIMessage = messages_module.AIMessage
AIMessageChunk = messages_module.AIMessageChunk
HumanMessage = messages_module.HumanMessage
ToolMessage = messages_module.ToolMessage

ARGUMENTS = '{"city": "Paris", "unit": "celsius"}'
LOCAL = ("127.0.0.1", "::1", "localhost")


class GetWeather(BaseModel):
    """The current weather in a city."""

    city: str = Field(description="the city")
    unit: str = Field(description="celsius or fahrenheit")


def get_time(tz: str) -> str:
    """The time now in a time zone.

    Args:
        tz: an IANA time zone name
    """
    return "14:05"


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Refuse every connection and name lookup that is not loopback; no tracing."""
    for name in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGSMITH_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    connect, lookup = socket.socket.connect, socket.getaddrinfo

    def guarded_connect(sock: socket.socket, address: Any) -> Any:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOCAL:
            raise AssertionError(f"network access to {address!r}")
        return connect(sock, address)

    def guarded_lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in (*LOCAL, None) and not str(host).startswith("127."):
            raise AssertionError(f"DNS lookup of {host!r}")
        return lookup(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_lookup)
    yield


@pytest.fixture
async def ups(fake_upstream: Any) -> Ups:
    return await fake_upstream(), await fake_upstream()


@pytest.fixture
async def http() -> AsyncIterator[Any]:
    """The HTTP client LangChain uses, closed after the test (its default one is cached for
    the whole process, which would leave pooled sockets open)."""
    client = openai.DefaultAsyncHttpxClient()
    yield client
    await client.aclose()


def chat(url: str, http: Any, model: str = "seeing", **options: Any) -> Any:
    return langchain_openai.ChatOpenAI(
        base_url=f"{url}/v1",
        api_key=KEY,
        model=model,
        max_retries=0,
        http_async_client=http,
        **options,
    )


def script(streamed: bool) -> list[Reply]:
    """Two parallel calls (one per bound tool), then the final answer."""
    return [
        Reply.tool_call(
            ("GetWeather", ARGUMENTS),
            ("get_time", '{"tz": "Europe/Paris"}'),
            fragment=5,
            interleave_tool_calls=streamed,
            usage=USAGE,
        ),
        Reply.text("18 °C and sunny", "; it is 14:05.", usage=USAGE),
    ]


EXPECTED = [
    {
        "name": "GetWeather",
        "args": {"city": "Paris", "unit": "celsius"},
        "id": "call_0",
        "type": "tool_call",
    },
    {"name": "get_time", "args": {"tz": "Europe/Paris"}, "id": "call_1", "type": "tool_call"},
]


async def collect(runnable: Any, messages: list[Any]) -> Any:
    """`astream` the answer and add its chunks up, as LangChain users do."""
    total = None
    async for piece in runnable.astream(messages):
        assert isinstance(piece, AIMessageChunk)
        total = piece if total is None else total + piece
    return total


@pytest.mark.parametrize("streamed", [False, True])
async def test_bind_tools_round_trip(ups: Ups, http: Any, streamed: bool) -> None:
    _, seeing = ups
    seeing.script(*script(streamed))
    async with gateway(config_text(*ups), MemoryHealthStore()) as url:
        bound = chat(url, http, stream_usage=True).bind_tools([GetWeather, get_time])
        history: list[Any] = [HumanMessage("Weather and time in Paris?")]
        ask = collect if streamed else _invoke
        called = await ask(bound, history)
        assert called.tool_calls == EXPECTED
        assert called.content == ""
        assert called.response_metadata["finish_reason"] == "tool_calls"
        assert called.usage_metadata["total_tokens"] == USAGE["total_tokens"]
        history += [
            called,
            ToolMessage('{"celsius": 18}', tool_call_id="call_0"),
            ToolMessage("14:05", tool_call_id="call_1"),
        ]
        final = await ask(bound, history)
    assert final.content == "18 °C and sunny; it is 14:05."
    assert final.tool_calls == []
    assert final.response_metadata["finish_reason"] == "stop"
    first, second = (request.json for request in seeing.requests)
    names = [tool["function"]["name"] for tool in first["tools"]]
    assert names == ["GetWeather", "get_time"]
    assert second["tools"] == first["tools"]
    assert second["messages"] == [
        {"role": "user", "content": "Weather and time in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "type": "function",
                    "id": "call_0",
                    "function": {"name": "GetWeather", "arguments": ARGUMENTS},
                },
                {
                    "type": "function",
                    "id": "call_1",
                    "function": {"name": "get_time", "arguments": '{"tz": "Europe/Paris"}'},
                },
            ],
        },
        {"role": "tool", "content": '{"celsius": 18}', "tool_call_id": "call_0"},
        {"role": "tool", "content": "14:05", "tool_call_id": "call_1"},
    ]


async def _invoke(runnable: Any, messages: list[Any]) -> Any:
    answer = await runnable.ainvoke(messages)
    assert isinstance(answer, AIMessage)
    return answer


async def test_with_structured_output_through_a_tool(ups: Ups, http: Any) -> None:
    _, seeing = ups
    seeing.script(Reply.tool_call(("GetWeather", ARGUMENTS), fragment=3))
    async with gateway(config_text(*ups), MemoryHealthStore()) as url:
        structured = chat(url, http).with_structured_output(GetWeather, method="function_calling")
        answer = await structured.ainvoke("Weather in Paris?")
    assert answer == GetWeather(city="Paris", unit="celsius")
    assert seeing.requests[0].json["tool_choice"]["function"]["name"] == "GetWeather"


async def test_gateway_errors_reach_langchain_as_openai_errors(ups: Ups, http: Any) -> None:
    blind, seeing = ups
    seeing.script(Reply.error(500, "model crashed"))
    async with gateway(config_text(blind, seeing), MemoryHealthStore()) as url:
        with pytest.raises(openai.InternalServerError, match="model crashed"):
            await chat(url, http).bind_tools([GetWeather]).ainvoke("Weather?")
        with pytest.raises(openai.BadRequestError, match="no provider of 'blinds' supports vision"):
            image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
            await chat(url, http, model="blinds").ainvoke([HumanMessage(content=[image])])
    assert blind.requests == []
