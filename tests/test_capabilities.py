"""What a request needs (`required`), what a provider lacks (`missing`), what it is sent
(`adapt`), and the capability flags providers declare."""

from __future__ import annotations

from typing import Any

import pytest
from providerhub import (
    AsyncGeneratorProvider,
    FallbackChain,
    InvalidRequestError,
    UnsupportedCapabilityError,
)
from providerhub.capabilities import CAPABILITIES, PARTS, adapt, missing, param_for, required
from providerhub.messages import validate_messages
from providerhub_codelinkava import CodeLinkAva
from providerhub_openai import OpenAICompatible
from routing_helpers import ProviderObject

USER = {"role": "user", "content": "hi"}
IMAGE = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
AUDIO = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
FILE = {"type": "file", "file": {"file_id": "file-1"}}
TEXT = {"type": "text", "text": "look"}
CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
TOOLS = [{"type": "function", "function": {"name": "f"}}]
ALL = list(CAPABILITIES)


def needs(messages: list[dict[str, Any]], **params: Any) -> frozenset[str]:
    return required(validate_messages(messages), params)


class Flags:
    """A provider object declaring exactly the capabilities it is given."""

    def __init__(self, *capabilities: str, name: str = "flags") -> None:
        self.name = name
        for capability in capabilities:
            setattr(self, CAPABILITIES[capability], True)


def test_the_capability_table() -> None:
    assert dict(CAPABILITIES) == {
        "tools": "supports_tools",
        "vision": "supports_vision",
        "audio": "supports_audio",
        "files": "supports_files",
        "response_format": "supports_response_format",
    }


def test_plain_text_needs_nothing() -> None:
    assert needs([USER]) == frozenset()
    assert needs([{"role": "user", "content": [TEXT]}]) == frozenset()
    assert needs([USER], temperature=0.2, max_tokens=5, stream=True) == frozenset()


@pytest.mark.parametrize(
    ("part", "capability"), [(IMAGE, "vision"), (AUDIO, "audio"), (FILE, "files")]
)
def test_content_parts_need_their_capability(part: dict[str, Any], capability: str) -> None:
    assert needs([{"role": "user", "content": [TEXT, part]}]) == {capability}


def test_unknown_and_refusal_parts_need_a_provider_taking_parts() -> None:
    video = {"type": "input_video", "url": "x"}
    refusal = {"type": "refusal", "refusal": "no"}
    assert needs([{"role": "user", "content": [TEXT, video]}]) == {PARTS}
    assert needs([USER, {"role": "assistant", "content": [refusal]}]) == {PARTS}
    assert needs([{"role": "user", "content": [TEXT]}]) == frozenset()


@pytest.mark.parametrize("capability", ["vision", "audio", "files"])
def test_any_part_capability_takes_unknown_parts(capability: str) -> None:
    assert missing(Flags(capability), frozenset({PARTS})) == []
    assert missing(Flags("tools", "response_format"), frozenset({PARTS})) == [PARTS]
    assert missing(Flags(), frozenset({PARTS, "tools"})) == ["tools", PARTS]


@pytest.mark.parametrize(
    "params",
    [
        {"tools": TOOLS},
        {"tool_choice": "auto"},
        {"parallel_tool_calls": False},
        {"functions": [{"name": "f"}]},
        {"function_call": "auto"},
    ],
)
def test_tool_parameters_need_tools(params: dict[str, Any]) -> None:
    assert needs([USER], **params) == {"tools"}


@pytest.mark.parametrize(
    "history",
    [
        [USER, {"role": "assistant", "content": None, "tool_calls": [CALL]}],
        [USER, {"role": "tool", "tool_call_id": "c1", "content": "42"}],
        [
            USER,
            {"role": "assistant", "content": "checking", "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "c1", "content": [TEXT]},
            USER,
        ],
    ],
    ids=["assistant tool_calls", "tool result", "whole round"],
)
def test_tool_history_needs_tools(history: list[dict[str, Any]]) -> None:
    assert needs(history) == {"tools"}


def test_response_format_is_needed() -> None:
    assert needs([USER], response_format={"type": "json_object"}) == {"response_format"}


def test_null_parameters_are_ignored() -> None:
    nulls = {name: None for name in ("tools", "tool_choice", "parallel_tool_calls")}
    assert needs([USER], **nulls, functions=None, response_format=None) == frozenset()
    assert needs([USER, {"role": "assistant", "content": "x", "tool_calls": None}]) == set()


def test_everything_at_once() -> None:
    history: list[dict[str, Any]] = [
        {"role": "user", "content": [TEXT, IMAGE, AUDIO, FILE]},
        {"role": "tool", "tool_call_id": "c", "content": "r"},
    ]

    assert needs(history, response_format={"type": "json_object"}) == set(ALL)


def test_plain_text_response_format_needs_nothing() -> None:
    assert needs([USER], response_format={"type": "text"}) == frozenset()
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}
    assert needs([USER], response_format=schema) == {"response_format"}


def test_param_for_names_the_field_at_fault() -> None:
    assert param_for("tools", {"tool_choice": "auto"}) == "tool_choice"
    assert param_for("tools", {"tools": [], "tool_choice": "auto"}) == "tools"
    assert param_for("tools", {}) == "messages"
    assert param_for("response_format", {"response_format": {}}) == "response_format"
    assert param_for("vision", {"tools": []}) == "messages"


def test_missing_lists_what_is_not_declared_in_table_order() -> None:
    wanted = frozenset(ALL)

    assert missing(Flags(), wanted) == ALL
    assert missing(Flags(*ALL), wanted) == []
    assert missing(Flags("vision", "tools"), wanted) == ["audio", "files", "response_format"]
    assert missing(Flags(), frozenset({"response_format", "tools"})) == ["tools", "response_format"]
    assert missing(object(), frozenset()) == []


def test_missing_treats_a_false_flag_as_absent() -> None:
    flags = Flags("tools")
    flags.supports_tools = False  # type: ignore[attr-defined]

    assert missing(flags, frozenset({"tools"})) == ["tools"]


def test_adapt_refuses_before_anything_is_sent() -> None:
    messages = validate_messages([{"role": "user", "content": [IMAGE]}])

    with pytest.raises(UnsupportedCapabilityError) as caught:
        adapt(Flags(name="text-only"), messages, {"tools": TOOLS})

    assert caught.value.provider == "text-only"
    assert caught.value.capabilities == ("tools", "vision")
    assert isinstance(caught.value, InvalidRequestError)
    assert str(caught.value) == (
        "provider 'text-only' does not support tools, vision, which the request uses"
    )


def test_adapt_flattens_text_parts_for_a_provider_without_part_capabilities() -> None:
    original: list[dict[str, Any]] = [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": [TEXT, {"type": "text", "text": "closely"}], "name": "ann"},
        {"role": "assistant", "content": "plain"},
    ]
    messages = validate_messages(original)

    flat = adapt(Flags("tools", "response_format"), messages, {})

    assert flat == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "look\nclosely", "name": "ann"},
        {"role": "assistant", "content": "plain"},
    ]
    assert original[1]["content"] == [TEXT, {"type": "text", "text": "closely"}], "not modified"


def test_adapt_flattens_null_content_of_a_tool_history() -> None:
    messages = validate_messages(
        [USER, {"role": "assistant", "content": None, "tool_calls": [CALL]}]
    )

    flat = adapt(Flags("tools"), messages, {})

    assert flat[1] == {"role": "assistant", "content": "", "tool_calls": [CALL]}


@pytest.mark.parametrize("capability", ["vision", "audio", "files"])
def test_adapt_leaves_parts_alone_for_a_provider_with_any_part_capability(
    capability: str,
) -> None:
    messages = validate_messages([{"role": "user", "content": [TEXT]}])

    assert adapt(Flags(capability), messages, {}) is messages


def test_adapt_refuses_an_unknown_part_for_a_text_only_provider() -> None:
    messages = validate_messages([{"role": "user", "content": [{"type": "input_video"}]}])

    with pytest.raises(UnsupportedCapabilityError) as info:
        adapt(Flags(name="text-only"), messages, {})
    assert str(info.value) == (
        "provider 'text-only' does not support content parts, which the request uses"
    )
    assert info.value.capabilities == (PARTS,)
    assert adapt(Flags("vision"), messages, {}) is messages


# The flags providers declare.


def test_base_class_declares_no_capability() -> None:
    class Plain(AsyncGeneratorProvider):
        pass

    for provider in (AsyncGeneratorProvider, Plain, CodeLinkAva):
        assert [getattr(provider, flag) for flag in CAPABILITIES.values()] == [False] * 5


def test_openai_compatible_declares_every_capability_unless_told() -> None:
    default = OpenAICompatible(name="a", base_url="http://127.0.0.1:1/v1")
    without = OpenAICompatible(
        name="b", base_url="http://127.0.0.1:1/v1", supports_tools=False, supports_audio=False
    )

    assert all(getattr(default, flag) for flag in CAPABILITIES.values())
    assert all(getattr(OpenAICompatible, flag) for flag in CAPABILITIES.values())
    assert missing(without, frozenset(ALL)) == ["tools", "audio"]
    assert repr(without).endswith("supports_tools=False, supports_audio=False)")


@pytest.mark.parametrize("flag", list(CAPABILITIES.values()))
def test_openai_compatible_flags_must_be_booleans(flag: str) -> None:
    with pytest.raises(TypeError, match=f"option '{flag}' must be true or false, not str"):
        options: dict[str, Any] = {flag: "false"}
        OpenAICompatible(name="a", base_url="http://127.0.0.1:1/v1", **options)


def test_chain_declares_what_any_member_declares() -> None:
    vision_only = OpenAICompatible(
        name="v",
        base_url="http://127.0.0.1:1/v1",
        supports_tools=False,
        supports_audio=False,
        supports_files=False,
        supports_response_format=False,
    )
    tools = OpenAICompatible(name="t", base_url="http://127.0.0.1:1/v1")
    text_only = FallbackChain([CodeLinkAva])
    mixed = FallbackChain([CodeLinkAva, vision_only])
    nested = FallbackChain([text_only, FallbackChain([vision_only])])

    assert missing(text_only, frozenset(ALL)) == ALL
    assert missing(mixed, frozenset(ALL)) == ["tools", "audio", "files", "response_format"]
    assert missing(nested, frozenset(ALL)) == ["tools", "audio", "files", "response_format"]
    assert missing(FallbackChain([mixed, tools]), frozenset(ALL)) == []
    assert missing(FallbackChain([AudioObject()]), frozenset(ALL)) == [
        "tools",
        "vision",
        "files",
        "response_format",
    ]


class AudioObject(ProviderObject):
    """A provider that is a plain object (no AsyncGeneratorProvider) declaring audio only."""

    supports_audio = True

    def create_async_generator(self, model: str, messages: Any, **kwargs: Any) -> Any:
        raise NotImplementedError
