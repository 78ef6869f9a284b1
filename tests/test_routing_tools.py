"""FallbackChain with answers that are not (only) text: tool calls as first chunks, health,
capability skips, hand-overs that must not happen, hedging, nesting; text-only CodeLinkAva."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from helpers import BOUND, MakeUpstream
from providerhub import (
    ChatStream,
    FallbackChain,
    MemoryHealthStore,
    StreamInterruptedError,
    Timeouts,
    UnsupportedCapabilityError,
)
from providerhub.events import Event, RefusalDelta, ToolCallDelta
from providerhub.provider import is_guarded
from providerhub.routing import CONTINUE_PROMPT
from providerhub.testing import FakeUpstream, Reply
from providerhub_codelinkava import CodeLinkAva
from providerhub_openai import OpenAICompatible
from routing_helpers import FAST, MESSAGES, provider

pytestmark = pytest.mark.usefixtures("fresh_health")

WEATHER = ("get_weather", '{"city": "Paris"}')
TIME = ("get_time", '{"tz": "Europe/Paris"}')
USAGE = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
CALLS = [
    {"id": "call_0", "type": "function", "function": {"name": WEATHER[0], "arguments": WEATHER[1]}},
    {"id": "call_1", "type": "function", "function": {"name": TIME[0], "arguments": TIME[1]}},
]
TOOL_HISTORY: list[dict[str, Any]] = [
    *MESSAGES,
    {"role": "assistant", "content": None, "tool_calls": CALLS[:1]},
    {"role": "tool", "tool_call_id": "call_0", "content": "21 C"},
]
IMAGE = [
    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/a.png"}}]}
]


def endpoint(name: str, upstream: FakeUpstream, **options: Any) -> OpenAICompatible:
    return OpenAICompatible(name=name, base_url=upstream.url + "/v1", **options)


def outcomes(stream: ChatStream | StreamInterruptedError) -> list[tuple[str, str, str]]:
    return [(a.provider, a.outcome, a.reason) for a in stream.attempts]


async def events_of(stream: ChatStream) -> list[Event]:
    async with asyncio.timeout(BOUND):
        return [event async for event in stream.events()]


async def test_tool_call_first_event_is_served(fake_upstream: MakeUpstream) -> None:
    upstream = await fake_upstream(Reply.tool_call(WEATHER, TIME, usage=USAGE))
    chain = FallbackChain([endpoint("tools", upstream)], health=MemoryHealthStore())
    stream = chain.stream("m", MESSAGES, tools=TOOLS)

    events = await events_of(stream)

    assert isinstance(events[0], ToolCallDelta)
    assert all(isinstance(event, ToolCallDelta) for event in events)
    assert stream.tool_calls == CALLS
    assert (stream.finish_reason, stream.usage) == ("tool_calls", USAGE)
    [attempt] = stream.attempts
    assert (attempt.provider, attempt.outcome, attempt.error) == ("tools", "served", None)
    assert attempt.time_to_first_chunk is not None and attempt.duration is not None
    assert (stream.provider, stream.route) == ("tools", f"{chain.name} > tools")


@pytest.mark.parametrize("threshold", [1, 2])
@pytest.mark.parametrize("read", ["events", "text"])
async def test_tool_only_answers_are_health_successes(
    fake_upstream: MakeUpstream, threshold: int, read: str
) -> None:
    tools = await fake_upstream(default=Reply.tool_call(WEATHER))
    backup = await fake_upstream(default=Reply.text("backup"))
    health = MemoryHealthStore(failure_threshold=threshold)
    chain = FallbackChain(
        [endpoint("tools", tools), endpoint("backup", backup)], health=health, timeouts=FAST
    )

    for _ in range(10):
        stream = chain.stream("m", MESSAGES, tools=TOOLS)
        if read == "events":
            await events_of(stream)
        else:
            async with asyncio.timeout(BOUND):
                assert await stream.text() == "", "a text-only reader sees no tool events"
        assert outcomes(stream) == [("tools", "served", "")]
        assert stream.tool_calls == CALLS[:1]

    assert len(tools.requests) == 10
    assert backup.requests == []
    assert health.latency("tools") is not None


@pytest.mark.parametrize(
    ("messages", "params", "capability"),
    [
        (MESSAGES, {"tools": TOOLS}, "tools"),
        (MESSAGES, {"tool_choice": "auto", "tools": TOOLS}, "tools"),
        (TOOL_HISTORY, {}, "tools"),
        (IMAGE, {}, "vision"),
        (MESSAGES, {"response_format": {"type": "json_object"}}, "response_format"),
    ],
    ids=["tools", "tool_choice", "tool history", "image", "response_format"],
)
async def test_member_lacking_a_capability_is_skipped_unasked(
    fake_upstream: MakeUpstream,
    messages: list[dict[str, Any]],
    params: dict[str, Any],
    capability: str,
) -> None:
    plain = await fake_upstream(Reply.text("wrong"))
    able = await fake_upstream(Reply.tool_call(WEATHER, text="ok"))
    lacking = endpoint("plain", plain, **{f"supports_{capability}": False})
    chain = FallbackChain([lacking, endpoint("able", able)], health=MemoryHealthStore())
    stream = chain.stream("m", messages, **params)

    await events_of(stream)

    assert outcomes(stream) == [
        ("plain", "skipped", f"does not support {capability}"),
        ("able", "served", ""),
    ]
    assert plain.requests == []
    assert able.requests[0].json["messages"] == messages
    assert stream.tool_calls == CALLS[:1]


@pytest.mark.parametrize("nested", [False, True])
async def test_no_member_with_the_capability_fails_before_any_request(
    fake_upstream: MakeUpstream, nested: bool
) -> None:
    one = await fake_upstream(Reply.text("a"))
    two = await fake_upstream(Reply.text("b"))
    members: list[Any] = [
        endpoint("one", one, supports_tools=False),
        provider("ava", two),
    ]
    chain = FallbackChain(
        [FallbackChain(members, name="inner")] if nested else members,
        name="outer",
        health=MemoryHealthStore(),
    )

    with pytest.raises(UnsupportedCapabilityError) as caught:
        chain.stream("m", MESSAGES, tools=TOOLS)
    with pytest.raises(UnsupportedCapabilityError):
        chain.stream("m", TOOL_HISTORY)

    assert caught.value.capabilities == ("tools",)
    assert str(caught.value) == "provider 'outer' does not support tools, which the request uses"
    assert one.requests == two.requests == []


# on_interrupt="continue" never continues an answer that had begun a tool call (or a refusal).


def continuing(cut: FakeUpstream, spare: FakeUpstream) -> FallbackChain:
    """A chain [cut, spare] that hands an interrupted answer over to the next provider."""
    return FallbackChain(
        [endpoint("cut", cut), endpoint("spare", spare)],
        on_interrupt="continue",
        timeouts=FAST,
        health=MemoryHealthStore(),
    )


CUT_MID_TOOL_CALL = {
    "after text, mid arguments": (
        Reply.tool_call(("get_weather", '{"city": "Paris, France"}'), text="Hm. ", close_after=3),
        "Hm. ",
    ),
    "first event a tool call": (
        Reply.events(
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {
                            "tool_calls": [
                                {
                                    "index": 0,
                                    "id": "c1",
                                    "type": "function",
                                    "function": {"name": "f", "arguments": '{"a'},
                                }
                            ]
                        },
                    }
                ]
            },
            end="close",
        ),
        "",
    ),
    "between two calls": (Reply.tool_call(WEATHER, TIME, fragment=100, close_after=2), ""),
    "mid refusal": (Reply.refusal_text("I will not do that.", close_after=1), ""),
}


@pytest.mark.parametrize(("reply", "text"), CUT_MID_TOOL_CALL.values(), ids=CUT_MID_TOOL_CALL)
async def test_continue_never_hands_over_a_begun_tool_call(
    fake_upstream: MakeUpstream, reply: Reply, text: str
) -> None:
    cut = await fake_upstream(reply)
    spare = await fake_upstream(Reply.text("spliced"))
    chain = continuing(cut, spare)
    stream = chain.stream("m", MESSAGES, tools=TOOLS)
    seen: list[Event] = []

    with pytest.raises(StreamInterruptedError) as caught:
        async with asyncio.timeout(BOUND):
            async for event in stream.events():
                seen.append(event)

    assert caught.value.provider == "cut"
    assert caught.value.text == text == "".join(e for e in seen if isinstance(e, str))
    assert any(isinstance(e, ToolCallDelta | RefusalDelta) for e in seen)
    assert [(a.provider, a.outcome) for a in caught.value.attempts] == [("cut", "interrupted")]
    assert spare.requests == []


async def test_continue_after_text_only_still_hands_over(fake_upstream: MakeUpstream) -> None:
    cut = await fake_upstream(Reply.close_after_chunks("one ", "two "))
    spare = await fake_upstream(Reply.tool_call(WEATHER, text="three"))
    chain = continuing(cut, spare)
    stream = chain.stream("m", MESSAGES, tools=TOOLS)

    events = await events_of(stream)

    assert "".join(e for e in events if isinstance(e, str)) == "one two three"
    assert stream.tool_calls == CALLS[:1]
    assert stream.finish_reason == "tool_calls"
    assert [(a.provider, a.outcome, a.continuation) for a in stream.attempts] == [
        ("cut", "interrupted", False),
        ("spare", "served", True),
    ]
    assert spare.requests[0].json["messages"] == [
        *MESSAGES,
        {"role": "assistant", "content": "one two "},
        {"role": "user", "content": CONTINUE_PROMPT},
    ]
    assert spare.requests[0].json["tools"] == TOOLS


async def test_hedge_won_by_a_tool_call(fake_upstream: MakeUpstream) -> None:
    slow = await fake_upstream(Reply.hang())
    fast = await fake_upstream(Reply.tool_call(WEATHER, TIME, interleave_tool_calls=True))
    chain = FallbackChain(
        [endpoint("slow", slow), endpoint("fast", fast)],
        hedge_after=0.05,
        timeouts=Timeouts(first_chunk=30),
        health=MemoryHealthStore(),
    )
    stream = chain.stream("m", MESSAGES, tools=TOOLS)

    events = await events_of(stream)

    assert isinstance(events[0], ToolCallDelta)
    assert stream.tool_calls == CALLS
    assert stream.provider == "fast"
    assert [(a.provider, a.outcome, a.reason, a.hedged) for a in stream.attempts] == [
        ("slow", "cancelled", "lost the race to fast", True),
        ("fast", "served", "", True),
    ]


async def test_nested_chains_pass_tool_calls_through(fake_upstream: MakeUpstream) -> None:
    broken = await fake_upstream(Reply.error(500))
    plain = await fake_upstream(Reply.text("no tools here"))
    tools = await fake_upstream(Reply.tool_call(WEATHER, TIME, text="Both: ", usage=USAGE))
    health = MemoryHealthStore()
    inner = FallbackChain(
        [endpoint("broken", broken), endpoint("tools", tools)], name="inner", health=health
    )
    outer = FallbackChain(
        [endpoint("plain", plain, supports_tools=False), inner], name="outer", health=health
    )
    stream = outer.stream("m", MESSAGES, tools=TOOLS)

    events = await events_of(stream)

    assert events[0] == "Both: "
    assert next(e for e in events if isinstance(e, ToolCallDelta)).name == "get_weather"
    assert stream.tool_calls == CALLS
    assert (stream.finish_reason, stream.usage) == ("tool_calls", USAGE)
    assert (stream.provider, stream.route) == ("tools", "outer > inner > tools")
    assert outcomes(stream) == [
        ("plain", "skipped", "does not support tools"),
        ("inner", "served", "via tools"),
    ]
    assert plain.requests == []


async def test_message_of_a_chain_answer(fake_upstream: MakeUpstream) -> None:
    upstream = await fake_upstream(Reply.tool_call(WEATHER, text="Let me see."))
    chain = FallbackChain([endpoint("tools", upstream)], health=MemoryHealthStore())

    async with asyncio.timeout(BOUND):
        message = await chain.stream("m", MESSAGES, tools=TOOLS).message()

    assert message == {"role": "assistant", "content": "Let me see.", "tool_calls": CALLS[:1]}


def test_event_providers_guard_themselves() -> None:
    """A chain wraps a member in its own guard only when the member does not guard itself; an
    OpenAICompatible guards its event generator (and so its text one)."""
    openai = OpenAICompatible(name="x", base_url="http://127.0.0.1:1/v1")

    assert is_guarded(openai)
    assert is_guarded(CodeLinkAva)
    assert not is_guarded(FallbackChain([openai]))


# CodeLinkAva takes text only.

TEXT_PARTS = [
    {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
    {
        "role": "user",
        "content": [{"type": "text", "text": "Line one"}, {"type": "text", "text": "line two"}],
    },
]
FLAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Line one\nline two"},
]


@pytest.mark.parametrize("through", ["direct", "chain"])
async def test_codelinkava_gets_text_parts_as_a_string(
    fake_upstream: MakeUpstream, through: str
) -> None:
    upstream = await fake_upstream(Reply.text("ok"))
    ava = provider("ava", upstream)
    target: Any = ava if through == "direct" else FallbackChain([ava], health=MemoryHealthStore())

    async with asyncio.timeout(BOUND):
        assert await target.stream("", TEXT_PARTS).text() == "ok"

    assert upstream.requests[0].json["messages"] == FLAT
    assert TEXT_PARTS[1]["content"][0] == {"type": "text", "text": "Line one"}, "not modified"


@pytest.mark.parametrize("through", ["direct", "chain"])
@pytest.mark.parametrize(
    ("messages", "params", "capability"),
    [
        (IMAGE, {}, "vision"),
        (MESSAGES, {"tools": TOOLS}, "tools"),
        (TOOL_HISTORY, {}, "tools"),
        (MESSAGES, {"response_format": {"type": "json_object"}}, "response_format"),
    ],
    ids=["image", "tools", "tool history", "response_format"],
)
async def test_codelinkava_refuses_what_it_cannot_send(
    fake_upstream: MakeUpstream,
    through: str,
    messages: list[dict[str, Any]],
    params: dict[str, Any],
    capability: str,
) -> None:
    upstream = await fake_upstream(Reply.text("never"))
    ava = provider("ava", upstream)
    target: Any = ava if through == "direct" else FallbackChain([ava], health=MemoryHealthStore())

    with pytest.raises(UnsupportedCapabilityError) as caught:
        target.stream("", messages, **params)
    with pytest.raises(UnsupportedCapabilityError):
        target.create_async_generator("", messages, **params)

    assert caught.value.capabilities == (capability,)
    assert upstream.requests == []


VIDEO = [{"role": "user", "content": [{"type": "text", "text": "see"}, {"type": "input_video"}]}]


async def test_an_unknown_part_skips_text_only_members(fake_upstream: MakeUpstream) -> None:
    plain = await fake_upstream(default=Reply.text("never"))
    parts = await fake_upstream(Reply.text("a video"))
    text_only = endpoint("plain", plain, default_model="m", supports_vision=False)
    text_only.supports_audio = text_only.supports_files = False
    chain = FallbackChain([text_only, endpoint("parts", parts)], health=MemoryHealthStore())

    stream = chain.stream("m", VIDEO)

    assert await stream.text() == "a video"
    assert outcomes(stream) == [
        ("plain", "skipped", "does not support content parts"),
        ("parts", "served", ""),
    ]
    assert plain.requests == []
    assert parts.requests[0].json["messages"] == VIDEO


async def test_an_unknown_part_no_member_can_send_is_refused_before_any_request() -> None:
    chain = FallbackChain([CodeLinkAva], ignore_working=True, name="ava")

    with pytest.raises(UnsupportedCapabilityError) as caught:
        chain.stream("", VIDEO)

    assert str(caught.value) == (
        "provider 'ava' does not support content parts, which the request uses"
    )
