"""OpenAICompatible beyond text: tool calls, refusals and logprobs, streamed and not, over real
sockets; the decoding path cut at arbitrary bytes; what the request carries; the config flags."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from config_helpers import OK_PROVIDER, build_error, load_written, plugins
from helpers import BOUND, MakeUpstream, pointing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from providerhub import (
    EmptyStreamError,
    MalformedStreamError,
    UnsupportedCapabilityError,
    UpstreamError,
)
from providerhub.chat_completions import parse_completion, parse_events
from providerhub.events import (
    Event,
    Logprobs,
    RefusalDelta,
    ToolCallDelta,
    ToolCalls,
    merge_logprobs,
)
from providerhub.sse import ServerSentEvent, SSEDecoder
from providerhub.testing import FakeUpstream, Reply, ToolCallScript
from providerhub_codelinkava import CodeLinkAva
from providerhub_openai import Completion, OpenAICompatible

MESSAGES = [{"role": "user", "content": "What is the weather in Paris, and the time?"}]
USAGE = {"prompt_tokens": 20, "completion_tokens": 11, "total_tokens": 31}
WEATHER = ("get_weather", '{"city": "Paris", "unit": "°C"}')
TIME = ("get_time", '{"tz": "Europe/Paris", "note": "✓ ünïcödé"}')
USAGE_PAYLOAD = {"stream_options": {"include_usage": True}}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


def endpoint(upstream: FakeUpstream, **options: Any) -> OpenAICompatible:
    options.setdefault("name", "local")
    return OpenAICompatible(base_url=upstream.url + "/v1", **options)


def expected(*calls: tuple[str, str] | ToolCallScript) -> list[dict[str, Any]]:
    """The tool calls FakeUpstream's answer makes, as a chat-completions message holds them."""
    scripts = [c if isinstance(c, ToolCallScript) else ToolCallScript(*c) for c in calls]
    return [
        {
            "id": script.id or f"call_{index}",
            "type": "function",
            "function": {"name": script.name, "arguments": script.arguments},
        }
        for index, script in enumerate(scripts)
    ]


async def events_of(stream: Any) -> list[Event]:
    async with asyncio.timeout(BOUND):
        return [event async for event in stream.events()]


def runs(indices: Sequence[int]) -> list[int]:
    """`indices` with runs of the same value collapsed."""
    return [index for n, index in enumerate(indices) if n == 0 or indices[n - 1] != index]


def wire_indices(wire: bytes) -> list[int]:
    """The tool-call index of every tool-call delta on the wire, in order."""
    decoder = SSEDecoder()
    indices = []
    for event in decoder.feed(wire) + decoder.flush():
        if event.data.startswith("{"):
            for choice in json.loads(event.data)["choices"]:
                indices += [call["index"] for call in choice["delta"].get("tool_calls", ())]
    return indices


# Streamed tool calls, over a socket, against the non-streamed answer.

THREE = (WEATHER, TIME, ("noop", "{}"))
TOOL_CASES = {
    # name: (calls, fragment, interleave, text, split)
    "one call": ((WEATHER,), 8, False, "", None),
    "one call, 1-char fragments, text, tiny reads": ((WEATHER,), 1, False, "Let me check. ", 7),
    "parallel, text": ((WEATHER, TIME), 4, False, "Let me check. ", None),
    "parallel interleaved, tiny reads": ((WEATHER, TIME), 4, True, "", 7),
    "parallel interleaved, 1-char fragments": ((WEATHER, TIME), 1, True, "", None),
    "three interleaved, text": (THREE, 3, True, "Checking: ", None),
    "three whole arguments, tiny reads": (THREE, 1000, False, "", 7),
    "parallel interleaved, text, odd reads": ((WEATHER, TIME), 2, True, "Hm. ", 13),
}


@pytest.mark.parametrize(
    ("calls", "fragment", "interleave", "text", "split"), TOOL_CASES.values(), ids=TOOL_CASES
)
async def test_streamed_tool_calls_equal_the_non_streamed_answer(
    fake_upstream: MakeUpstream,
    calls: tuple[tuple[str, str], ...],
    fragment: int,
    interleave: bool,
    text: str,
    split: int | None,
) -> None:
    def reply() -> Reply:
        return Reply.tool_call(
            *calls,
            text=text,
            fragment=fragment,
            interleave_tool_calls=interleave,
            usage=USAGE,
            split=split,
        )

    upstream = await fake_upstream(reply(), reply())
    provider = endpoint(upstream)

    streamed = provider.stream("m", MESSAGES)
    events = await events_of(streamed)
    whole = provider.stream("m", MESSAGES, stream=False)
    whole_events = await events_of(whole)

    assert streamed.tool_calls == whole.tool_calls == expected(*calls)
    assert (streamed.finish_reason, streamed.usage) == ("tool_calls", USAGE)
    assert (whole.finish_reason, whole.usage) == ("tool_calls", USAGE)
    deltas = [event for event in events if isinstance(event, ToolCallDelta)]
    texts = [event for event in events if isinstance(event, str)]
    assert len(deltas) + len(texts) == len(events), "only text and tool-call deltas"
    assert "".join(texts) == text
    if text:
        assert isinstance(events[0], str), "the text came first on the wire"
        assert all(isinstance(event, str) for event in events[: len(texts)])
    wire = reply().wire(USAGE_PAYLOAD)
    assert runs([d.index for d in deltas]) == runs(wire_indices(wire)), "deltas in wire order"
    for index, (name, arguments) in enumerate(calls):
        own = [d for d in deltas if d.index == index]
        assert (own[0].id, own[0].name, own[0].type) == (f"call_{index}", name, "function")
        assert all(d.id is None and d.name is None for d in own[1:])
        assert "".join(d.arguments for d in own) == arguments
    assert whole_events == [
        *([text] if text else []),
        *(
            ToolCallDelta(index, f"call_{index}", name, arguments)
            for index, (name, arguments) in enumerate(calls)
        ),
    ]
    assert [request.json["stream"] for request in upstream.requests] == [True, False]


async def test_message_of_a_tool_call_answer_is_ready_for_the_history(
    fake_upstream: MakeUpstream,
) -> None:
    upstream = await fake_upstream(
        Reply.tool_call(WEATHER, TIME, text="Checking. "), Reply.tool_call(WEATHER)
    )
    provider = endpoint(upstream)

    with_text = await provider.stream("m", MESSAGES).message()
    only_calls = await provider.stream("m", MESSAGES).message()

    assert with_text == {
        "role": "assistant",
        "content": "Checking. ",
        "tool_calls": expected(WEATHER, TIME),
    }
    assert only_calls == {"role": "assistant", "content": None, "tool_calls": expected(WEATHER)}


# The decoding path, cut at arbitrary bytes: SSEDecoder + parse_events, one batch per piece.


def decode(pieces: Sequence[bytes]) -> tuple[list[Event], Completion, Exception | None]:
    """Feed `pieces` through the real decoding path; the events, what the stream reported, and
    the error that stopped it (events before the error are kept, as the provider yields them)."""
    decoder = SSEDecoder()
    completion = Completion()
    out: list[Event] = []
    try:
        for piece in pieces:
            events = decoder.feed(piece)
            if events and parse_events(events, completion, "local", out):
                return out, completion, None
        events = decoder.flush()
        if events:
            parse_events(events, completion, "local", out)
    except UpstreamError as exc:
        return out, completion, exc
    return out, completion, None


def cut(wire: bytes, points: Sequence[int]) -> list[bytes]:
    bounds = [0, *sorted(set(points)), len(wire)]
    return [wire[start:end] for start, end in itertools.pairwise(bounds)]


def assembled(events: Sequence[Event]) -> list[dict[str, Any]]:
    calls = ToolCalls()
    for event in events:
        if isinstance(event, ToolCallDelta):
            calls.add(event)
    return [dict(call) for call in calls.result()]


def text_of(events: Sequence[Event]) -> str:
    return "".join(event for event in events if isinstance(event, str))


def raw_utf8(wire: bytes) -> bytes:
    """The same stream with its JSON written as raw UTF-8 (no \\u escapes), so cuts can fall
    inside a multi-byte character."""
    lines = []
    for line in wire.split(b"\n"):
        if line.startswith(b"data: {"):
            document = json.loads(line[len(b"data: ") :])
            line = b"data: " + json.dumps(document, ensure_ascii=False).encode()
        lines.append(line)
    return b"\n".join(lines)


def completion_body(text: str, calls: list[dict[str, Any]]) -> bytes:
    message = {"role": "assistant", "content": text or None, "tool_calls": calls}
    choice = {"index": 0, "message": message, "finish_reason": "tool_calls"}
    return json.dumps({"id": "c", "object": "chat.completion", "choices": [choice]}).encode()


NAMES = st.text(
    st.characters(categories=("L", "N"), include_characters="_-"), min_size=1, max_size=12
)
ARGUMENTS = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)


@st.composite
def tool_call_streams(draw: st.DrawFn) -> tuple[bytes, str, list[dict[str, Any]], list[int]]:
    calls = draw(st.lists(st.tuples(NAMES, ARGUMENTS), min_size=1, max_size=4))
    text = draw(st.text(st.characters(exclude_categories=["Cs"]), max_size=12))
    reply = Reply.tool_call(
        *calls,
        text=text,
        fragment=draw(st.integers(1, 12)),
        interleave_tool_calls=draw(st.booleans()),
        usage=USAGE,
    )
    wire = reply.wire(USAGE_PAYLOAD)
    if draw(st.booleans()):
        wire = raw_utf8(wire)
    points = draw(st.lists(st.integers(0, len(wire)), max_size=40))
    return wire, text, expected(*calls), points


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tool_call_streams())
def test_tool_calls_do_not_depend_on_how_the_bytes_were_cut(
    case: tuple[bytes, str, list[dict[str, Any]], list[int]],
) -> None:
    wire, text, calls, points = case

    events, completion, error = decode(cut(wire, points))
    whole, whole_completion, _ = decode([wire])
    not_streamed = parse_completion(completion_body(text, calls), Completion(), "local")

    assert error is None
    assert assembled(events) == assembled(whole) == assembled(not_streamed) == calls
    assert text_of(events) == text_of(whole) == text
    assert (completion.finish_reason, completion.usage) == ("tool_calls", USAGE)
    assert completion == whole_completion


SMALL_WIRE = raw_utf8(
    Reply.tool_call(("ƒ", '{"a": "é✓"}'), ("g", "[1]"), text="hé", fragment=3).wire()
)


def test_a_small_tool_call_stream_cut_at_every_byte() -> None:
    whole, whole_completion, _ = decode([SMALL_WIRE])
    calls = expected(("ƒ", '{"a": "é✓"}'), ("g", "[1]"))

    assert assembled(whole) == calls
    for position in range(len(SMALL_WIRE) + 1):
        events, completion, error = decode(cut(SMALL_WIRE, [position]))
        assert error is None, position
        assert assembled(events) == calls, position
        assert text_of(events) == "hé", position
        assert completion == whole_completion, position


@pytest.mark.parametrize("split", [1, 3, 7])
async def test_tool_call_stream_in_tiny_reads_over_a_socket(
    fake_upstream: MakeUpstream, split: int
) -> None:
    """FakeUpstream pauses a millisecond between pieces: a small wire keeps split=1 quick."""
    calls = (("ƒ", '{"a": "é✓"}'), ("g", "[1]"))
    reply = Reply.tool_call(*calls, text="hé", fragment=3, interleave_tool_calls=True, usage=USAGE)
    wire = raw_utf8(reply.wire(USAGE_PAYLOAD))
    upstream = await fake_upstream(Reply.raw_bytes(wire, split=split))
    stream = endpoint(upstream).stream("m", MESSAGES)

    async with asyncio.timeout(6 * BOUND):
        events = [event async for event in stream.events()]

    assert stream.tool_calls == expected(*calls)
    assert text_of(events) == "hé"
    assert (stream.finish_reason, stream.usage) == ("tool_calls", USAGE)


# A bad event after text: the consumer gets exactly the text before it, then the error, however
# the bytes were cut.


def chunk(content: str) -> str:
    """A content delta, with raw UTF-8 so cuts can fall inside characters."""
    choice = {"index": 0, "delta": {"content": content}}
    return json.dumps({"object": "chat.completion.chunk", "choices": [choice]}, ensure_ascii=False)


BEFORE = ("Hé", "llo, ", "wörld ✓")
BAD_REPLIES: dict[str, tuple[Reply, type[UpstreamError], str]] = {
    "malformed": (
        Reply.events(*map(chunk, BEFORE), "{not json", chunk("zz"), "[DONE]"),
        MalformedStreamError,
        "local: malformed event: '{not json'",
    ),
    "truncated json": (
        Reply.events(*map(chunk, BEFORE), '{"choices": [{"delta"', chunk("zz"), "[DONE]"),
        MalformedStreamError,
        """local: malformed event: '{"choices": [{"delta"'""",
    ),
    "wrong shape": (
        Reply.events(*map(chunk, BEFORE), '{"choices": [7]}', chunk("zz"), "[DONE]"),
        MalformedStreamError,
        "local: event is not a chat.completion.chunk: '{\"choices\": [7]}'",
    ),
    "error event": (
        Reply.events(
            *map(chunk, BEFORE),
            {"error": {"message": "model overloaded", "code": 503}},
            chunk("zz"),
            "[DONE]",
        ),
        UpstreamError,
        "local: error in stream: model overloaded",
    ),
}


@pytest.mark.parametrize(("reply", "error", "message"), BAD_REPLIES.values(), ids=BAD_REPLIES)
def test_bad_event_after_text_same_outcome_for_every_cut(
    reply: Reply, error: type[UpstreamError], message: str
) -> None:
    wire = reply.wire()
    for position in range(len(wire) + 1):
        events, _, raised = decode(cut(wire, [position]))
        assert text_of(events) == "".join(BEFORE), position
        assert type(raised) is error, position
        assert str(raised) == message
    for points in ([3, 9, 40, 41, 77], list(range(0, len(wire), 5))):
        events, _, raised = decode(cut(wire, points))
        assert (text_of(events), type(raised)) == ("".join(BEFORE), error)


async def received_before(stream: Any, error: type[Exception]) -> tuple[str, Exception]:
    """The text a consumer received before the stream raised `error`, which it must."""
    seen: list[str] = []
    with pytest.raises(error) as caught:
        async with asyncio.timeout(BOUND):
            async for piece in stream:
                seen.append(piece)
    return "".join(seen), caught.value


SOCKET_SPLITS = [None, 1, 2, 3, 5, 7, 13]


@pytest.mark.parametrize(("reply", "error", "message"), BAD_REPLIES.values(), ids=BAD_REPLIES)
@pytest.mark.parametrize("split", SOCKET_SPLITS)
async def test_bad_event_after_text_same_outcome_over_a_socket(
    fake_upstream: MakeUpstream,
    reply: Reply,
    error: type[UpstreamError],
    message: str,
    split: int | None,
) -> None:
    upstream = await fake_upstream(Reply.raw_bytes(reply.wire(), split=split))

    text, raised = await received_before(endpoint(upstream).stream("m", MESSAGES), error)

    assert text == "".join(BEFORE)
    assert type(raised) is error
    assert str(raised) == message


CODELINKAVA_BAD = {
    "malformed": (
        Reply.events(*map(chunk, BEFORE), "{not json", chunk("zz"), "[DONE]"),
        MalformedStreamError,
        "CodeLinkAva: malformed event: '{not json'",
    ),
    "error event": (
        Reply.events(*map(chunk, BEFORE), {"error": {"message": "overloaded"}}, "[DONE]"),
        UpstreamError,
        "CodeLinkAva: error in stream: overloaded",
    ),
}


@pytest.mark.parametrize(
    ("reply", "error", "message"), CODELINKAVA_BAD.values(), ids=CODELINKAVA_BAD
)
@pytest.mark.parametrize("split", SOCKET_SPLITS)
async def test_codelinkava_bad_event_after_text_same_outcome_for_every_split(
    fake_upstream: MakeUpstream,
    monkeypatch: pytest.MonkeyPatch,
    reply: Reply,
    error: type[UpstreamError],
    message: str,
    split: int | None,
) -> None:
    upstream = await fake_upstream(Reply.raw_bytes(reply.wire(), split=split))
    ava = pointing(monkeypatch, CodeLinkAva)(upstream)

    text, raised = await received_before(ava.create_async_generator("", MESSAGES), error)

    assert text == "".join(BEFORE)
    assert type(raised) is error
    assert str(raised) == message


@pytest.mark.parametrize("which", ["openai", "codelinkava"])
async def test_line_oriented_bad_line_keeps_the_text_before_it(
    fake_upstream: MakeUpstream, monkeypatch: pytest.MonkeyPatch, which: str
) -> None:
    """Without blank lines the whole stream is one event; its lines before the bad one count."""
    body = "".join(f"data: {line}\n" for line in (*map(chunk, BEFORE), "{bad", "[DONE]"))
    upstream = await fake_upstream(Reply.raw_bytes(body.encode(), split=4))
    if which == "openai":
        stream: Any = endpoint(upstream).stream("m", MESSAGES)
    else:
        stream = pointing(monkeypatch, CodeLinkAva)(upstream).create_async_generator("", MESSAGES)

    text, raised = await received_before(stream, MalformedStreamError)

    assert text == "".join(BEFORE)
    assert str(raised).endswith("malformed event: '{bad'")


@pytest.mark.parametrize(
    "delta",
    [
        {"content": 5},
        {"content": ["a"]},
        {"refusal": {"text": "no"}},
        {"tool_calls": [{"index": 0, "id": 7, "function": {"name": "f", "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "id": "c", "function": {"name": ["f"], "arguments": ""}}]},
        {"tool_calls": [{"index": "0", "id": "c", "function": {"name": "f"}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": {"a": 1}}}]},
    ],
)
def test_a_delta_of_the_wrong_types_is_malformed_after_the_text_before_it(
    delta: dict[str, Any],
) -> None:
    bad = json.dumps({"choices": [{"index": 0, "delta": delta}]})
    events = [ServerSentEvent(chunk("ok")), ServerSentEvent(bad)]
    out: list[Event] = []

    with pytest.raises(MalformedStreamError, match=r"not a chat\.completion\.chunk"):
        parse_events(events, Completion(), "local", out)

    assert out == ["ok"]


@pytest.mark.parametrize(
    "chunk_json",
    ['{"choices": [{"delta": {}, "finish_reason": 3}]}', '{"choices": [], "usage": [1]}'],
)
def test_finish_reason_and_usage_of_the_wrong_type_are_malformed(chunk_json: str) -> None:
    with pytest.raises(MalformedStreamError):
        parse_events([ServerSentEvent(chunk_json)], Completion(), "local", [])


# What the request carries: everything as given.

HISTORY: list[dict[str, Any]] = [
    {"role": "system", "content": [{"type": "text", "text": "You are terse."}]},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in this picture, and the weather there?"},
            {
                "type": "image_url",
                "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"},
            },
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            {"type": "file", "file": {"file_id": "file-1", "filename": "notes.pdf"}},
        ],
    },
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
    {"role": "assistant", "content": [{"type": "refusal", "refusal": "Not that."}]},
    {"role": "user", "content": "Thanks", "name": "ann"},
]
PARAMETERS: dict[str, Any] = {
    "tools": TOOLS,
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    "parallel_tool_calls": False,
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": True},
    },
    "temperature": 0,
}


async def test_request_carries_tools_parts_and_history_exactly(
    fake_upstream: MakeUpstream,
) -> None:
    upstream = await fake_upstream(Reply.tool_call(WEATHER), Reply.tool_call(WEATHER))
    provider = endpoint(upstream)
    given = json.loads(json.dumps(HISTORY))

    streamed = provider.stream("gpt-4o", given, **PARAMETERS)
    await streamed.text()
    whole = provider.stream("gpt-4o", given, stream=False, **PARAMETERS)
    await whole.text()

    assert given == HISTORY, "the caller's messages are not modified"
    first, second = (request.json for request in upstream.requests)
    assert first == {
        "model": "gpt-4o",
        "messages": HISTORY,
        "stream": True,
        **PARAMETERS,
        "stream_options": {"include_usage": True},
    }
    assert second == {"model": "gpt-4o", "messages": HISTORY, "stream": False, **PARAMETERS}


async def test_non_streamed_request_never_carries_stream_options(
    fake_upstream: MakeUpstream,
) -> None:
    """OpenAI answers 400 to `stream_options` without `stream: true`; a chain passes the same
    options to a streaming member and to one configured with supports_stream = false."""
    upstream = await fake_upstream(Reply.text("a", usage=USAGE), Reply.text("b", usage=USAGE))
    options = {"stream_options": {"include_usage": True}}

    explicit = endpoint(upstream).stream("m", MESSAGES, stream=False, **options)
    assert await explicit.text() == "a"
    configured = endpoint(upstream, supports_stream=False).stream("m", MESSAGES, **options)
    assert await configured.text() == "b"

    assert [r.json.get("stream_options", "absent") for r in upstream.requests] == ["absent"] * 2
    assert explicit.usage == configured.usage == USAGE


# Refusals, logprobs, and what counts as an empty answer.


@pytest.mark.parametrize("stream", [True, False])
async def test_refusal_alone_is_an_answer(fake_upstream: MakeUpstream, stream: bool) -> None:
    refusal = "I can't help with that request, sorry."
    upstream = await fake_upstream(Reply.refusal_text(refusal, argument_fragment=6, split=5))
    answer = endpoint(upstream).stream("m", MESSAGES, stream=stream)

    events = await events_of(answer)

    assert all(isinstance(event, RefusalDelta) for event in events)
    assert "".join(event.text for event in events if isinstance(event, RefusalDelta)) == refusal
    assert answer.refusal == refusal
    assert answer.tool_calls == []
    assert await answer.message() == {"role": "assistant", "content": None, "refusal": refusal}


@pytest.mark.parametrize("stream", [True, False])
async def test_tool_calls_alone_are_an_answer(fake_upstream: MakeUpstream, stream: bool) -> None:
    upstream = await fake_upstream(Reply.tool_call(WEATHER))
    answer = endpoint(upstream).stream("m", MESSAGES, stream=stream)

    assert await answer.text() == ""
    assert answer.tool_calls == expected(WEATHER)


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize(
    "reply",
    [Reply.empty(), Reply.text(), Reply.text("", "")],
    ids=["done only", "no text", "empty"],
)
async def test_truly_empty_answer_is_still_empty(
    fake_upstream: MakeUpstream, stream: bool, reply: Reply
) -> None:
    upstream = await fake_upstream(reply)

    with pytest.raises(EmptyStreamError):
        await endpoint(upstream).stream("m", MESSAGES, stream=stream).text()


async def test_logprobs_streamed_and_not(fake_upstream: MakeUpstream) -> None:
    reply = Reply.text("Hel", "lo", " there", logprobs=True, split=9)
    upstream = await fake_upstream(reply, reply)
    provider = endpoint(upstream)

    streamed = provider.stream("m", MESSAGES, logprobs=True)
    streamed_events = await events_of(streamed)
    whole = provider.stream("m", MESSAGES, stream=False, logprobs=True)
    await whole.text()

    tokens = [entry["token"] for entry in (streamed.logprobs or {})["content"]]
    assert tokens == ["Hel", "lo", " there"]
    assert streamed.logprobs == whole.logprobs
    assert any(isinstance(event, Logprobs) for event in streamed_events)
    assert upstream.requests[0].json["logprobs"] is True


def test_logprobs_merge_the_same_for_every_cut() -> None:
    """OpenAI sends `"refusal": null` beside content logprobs and `"content": null` beside
    refusal logprobs: a null never erases what earlier chunks gave."""

    def event(delta: dict[str, Any], logprobs: dict[str, Any]) -> str:
        return json.dumps({"choices": [{"index": 0, "delta": delta, "logprobs": logprobs}]})

    entry = {"token": "a", "logprob": -0.1, "bytes": [97], "top_logprobs": []}
    wire = Reply.events(
        event({"content": "a"}, {"content": [entry], "refusal": None}),
        event({"content": "b"}, {"content": [{**entry, "token": "b"}], "refusal": None}),
        event({"refusal": "no"}, {"content": None, "refusal": [{**entry, "token": "no"}]}),
        "[DONE]",
    ).wire()
    merged = {"content": [entry, {**entry, "token": "b"}], "refusal": [{**entry, "token": "no"}]}

    for position in range(len(wire) + 1):
        events, _, error = decode(cut(wire, [position]))
        assert error is None
        held: dict[str, Any] = {}
        for item in events:
            if isinstance(item, Logprobs):
                merge_logprobs(held, item.data)
        assert held == merged, position


async def test_logprobs_with_nulls_over_a_socket(fake_upstream: MakeUpstream) -> None:
    entry = {"token": "a", "logprob": -0.1, "bytes": [97], "top_logprobs": []}
    first = {"choices": [{"index": 0, "delta": {"content": "a"}, "logprobs": {"content": [entry]}}]}
    later = {"choices": [{"index": 0, "delta": {"refusal": "no"}, "logprobs": {"content": None}}]}
    upstream = await fake_upstream(Reply.events(first, later, "[DONE]", split=1))
    stream = endpoint(upstream).stream("m", MESSAGES)

    await stream.text()

    assert stream.logprobs == {"content": [entry]}
    assert stream.refusal == "no"


# Text-only callers never see tool events.


async def test_text_only_callers_get_only_the_text(fake_upstream: MakeUpstream) -> None:
    upstream = await fake_upstream(
        Reply.tool_call(WEATHER, TIME, text="Checking. ", fragment=2, split=11),
        Reply.tool_call(WEATHER),
        Reply.tool_call(WEATHER, text="Looking it up."),
    )
    provider = endpoint(upstream)

    chunks = [chunk async for chunk in provider.create_async_generator("m", MESSAGES)]
    nothing = [chunk async for chunk in provider.create_async_generator("m", MESSAGES)]
    text = await provider.create_async("m", MESSAGES)

    assert "".join(chunks) == "Checking. "
    assert all(isinstance(chunk, str) and chunk for chunk in chunks)
    assert nothing == []
    assert text == "Looking it up."


def test_sync_completion_of_a_tool_call_answer_is_its_text() -> None:
    from providerhub.testing import serve_in_thread

    with serve_in_thread(Reply.tool_call(WEATHER, text="ok")) as upstream:
        assert list(endpoint(upstream).create_completion("m", MESSAGES)) == ["ok"]


# The capability flags from providerhub.toml.

FLAGS = ["supports_tools", "supports_vision", "supports_audio", "supports_files"]


def test_config_turns_capabilities_off(tmp_path: Path) -> None:
    lines = "".join(f"{flag} = false\n" for flag in [*FLAGS, "supports_response_format"])
    config = load_written(tmp_path, OK_PROVIDER + lines)
    registry = config.build_registry(plugins())
    local = registry.get("local")
    default = OpenAICompatible(name="d", base_url="http://127.0.0.1:1/v1")

    assert [getattr(local, flag) for flag in [*FLAGS, "supports_response_format"]] == [False] * 5
    assert all(getattr(default, flag) for flag in [*FLAGS, "supports_response_format"])
    assert "supports_tools=False" in repr(local)


async def test_config_flags_are_honoured(tmp_path: Path, fake_upstream: MakeUpstream) -> None:
    upstream = await fake_upstream(Reply.text("flat"))
    text = (
        f'[providers.local]\nuse = "openai"\nbase_url = "{upstream.url}/v1"\n'
        'default_model = "m"\n' + "".join(f"{flag} = false\n" for flag in FLAGS)
    )
    local = load_written(tmp_path, text).build_registry(plugins()).get("local")
    assert isinstance(local, OpenAICompatible)
    parts = [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x"}}]}]

    with pytest.raises(UnsupportedCapabilityError, match="does not support tools"):
        local.stream("", MESSAGES, tools=TOOLS)
    with pytest.raises(UnsupportedCapabilityError, match="does not support vision"):
        local.stream("", image)
    assert upstream.requests == []
    assert await local.stream("", parts).text() == "flat"
    assert upstream.requests[0].json["messages"] == [{"role": "user", "content": "a\nb"}]


@pytest.mark.parametrize("flag", [*FLAGS, "supports_response_format", "stream_usage"])
@pytest.mark.parametrize(("value", "kind"), [('"no"', "str"), ("0", "int")])
def test_config_refuses_a_flag_of_the_wrong_type(flag: str, value: str, kind: str) -> None:
    caught = build_error(OK_PROVIDER + f"{flag} = {value}\n")

    assert (
        str(caught)
        == f"p.toml [providers.local]: option {flag!r} must be true or false, not {kind}"
    )
    assert (caught.table, caught.key) == ("providers.local", flag)


def test_codelinkava_declares_no_capability() -> None:
    assert [getattr(CodeLinkAva, flag) for flag in [*FLAGS, "supports_response_format"]] == [
        False
    ] * 5


# Servers that number calls badly: no index, or one index for every call, told apart by id.


def _call_chunk(call: dict[str, Any]) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}]}


def _opening(call_id: str, name: str, index: int | None) -> dict[str, Any]:
    call: dict[str, Any] = {"id": call_id, "type": "function", "function": {"name": name}}
    return call if index is None else {"index": index, **call}


def _fragment(arguments: str, index: int | None) -> dict[str, Any]:
    call: dict[str, Any] = {"function": {"arguments": arguments}}
    return call if index is None else {"index": index, **call}


BADLY_NUMBERED = [
    {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}},
    {"id": "call_b", "type": "function", "function": {"name": "g", "arguments": '{"b": 2}'}},
]


@pytest.mark.parametrize("index", [None, 0])
async def test_calls_told_apart_only_by_id_are_not_merged(
    fake_upstream: MakeUpstream, index: int | None
) -> None:
    wire = [
        _call_chunk(_opening("call_a", "f", index)),
        _call_chunk(_fragment('{"a":', index)),
        _call_chunk(_fragment(" 1}", index)),
        _call_chunk(_opening("call_b", "g", index)),
        _call_chunk(_fragment('{"b": 2}', index)),
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        "[DONE]",
    ]
    upstream = await fake_upstream(Reply.events(*wire), Reply.events(*wire, split=7))
    for _ in range(2):
        stream = endpoint(upstream).stream("m", MESSAGES, tools=TOOLS)
        events = await events_of(stream)
        assert stream.tool_calls == BADLY_NUMBERED
        assert [event.index for event in events if isinstance(event, ToolCallDelta)][-1] == 1


def test_a_repeated_id_stays_one_call() -> None:
    repeated = [
        _call_chunk(
            {
                "index": 0,
                "id": "call_a",
                "type": "function",
                "function": {"name": "f", "arguments": part},
            }
        )
        for part in ('{"a"', ": 1}")
    ]
    for pieces in ([b"".join(_sse(repeated))], _sse(repeated)):
        events, _, error = decode(pieces)
        assert error is None
        assert assembled(events) == BADLY_NUMBERED[:1]


def _sse(chunks: Sequence[dict[str, Any]]) -> list[bytes]:
    return [f"data: {json.dumps(chunk)}\n\n".encode() for chunk in chunks]


def test_interleaved_calls_repeating_their_ids_without_index_are_rejoined() -> None:
    def piece(call_id: str, name: str, arguments: str) -> dict[str, Any]:
        function = {"name": name, "arguments": arguments}
        return _call_chunk({"id": call_id, "type": "function", "function": function})

    wire = [
        piece("call_a", "f", '{"a"'),
        piece("call_b", "g", '{"b"'),
        piece("call_a", "f", ": 1}"),
        piece("call_b", "g", ": 2}"),
    ]
    for pieces in ([b"".join(_sse(wire))], _sse(wire)):
        events, _, error = decode(pieces)
        assert error is None
        assert assembled(events) == BADLY_NUMBERED


async def test_create_event_generator_yields_every_event(fake_upstream: MakeUpstream) -> None:
    """The events method yields tool calls too, whatever stream the implementation returns."""
    upstream = await fake_upstream(Reply.tool_call(WEATHER, text="Hi", fragment=100))
    events = [event async for event in endpoint(upstream).create_event_generator("m", MESSAGES)]
    assert events == [
        "Hi",
        ToolCallDelta(0, id="call_0", name="get_weather", arguments=WEATHER[1]),
    ]
