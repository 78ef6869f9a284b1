"""Rich scripted answers of FakeUpstream: tool calls, refusals, logprobs and verbatim events,
streamed (exact deltas on the wire and over a socket) and non-streamed."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import openai
import pytest
from helpers import MakeUpstream
from providerhub.sse import SSEDecoder
from providerhub.testing import Reply, ToolCallScript

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
WEATHER = ("get_weather", '{"city": "Paris"}')
ROLE = {"role": "assistant"}


def datas(wire: bytes) -> list[str]:
    decoder = SSEDecoder()
    return [event.data for event in decoder.feed(wire) + decoder.flush()]


def chunks(wire: bytes) -> list[dict[str, Any]]:
    """The chunk events, checking the stream ends with exactly one `[DONE]`."""
    events = datas(wire)
    assert events[-1] == "[DONE]" and events.count("[DONE]") == 1
    return [json.loads(data) for data in events[:-1]]


def same(wire: bytes, other: bytes) -> bool:
    """Whether two streams carry the same events, `created` timestamps aside."""

    def events(wire: bytes) -> list[Any]:
        return [{**chunk, "created": 0} for chunk in chunks(wire)]

    return events(wire) == events(other)


def deltas(wire: bytes) -> list[dict[str, Any]]:
    return [chunk["choices"][0]["delta"] for chunk in chunks(wire) if chunk["choices"]]


def finish_reasons(wire: bytes) -> list[str | None]:
    return [chunk["choices"][0]["finish_reason"] for chunk in chunks(wire) if chunk["choices"]]


def first(index: int, call_id: str, name: str) -> dict[str, Any]:
    call = {"index": index, "id": call_id, "type": "function"}
    return {"tool_calls": [{**call, "function": {"name": name, "arguments": ""}}]}


def fragment(index: int, arguments: str) -> dict[str, Any]:
    return {"tool_calls": [{"index": index, "function": {"arguments": arguments}}]}


def assembled(wire: bytes) -> list[dict[str, Any]]:
    """The tool calls a client builds from the stream: merged by index, arguments joined."""
    calls: dict[int, dict[str, Any]] = {}
    for delta in deltas(wire):
        for call in delta.get("tool_calls", ()):
            if "id" in call:
                assert call["index"] not in calls
                calls[call["index"]] = {"id": call["id"], "type": call["type"]}
                calls[call["index"]]["function"] = dict(call["function"])
            else:
                calls[call["index"]]["function"]["arguments"] += call["function"]["arguments"]
    return [calls[index] for index in sorted(calls)]


async def post(url: str, body: dict[str, Any] = BODY) -> bytes:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/v1/chat/completions", json=body) as response,
    ):
        assert response.status == 200
        return await response.read()


async def answer(url: str) -> dict[str, Any]:
    """The non-streamed completion, checked to be a chat.completion for the request's model."""
    completion: dict[str, Any] = json.loads(await post(url, {**BODY, "stream": False}))
    assert (completion["object"], completion["model"]) == ("chat.completion", "m")
    return completion


def test_one_tool_call_in_four_character_fragments() -> None:
    wire = Reply.tool_call(WEATHER, fragment=4).wire()
    assert deltas(wire) == [
        ROLE,
        first(0, "call_0", "get_weather"),
        fragment(0, '{"ci'),
        fragment(0, 'ty":'),
        fragment(0, ' "Pa'),
        fragment(0, 'ris"'),
        fragment(0, "}"),
        {},
    ]
    assert finish_reasons(wire) == [None] * 7 + ["tool_calls"]
    assert "content" not in deltas(wire)[1]
    assert assembled(wire) == [
        {
            "id": "call_0",
            "type": "function",
            "function": {"name": WEATHER[0], "arguments": WEATHER[1]},
        }
    ]


def test_default_fragment_options_and_validation() -> None:
    reply = Reply.tool_call(ToolCallScript("f", "x" * 20, id="call_x"), finish_reason="stop")
    assert (reply.argument_fragment, reply.finish_reason, reply.chunks) == (8, "stop", ())
    assert [d["tool_calls"][0]["function"]["arguments"] for d in deltas(reply.wire())[2:-1]] == [
        "x" * 8,
        "x" * 8,
        "x" * 4,
    ]
    assert deltas(Reply.tool_call(("f", "")).wire()) == [ROLE, first(0, "call_0", "f"), {}]
    with pytest.raises(ValueError, match="argument_fragment must be at least 1"):
        Reply.tool_call(WEATHER, fragment=0)


TWO = (ToolCallScript("a", '{"x": 1}', id="call_abc"), ("b", '{"y": 22}'))
TWO_CALLS = [
    {"id": "call_abc", "type": "function", "function": {"name": "a", "arguments": '{"x": 1}'}},
    {"id": "call_1", "type": "function", "function": {"name": "b", "arguments": '{"y": 22}'}},
]


def test_parallel_calls_in_order_and_interleaved() -> None:
    in_order = Reply.tool_call(*TWO, fragment=4).wire()
    assert deltas(in_order) == [
        ROLE,
        first(0, "call_abc", "a"),
        fragment(0, '{"x"'),
        fragment(0, ": 1}"),
        first(1, "call_1", "b"),
        fragment(1, '{"y"'),
        fragment(1, ": 22"),
        fragment(1, "}"),
        {},
    ]
    interleaved = Reply.tool_call(*TWO, fragment=4, interleave_tool_calls=True).wire()
    assert deltas(interleaved) == [
        ROLE,
        first(0, "call_abc", "a"),
        first(1, "call_1", "b"),
        fragment(0, '{"x"'),
        fragment(1, '{"y"'),
        fragment(0, ": 1}"),
        fragment(1, ": 22"),
        fragment(1, "}"),
        {},
    ]
    assert assembled(in_order) == assembled(interleaved) == TWO_CALLS
    assert finish_reasons(interleaved)[-1] == "tool_calls"


async def test_faults_count_tool_call_deltas(fake_upstream: MakeUpstream) -> None:
    upstream = await fake_upstream(Reply.tool_call(WEATHER, fragment=4, close_after=2))
    seen = b""
    async with (
        aiohttp.ClientSession() as session,
        session.post(upstream.url + "/v1/chat/completions", json=BODY) as response,
    ):
        with pytest.raises(aiohttp.ClientPayloadError):
            while chunk := await response.content.readany():
                seen += chunk
    decoder = SSEDecoder()
    cut = [json.loads(event.data)["choices"][0]["delta"] for event in decoder.feed(seen)]
    assert cut == [ROLE, first(0, "call_0", "get_weather"), fragment(0, '{"ci')]


def test_text_comes_before_the_calls() -> None:
    wire = Reply.tool_call(("f", "{}"), text="Let me check.").wire()
    assert deltas(wire) == [
        ROLE,
        {"content": "Let me check."},
        first(0, "call_0", "f"),
        fragment(0, "{}"),
        {},
    ]


async def test_streamed_calls_assemble_to_the_non_streamed_message(
    fake_upstream: MakeUpstream,
) -> None:
    usage = {"prompt_tokens": 4, "completion_tokens": 9, "total_tokens": 13}
    replies = [
        Reply.tool_call(*TWO, fragment=3),
        Reply.tool_call(*TWO, fragment=3, interleave_tool_calls=True, text="Both:", usage=usage),
    ]
    for reply in replies:
        upstream = await fake_upstream(reply, reply)
        streamed = await post(upstream.url, {**BODY, "stream_options": {"include_usage": True}})
        assert same(streamed, reply.wire(BODY | {"stream_options": {"include_usage": True}}))
        assert {chunk["model"] for chunk in chunks(streamed)} == {"m"}
        choice = (await answer(upstream.url))["choices"][0]
        assert choice["finish_reason"] == "tool_calls"
        text = "Both:" if reply.chunks else None
        assert choice["message"] == {"role": "assistant", "content": text, "tool_calls": TWO_CALLS}
        assert assembled(streamed) == choice["message"]["tool_calls"]
    assert json.loads(datas(streamed)[-2]) == {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "model": "m",
        "choices": [],
        "usage": usage,
    }


async def test_refusal(fake_upstream: MakeUpstream) -> None:
    reply = Reply.refusal_text("I can't help with that.", argument_fragment=10)
    upstream = await fake_upstream(reply)
    wire = await post(upstream.url)
    assert same(wire, reply.wire(BODY))
    assert deltas(wire) == [
        ROLE,
        {"content": None, "refusal": "I can't he"},
        {"content": None, "refusal": "lp with th"},
        {"content": None, "refusal": "at."},
        {},
    ]
    assert finish_reasons(wire)[-1] == "stop"
    upstream.script(reply)
    choice = (await answer(upstream.url))["choices"][0]
    assert choice["message"] == {
        "role": "assistant",
        "content": None,
        "refusal": "I can't help with that.",
    }
    assert choice["finish_reason"] == "stop"


def entry(token: str, utf8: list[int]) -> dict[str, Any]:
    return {"token": token, "logprob": -0.5, "bytes": utf8, "top_logprobs": []}


async def test_logprobs_on_content_deltas(fake_upstream: MakeUpstream) -> None:
    reply = Reply.tool_call(("f", "{}"), text="Hé", logprobs=True)
    upstream = await fake_upstream(Reply.text("Hé", "llo", logprobs=True))
    wire = await post(upstream.url)
    choices = [chunk["choices"][0] for chunk in chunks(wire)]
    assert [choice.get("logprobs") for choice in choices] == [
        None,
        {"content": [entry("Hé", [72, 195, 169])]},
        {"content": [entry("llo", [108, 108, 111])]},
        None,
    ]
    assert "logprobs" not in choices[0] and "logprobs" not in choices[-1]
    assert ["logprobs" in c["choices"][0] for c in chunks(reply.wire())] == [
        False,
        True,
        False,
        False,
        False,
    ]
    assert "logprobs" not in chunks(Reply.text("a").wire())[1]["choices"][0]
    upstream.script(Reply.text("Hé", "llo", logprobs=True), Reply.text("Hé", "llo"))
    choice = (await answer(upstream.url))["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Héllo"}
    assert choice["logprobs"] == {
        "content": [entry("Hé", [72, 195, 169]), entry("llo", [108, 108, 111])]
    }
    assert "logprobs" not in (await answer(upstream.url))["choices"][0]


CONTENT = {"choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": None}]}
CUT = {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}


async def test_events_are_sent_verbatim(fake_upstream: MakeUpstream) -> None:
    reply = Reply.events(CONTENT, "{not json", CUT)
    expected = f"data: {json.dumps(CONTENT)}\n\ndata: {{not json\n\ndata: {json.dumps(CUT)}\n\n"
    assert reply.wire() == expected.encode()
    assert datas(reply.wire()) == [json.dumps(CONTENT), "{not json", json.dumps(CUT)]
    done_early = Reply.events("[DONE]", CONTENT, line_ending="\r\n", keepalive=True)
    keepalive = ": keep-alive\r\n\r\n"
    wire = f"{keepalive}data: [DONE]\r\n\r\n{keepalive}data: {json.dumps(CONTENT)}\r\n\r\n"
    assert done_early.wire() == wire.encode()
    upstream = await fake_upstream(Reply.events(CONTENT, "{not json", CUT, split=5), done_early)
    assert await post(upstream.url) == reply.wire()
    assert await post(upstream.url) == done_early.wire()
    upstream.script(reply)
    choice = (await answer(upstream.url))["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "a"}
    assert choice["finish_reason"] == "length"


async def test_events_replaying_a_stream_merge_to_its_completion(
    fake_upstream: MakeUpstream,
) -> None:
    for reply in (
        Reply.tool_call(*TWO, fragment=2, interleave_tool_calls=True, text="ok"),
        Reply.refusal_text("no thanks", argument_fragment=3),
    ):
        wire = reply.wire(BODY)
        replay = Reply.events(*datas(wire))
        assert replay.wire() == wire
        upstream = await fake_upstream(reply, replay)
        original, merged = await answer(upstream.url), await answer(upstream.url)
        assert merged["choices"] == original["choices"]


def sdk_call(call: Any) -> dict[str, Any]:
    function = {"name": call.function.name, "arguments": call.function.arguments}
    return {"id": call.id, "type": call.type, "function": function}


async def test_the_openai_sdk_reads_the_scripted_answers(fake_upstream: MakeUpstream) -> None:
    reply = Reply.tool_call(*TWO, fragment=3, interleave_tool_calls=True, text="Both:")
    upstream = await fake_upstream(reply, reply, Reply.refusal_text("no", argument_fragment=1))
    async with openai.AsyncOpenAI(base_url=upstream.url + "/v1", api_key="k") as client:
        async with client.beta.chat.completions.stream(model="m", messages=[]) as stream:
            streamed = await stream.get_final_completion()
        whole = await client.chat.completions.create(model="m", messages=[], stream=False)
        async with client.beta.chat.completions.stream(model="m", messages=[]) as stream:
            refused = await stream.get_final_completion()
    for completion in (streamed, whole):
        message = completion.choices[0].message
        assert completion.choices[0].finish_reason == "tool_calls"
        assert message.content == "Both:"
        assert [sdk_call(call) for call in message.tool_calls or ()] == TWO_CALLS
    assert refused.choices[0].message.refusal == "no"
    assert refused.choices[0].message.content is None
