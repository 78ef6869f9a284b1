"""Anthropic answers translated to providerhub events (pure, no I/O): text and tool-call deltas,
finish reasons, usage, in-stream errors, and the same answer however the bytes are split."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from anthropic_helpers import (
    OPENAI_USAGE,
    call,
    error_event,
    message,
    sse,
    stream,
    text,
    tool,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from providerhub import MalformedStreamError, ServerSentEvent, UpstreamError
from providerhub.events import Event, ToolCallDelta, ToolCalls
from providerhub.sse import SSEDecoder
from providerhub_anthropic.response import Answer, openai_usage, parse_events, parse_message

WEATHER = tool("toolu_1", "get_weather", '{"city":', ' "Paris", "unit": "°C"}')
TIME = tool("toolu_2", "get_time", '{"tz": "Europe/', 'Paris", "note": "✓ ünïcödé"}')
TOOL_ANSWER = stream(text("Let me ", "check."), WEATHER, TIME, stop_reason="tool_use")
CALLS = [
    call("toolu_1", "get_weather", '{"city": "Paris", "unit": "°C"}'),
    call("toolu_2", "get_time", '{"tz": "Europe/Paris", "note": "✓ ünïcödé"}'),
]

EXPECTED = ("Let me check.", CALLS)


def events_of(payloads: list[dict[str, Any]]) -> list[ServerSentEvent]:
    return [ServerSentEvent(json.dumps(p), p["type"]) for p in payloads]


def parse(payloads: list[dict[str, Any]]) -> tuple[list[Event], Answer]:
    answer, out = Answer(), []
    assert parse_events(events_of(payloads), answer, "claude", out)
    return out, answer


def assembled(events: list[Event]) -> tuple[str, list[Any]]:
    calls = ToolCalls()
    for event in events:
        if isinstance(event, ToolCallDelta):
            calls.add(event)
    return "".join(e for e in events if isinstance(e, str)), calls.result()


def test_text_answer_with_finish_reason_and_usage() -> None:
    out, answer = parse(stream(text("Hel", "lo", " there")))

    assert out == ["Hello there"]
    assert answer.done
    completion = answer.completion
    assert (completion.id, completion.model) == ("msg_01", "claude-test")
    assert completion.finish_reason == "stop"
    assert completion.usage == OPENAI_USAGE


def test_tool_calls_are_numbered_in_call_order_not_block_order() -> None:
    out, answer = parse(TOOL_ANSWER)

    assert out == [
        "Let me check.",
        ToolCallDelta(0, "toolu_1", "get_weather", '{"city": "Paris", "unit": "°C"}'),
        ToolCallDelta(1, "toolu_2", "get_time", '{"tz": "Europe/Paris", "note": "✓ ünïcödé"}'),
    ]
    assert assembled(out) == ("Let me check.", CALLS)
    assert answer.completion.finish_reason == "tool_calls"


def test_each_event_alone_gives_the_first_delta_then_fragments() -> None:
    answer, out = Answer(), []
    for event in events_of(stream(WEATHER, stop_reason="tool_use")):
        parse_events([event], answer, "claude", out)

    assert out == [
        ToolCallDelta(0, "toolu_1", "get_weather", ""),
        ToolCallDelta(0, None, None, '{"city":'),
        ToolCallDelta(0, None, None, ' "Paris", "unit": "°C"}'),
    ]


def test_a_call_without_input_gets_an_empty_object() -> None:
    out, _ = parse(stream(tool("toolu_9", "now"), stop_reason="tool_use"))

    assert out == [ToolCallDelta(0, "toolu_9", "now", "{}")]


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "pause_turn"),
    ],
)
def test_stop_reasons(stop_reason: str, finish_reason: str) -> None:
    _, answer = parse(stream(text("x"), stop_reason=stop_reason))

    assert answer.completion.finish_reason == finish_reason


def test_usage_without_cache_fields_has_no_details() -> None:
    assert openai_usage({"input_tokens": 3, "output_tokens": 2}) == {
        "prompt_tokens": 3,
        "completion_tokens": 2,
        "total_tokens": 5,
    }


def test_later_usage_counts_replace_earlier_ones() -> None:
    end = {"input_tokens": 30, "output_tokens": 15, "cache_read_input_tokens": 0}
    _, answer = parse(stream(text("x"), end_usage=end))

    assert answer.completion.usage == {
        "prompt_tokens": 34,
        "completion_tokens": 15,
        "total_tokens": 49,
        "prompt_tokens_details": {
            "cached_tokens": 0,
            "cache_creation_input_tokens": 4,
            "cache_read_input_tokens": 0,
        },
    }


def test_unknown_events_blocks_and_deltas_are_skipped() -> None:
    payloads = stream(text("answer"))
    thinking = [
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "thinking", "thinking": ""},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "thinking_delta", "thinking": "hmm"},
        },
        {"type": "content_block_delta", "index": 1, "delta": {"type": "signature_delta"}},
        {"type": "content_block_stop", "index": 1},
        {"type": "future_event", "anything": [1]},
    ]

    out, _ = parse(payloads[:2] + thinking + payloads[2:])

    assert out == ["answer"]


@pytest.mark.parametrize(
    ("kind", "retryable"),
    [
        ("overloaded_error", True),
        ("api_error", True),
        ("rate_limit_error", True),
        ("something_new", True),
        ("invalid_request_error", False),
        ("authentication_error", False),
    ],
)
def test_error_event_raises_after_the_events_before_it(kind: str, retryable: bool) -> None:
    payloads = [*stream(text("par", "tial"))[:5], error_event(kind, "Overloaded")]
    answer, out = Answer(), []

    with pytest.raises(UpstreamError) as caught:
        parse_events(events_of(payloads), answer, "claude", out)

    assert str(caught.value) == f"claude: error in stream: {kind}: Overloaded"
    assert caught.value.retryable is retryable
    assert out == ["partial"]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ("{not json", "malformed event"),
        ('{"no": "type"}', "unexpected event"),
        ('{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta"}}', "unex"),
        (
            '{"type": "content_block_delta", "index": 5, "delta": {"type": "input_json_delta", '
            '"partial_json": "{"}}',
            "unexpected event",
        ),
        ('{"type": "message_delta", "delta": {"stop_reason": 7}}', "unexpected event"),
    ],
)
def test_malformed_events(data: str, problem: str) -> None:
    out: list[Event] = []
    events = [
        ServerSentEvent(
            json.dumps(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": "ok"},
                }
            )
        ),
        ServerSentEvent(data),
    ]

    with pytest.raises(MalformedStreamError) as caught:
        parse_events(events, Answer(), "claude", out)

    assert str(caught.value).startswith(f"claude: {problem}")
    assert out == ["ok"]


def test_non_streamed_message() -> None:
    body = message(text("Let me check."), WEATHER, TIME, stop_reason="tool_use")
    answer = Answer()

    out = parse_message(json.dumps(body).encode(), answer, "claude")

    assert assembled(out) == EXPECTED
    assert [e.index for e in out if isinstance(e, ToolCallDelta)] == [0, 1]
    assert answer.completion.finish_reason == "tool_calls"
    assert answer.completion.usage == OPENAI_USAGE
    assert answer.completion.id == "msg_01"


@pytest.mark.parametrize("raw", [b"<html>", b'{"type": "error"}', b'{"type": "message"}'])
def test_non_streamed_body_that_is_not_a_message(raw: bytes) -> None:
    with pytest.raises(MalformedStreamError):
        parse_message(raw, Answer(), "claude")


def decoded(pieces: list[bytes]) -> tuple[tuple[str, list[Any]], Answer]:
    """Feed `pieces` through an SSE decoder and the parser, batch by batch, as a read would."""
    decoder, answer, out = SSEDecoder(), Answer(), []
    for piece in pieces:
        parse_events(decoder.feed(piece), answer, "claude", out)
    parse_events(decoder.flush(), answer, "claude", out)
    return assembled(out), answer


WIRE = sse(TOOL_ANSWER)
WIRE_CRLF = sse(TOOL_ANSWER, end="\r\n")


def test_every_single_split_of_the_tool_answer() -> None:
    for wire in (WIRE, WIRE_CRLF):
        for cut in range(len(wire) + 1):
            result, answer = decoded([wire[:cut], wire[cut:]])
            assert result == EXPECTED, cut
            assert answer.done and answer.completion.usage == OPENAI_USAGE


def test_one_byte_at_a_time() -> None:
    result, answer = decoded([WIRE[i : i + 1] for i in range(len(WIRE))])

    assert result == EXPECTED
    assert answer.completion.finish_reason == "tool_calls"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(WIRE)), max_size=40), st.booleans())
def test_any_split_gives_the_same_answer(cuts: list[int], crlf: bool) -> None:
    wire = WIRE_CRLF if crlf else WIRE
    bounds = [0, *sorted(min(cut, len(wire)) for cut in cuts), len(wire)]
    pieces = [wire[a:b] for a, b in itertools.pairwise(bounds)]

    result, answer = decoded(pieces)

    assert result == EXPECTED
    assert answer.done
    assert answer.completion.usage == OPENAI_USAGE
