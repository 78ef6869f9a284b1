"""The decoding hot path gives the same events whichever JSON decoder runs it: msgspec's (the
`fast` extra, required here: the dev extra installs it) or the standard library's, and with or
without the shape fast path that skips decoding a stream's common text chunk."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from helpers import MakeUpstream
from hypothesis import given, settings
from hypothesis import strategies as st
from providerhub import MalformedStreamError, UpstreamError, jsonload
from providerhub import chat_completions as cc
from providerhub.events import Event
from providerhub.sse import SSEDecoder
from providerhub.testing import Reply, ToolCallScript
from providerhub_anthropic import AnthropicProvider
from providerhub_openai import OpenAICompatible

HELLO = [{"role": "user", "content": "Hello"}]
FAST = jsonload.fast_loads()
DECODERS = {"stdlib": jsonload.stdlib_loads, "msgspec": FAST}


@pytest.fixture(params=list(DECODERS))
def decoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with each decoder as `jsonload.loads`."""
    monkeypatch.setattr(jsonload, "loads", DECODERS[request.param])
    return str(request.param)


def test_the_fast_decoder_is_installed() -> None:
    assert FAST is not None, "msgspec (the `fast` extra, in dev) must be installed for the tests"


def test_importing_the_parsers_does_not_import_the_fast_decoder() -> None:
    code = (
        "import sys, providerhub, providerhub.chat_completions, providerhub_anthropic; "
        "print('msgspec' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


# The decoders agree on every document: the fast one's value, or the stdlib's verdict.

EDGES = [
    "123456789012345678901234567890",  # beyond 64 bits: an int (orjson would give a float)
    "-9223372036854775809",
    "1e400",  # stdlib: inf
    "-1e400",
    "NaN",
    "Infinity",
    '"\\ud800"',  # a lone surrogate escape
    '"\\ud83d\\ude00"',
    "[" * 3000 + "]" * 3000,  # deeper than msgspec nests
    '{"a": 1, "a": 2}',
    " \t\n\r1 \n",
    "\x0c1",
    "01",
    "1.",
    ".5",
    "+1",
    "-0",
    "-0.0",
    "1E2",
    '"\x7f"',
    '"\t"',
    '"\\x"',
    "\ufeff1",
    "9007199254740993.0",
    "2.2250738585072011e-308",
    "",
    "[1,]",
    "1 2",
]
EDGE_BYTES = [
    b"\xef\xbb\xbf1",  # a UTF-8 BOM: the stdlib accepts it in bytes
    b'"\xff"',  # not UTF-8
    b'"\xed\xa0\x80"',  # an encoded surrogate
    b"1\x00",  # UTF-16-LE to the stdlib
    b'"\x00a"',
    '"héllo"'.encode(),
    '{"a": "✓"}'.encode("utf-16"),
]


def outcome(loads: jsonload.Loads, text: str | bytes) -> tuple[str, Any]:
    try:
        value = loads(text)
    except RecursionError:
        return "RecursionError", None
    except ValueError:
        return "ValueError", None
    return type(value).__name__, repr(value) if isinstance(value, float) else value


@pytest.mark.parametrize("text", EDGES + EDGE_BYTES, ids=repr)
def test_the_decoders_agree_on_edge_cases(text: str | bytes) -> None:
    assert FAST is not None
    assert outcome(FAST, text) == outcome(jsonload.stdlib_loads, text)


def test_big_integers_stay_integers() -> None:
    assert FAST is not None
    value = FAST('{"usage": {"total_tokens": 123456789012345678901234567890}}')
    assert value["usage"]["total_tokens"] == 123456789012345678901234567890


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_json, st.booleans(), st.booleans())
def test_the_decoders_agree_on_any_document(value: Any, ascii_only: bool, spaced: bool) -> None:
    assert FAST is not None
    separators = (", ", ": ") if spaced else (",", ":")
    text = json.dumps(value, ensure_ascii=ascii_only, separators=separators)
    fast, slow = FAST(text), json.loads(text)
    assert fast == slow
    assert json.dumps(fast) == json.dumps(slow)  # float repr, -0.0, int vs float alike
    assert FAST(text.encode()) == slow


# The same events from every path: decoder x shape fast path, over the real decoding path.


def chunk(delta: dict[str, Any], **fields: Any) -> str:
    choice = {"index": 0, "delta": delta, "finish_reason": fields.pop("finish_reason", None)}
    return json.dumps({"id": "c1", "model": "m", "choices": [choice], **fields})


TEXT_ESCAPES = [
    chunk({"content": "plain"}),
    chunk({"content": 'quote " inside'}),
    chunk({"content": "back\\slash"}),
    chunk({"content": "line\nbreak\ttab"}),
    chunk({"content": "é ✓ 😀"}, ensure_ascii=True),
    chunk({"content": "nbsp\u00a0zwsp\u200b"}),
    chunk({"content": ""}),
    chunk({"content": "plain again"}),
]
STREAMS = {
    "text": Reply.text(*(f"t{index} " for index in range(50))).wire(),
    "escapes": "".join(f"data: {data}\n\n" for data in TEXT_ESCAPES).encode(),
    "tool calls": Reply.tool_call(
        ToolCallScript("get_weather", '{"city": "Paris"}'), ("noop", "{}"), text="Sure. "
    ).wire(),
    "refusal": Reply.refusal_text("I can't help with that.").wire(),
    "usage": Reply.text("a", "b", usage={"prompt_tokens": 2**70, "completion_tokens": 2}).wire(),
    "compact": "".join(
        f'data: {{"id":"x","choices":[{{"index":0,"delta":{{"content":"{word}"}}}}]}}\n\n'
        for word in ("compact", " json", " text")
    ).encode()
    + b"data: [DONE]\n\n",
    "logprobs": "".join(
        "data: "
        + chunk({"content": word}, logprobs=None).replace(
            '"finish_reason"', f'"logprobs": {{"content": [{{"token": "{word}"}}]}}, "x"'
        )
        + "\n\n"
        for word in ("a", "b")
    ).encode(),
}


def parse(pieces: Sequence[bytes]) -> tuple[list[Event], cc.Completion, str | None]:
    """The events, the completion and the error of `pieces` read as `read_data` reads them."""
    sse, completion, out = SSEDecoder(), cc.Completion(), []
    try:
        for piece in pieces:
            if cc.parse_events(sse.feed_data(piece), completion, "local", out):
                return out, completion, None
        cc.parse_events(sse.flush_data(), completion, "local", out)
    except UpstreamError as exc:
        return out, completion, str(exc)
    return out, completion, None


def cuts(body: bytes, size: int) -> list[bytes]:
    return [body[index : index + size] for index in range(0, len(body), size)]


@pytest.fixture(params=["shape", "no shape"])
def shape(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with the shape fast path, and with it never learning a shape."""
    if request.param == "no shape":
        monkeypatch.setattr(cc, "TRIES", 0)
    return str(request.param)


def reference(pieces: Sequence[bytes]) -> tuple[list[Event], cc.Completion, str | None]:
    """What the exact path gives: the standard library decoding every event."""
    with exact():
        return parse(pieces)


@contextmanager
def exact() -> Iterator[None]:
    loads, tries = jsonload.loads, cc.TRIES
    jsonload.loads, cc.TRIES = jsonload.stdlib_loads, 0
    try:
        yield
    finally:
        jsonload.loads, cc.TRIES = loads, tries


@pytest.mark.parametrize("size", [1, 7, 64, 65536])
@pytest.mark.parametrize("name", list(STREAMS))
def test_every_path_gives_the_exact_events(name: str, size: int, decoder: str, shape: str) -> None:
    pieces = cuts(STREAMS[name], size)
    events, completion, error = parse(pieces)
    expected, expected_completion, expected_error = reference(pieces)
    assert events == expected
    assert (completion.finish_reason, completion.usage) == (
        expected_completion.finish_reason,
        expected_completion.usage,
    )
    assert (completion.id, completion.model, error) == (
        expected_completion.id,
        expected_completion.model,
        expected_error,
    )
    assert events  # every stream here has content


def test_escaped_and_unusual_text_is_decoded_not_copied(decoder: str) -> None:
    events, _, _ = parse([STREAMS["escapes"]])
    assert events == [
        'plainquote " insideback\\slashline\nbreak\ttabé ✓ 😀nbsp\u00a0zwsp\u200bplain again'
    ]


def test_the_shape_is_learned_once_and_used(decoder: str) -> None:
    completion, out = cc.Completion(), []
    data = [chunk({"content": f"w{index}"}) for index in range(5)]
    cc.parse_events(data, completion, "local", out)
    assert out == ["w0w1w2w3w4"]
    assert completion.shape.tries == 1
    assert completion.shape.prefix.endswith('"content": "')
    assert completion.shape.suffix.startswith('"}, "finish_reason": null}]}')


def test_a_shaped_event_with_a_control_character_is_still_malformed(decoder: str) -> None:
    good = chunk({"content": "ok"})
    bad = good.replace('"ok"', '"o\x01k"').replace("\\x01", "\x01")
    assert "\x01" in bad
    out: list[Event] = []
    with pytest.raises(MalformedStreamError) as caught:
        cc.parse_events([good, good, bad], cc.Completion(), "local", out)
    assert out == ["okok"]
    assert caught.value.excerpt == bad


def test_a_decoy_content_elsewhere_gives_no_shape(decoder: str) -> None:
    """The first `"content":` of the text is not the delta's: the shape is refused."""
    first = json.dumps({"content": "x", "choices": [{"delta": {"content": "x"}}]})
    later = json.dumps({"content": "y", "choices": [{"delta": {"content": "x"}}]})
    completion, out = cc.Completion(), []
    cc.parse_events([first, later], completion, "local", out)
    assert out == ["xx"]
    assert completion.shape.least == sys.maxsize


def test_a_stream_whose_chunks_vary_stops_learning(decoder: str) -> None:
    data = [
        json.dumps({"choices": [{"delta": {"content": "a"}}], "pad": "x" * index})
        for index in range(10)
    ]
    completion, out = cc.Completion(), []
    cc.parse_events(data, completion, "local", out)
    assert out == ["a" * 10]
    assert completion.shape.tries == 3


# Through real sockets: both providers, both decoders.


async def test_openai_stream_over_loopback(fake_upstream: MakeUpstream, decoder: str) -> None:
    up = await fake_upstream(Reply.text("Hel", "lo ", "wörld", usage={"total_tokens": 2**70}))
    provider = OpenAICompatible(name="local", base_url=up.url + "/v1", default_model="m")

    stream = provider.stream("", HELLO)
    text = await stream.text()

    assert text == "Hello wörld"
    assert stream.usage == {"total_tokens": 2**70}
    assert stream.finish_reason == "stop"


async def test_anthropic_stream_over_loopback(fake_upstream: MakeUpstream, decoder: str) -> None:
    up = await fake_upstream(Reply.text("Bon", "jour"), wire="anthropic")
    provider = AnthropicProvider(
        name="claude", base_url=up.url, default_model="c", api_key="test-only"
    )

    assert await provider.create_async("", HELLO) == "Bonjour"


async def test_deep_event_is_malformed_with_either_decoder(
    fake_upstream: MakeUpstream, decoder: str
) -> None:
    deep = "[" * 5000 + "]" * 5000
    up = await fake_upstream(Reply.events(chunk({"content": "a"}), deep, "[DONE]"))
    provider = OpenAICompatible(name="local", base_url=up.url + "/v1", default_model="m")

    with pytest.raises(MalformedStreamError) as caught:
        await provider.create_async("", HELLO)

    assert str(caught.value) == f"local: malformed event: {'[' * 300!r}"


@pytest.mark.parametrize("number", ["NaN", "-Infinity", "1e999"])
def test_a_number_json_has_not_is_a_malformed_event(decoder: str, number: str) -> None:
    """NaN and infinities are no JSON: passed on, a gateway would send invalid JSON."""
    completion, out = cc.Completion(), []
    data = f'{{"choices": [{{"delta": {{"content": "a"}}}}], "usage": {{"score": {number}}}}}'
    with pytest.raises(MalformedStreamError) as caught:
        cc.parse_events([data], completion, "local", out)
    assert str(caught.value).startswith("local: malformed event: ")
    assert (out, completion.usage) == ([], None)
