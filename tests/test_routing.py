"""FallbackChain against real loopback upstreams: the fault matrix, skip rules, retries, the trace.

Members are real providers (CodeLinkAva subclasses pointed at FakeUpstream), so the whole HTTP
path runs. Each fault sits on the first member; the second one is healthy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import providerhub
import pytest
from helpers import BOUND, MakeUpstream
from providerhub import (
    AllProvidersFailedError,
    AsyncGeneratorProvider,
    Attempt,
    ChatStream,
    ConfigError,
    FallbackChain,
    InvalidRequestError,
    MemoryHealthStore,
    Messages,
    ProviderNotFoundError,
    Registry,
    StreamInterruptedError,
    Timeouts,
)
from providerhub.config import parse_config
from providerhub.routing import CONTINUE_PROMPT, options
from providerhub.testing import FakeUpstream, Reply, serve_in_thread
from providerhub_codelinkava import CodeLinkAva
from routing_helpers import FAST, MESSAGES, REFUSED, consume, provider

pytestmark = pytest.mark.usefixtures("fresh_health")


def outcomes(stream: ChatStream | AllProvidersFailedError) -> list[tuple[str, str, str]]:
    return [(a.provider, a.outcome, a.reason) for a in stream.attempts]


async def pair(make: MakeUpstream, fault: Reply) -> tuple[FakeUpstream, FakeUpstream]:
    return await make(fault), await make(Reply.text("Hello", ", ", "world"))


FAULTS = [
    ("http 500", Reply.error(500), "HTTP 500: upstream error", None),
    ("http 503", Reply.error(503, "overloaded"), "HTTP 503: overloaded", None),
    (
        "http 429",
        Reply.error(429, "slow down", retry_after="30"),
        "HTTP 429: slow down",
        None,
    ),
    ("http 401", Reply.error(401, "bad key"), "HTTP 401: bad key", None),
    ("http 403", Reply.error(403, "forbidden"), "HTTP 403: forbidden", None),
    (
        "http 404",
        Reply.error(404, body="no such route"),
        "HTTP 404: no such route",
        None,
    ),
    ("hang before headers", Reply.hang(), "first chunk timeout after 0.3s", None),
    ("hang after headers", Reply.hang_after_chunks(), "first chunk timeout after 0.3s", None),
    (
        "total timeout",
        Reply.hang(),
        "total timeout after 0.3s",
        Timeouts(first_chunk=None, total=0.3),
    ),
    (
        "close before text",
        Reply.close_after_chunks(),
        "connection closed before the response was complete",
        None,
    ),
    ("malformed", Reply.malformed_after_chunks(), "malformed event: '{{not json'", None),
    ("empty", Reply.empty(), "stream ended without any text", None),
    ("slow chunks", Reply.text("a", "b", delay=2.0), "first chunk timeout after 0.3s", None),
    ("keep-alive trickle", Reply.keepalive_trickle(0.02), "first chunk timeout after 0.3s", None),
]


@pytest.mark.parametrize(
    ("fault", "reason", "timeouts"),
    [pytest.param(fault, reason, timeouts, id=label) for label, fault, reason, timeouts in FAULTS],
)
async def test_fault_before_first_chunk_fails_over(
    fake_upstream: MakeUpstream, fault: Reply, reason: str, timeouts: Timeouts | None
) -> None:
    bad, good = await pair(fake_upstream, fault)
    chain = FallbackChain(
        [CodeLinkAva, provider("acme", bad), provider("good", good)],
        timeouts=timeouts or FAST,
        health=MemoryHealthStore(),
    )
    stream = chain.stream("", MESSAGES)
    async with asyncio.timeout(BOUND):
        chunks = [chunk async for chunk in stream]
    assert "".join(chunks) == "Hello, world"
    assert stream.provider == "good"
    assert outcomes(stream) == [
        ("CodeLinkAva", "skipped", "not working"),
        ("acme", "failed", reason.format(url=bad.url + "/api/chat")),
        ("good", "served", ""),
    ]
    assert len(bad.requests) == 1
    assert len(good.requests) == 1
    failed = stream.attempts[1]
    assert isinstance(failed.error, providerhub.UpstreamError)
    assert failed.duration is not None and failed.time_to_first_chunk is None
    served = stream.attempts[2]
    assert served.time_to_first_chunk is not None and served.duration is not None


async def test_refused_connection_fails_over(fake_upstream: MakeUpstream) -> None:
    good = await fake_upstream(Reply.text("ok"))
    chain = FallbackChain([provider("acme"), provider("good", good)], health=MemoryHealthStore())
    stream = chain.stream("gpt-3.5-turbo", MESSAGES)
    assert await consume(stream) == "ok"
    (name, outcome, reason), served = outcomes(stream)
    assert (name, outcome, served) == ("acme", "failed", ("good", "served", ""))
    assert reason == "cannot connect: Connection refused"
    error = stream.attempts[0].error
    assert isinstance(error, providerhub.UpstreamConnectionError) and error.url == REFUSED


@pytest.mark.parametrize(
    "reply",
    [
        Reply.huge_line(300_000),
        Reply.text("Hel", "lo", split=3),
        Reply.text("Hel", "lo", keepalive=True, line_ending="\r\n"),
        Reply.text("", "Hel", "", "lo"),
    ],
    ids=["huge line", "split", "keepalive crlf", "empty deltas"],
)
async def test_awkward_but_valid_streams_are_served_by_the_first(
    fake_upstream: MakeUpstream, reply: Reply
) -> None:
    first, second = await fake_upstream(reply), await fake_upstream(Reply.text("no"))
    chain = FallbackChain([provider("acme", first), provider("good", second)], timeouts=FAST)
    stream = chain.stream("", MESSAGES)
    assert await consume(stream) == "".join(reply.chunks)
    assert outcomes(stream) == [("acme", "served", "")]
    assert second.requests == []


@pytest.mark.parametrize(
    ("fault", "text", "reason"),
    [
        (
            Reply.close_after_chunks("one ", "two "),
            "one two ",
            "connection closed before the response was complete",
        ),
        (Reply.hang_after_chunks("one ", "two "), "one two ", "idle timeout after 0.3s"),
        (Reply.malformed_after_chunks("one "), "one ", "malformed event: '{{not json'"),
    ],
    ids=["cut", "stall", "malformed"],
)
async def test_failure_after_first_chunk_raises_without_restarting(
    fake_upstream: MakeUpstream, fault: Reply, text: str, reason: str
) -> None:
    bad, good = await pair(fake_upstream, fault)
    chain = FallbackChain(
        [provider("acme", bad), provider("good", good)], timeouts=FAST, retries=2, backoff=0.01
    )
    stream = chain.stream("", MESSAGES)
    received: list[str] = []
    with pytest.raises(StreamInterruptedError) as caught:
        async with asyncio.timeout(BOUND):
            async for chunk in stream:
                received.append(chunk)
    assert "".join(received) == text
    error = caught.value
    assert (error.provider, error.text) == ("acme", text)
    assert isinstance(error.__cause__, providerhub.UpstreamError)
    expected = [("acme", "interrupted", reason.format(url=bad.url + "/api/chat"))]
    assert outcomes(stream) == expected
    assert [(a.provider, a.outcome, a.reason) for a in error.attempts] == expected
    assert len(bad.requests) == 1
    assert good.requests == []


async def test_continue_hands_the_answer_over(fake_upstream: MakeUpstream) -> None:
    bad = await fake_upstream(Reply.close_after_chunks("one ", "two "))
    good = await fake_upstream(Reply.text("three."))
    chain = FallbackChain(
        [provider("acme", bad), provider("good", good)], timeouts=FAST, on_interrupt="continue"
    )
    stream = chain.stream("", MESSAGES)
    assert await consume(stream) == "one two three."
    assert stream.provider == "good"
    assert [(a.provider, a.outcome, a.continuation) for a in stream.attempts] == [
        ("acme", "interrupted", False),
        ("good", "served", True),
    ]
    assert good.requests[0].json["messages"] == [
        *MESSAGES,
        {"role": "assistant", "content": "one two "},
        {"role": "user", "content": CONTINUE_PROMPT},
    ]


async def test_continue_with_nobody_left_raises_with_all_text(fake_upstream: MakeUpstream) -> None:
    bad = await fake_upstream(Reply.close_after_chunks("one "))
    also_bad = await fake_upstream(Reply.close_after_chunks("two "))
    chain = FallbackChain(
        [provider("acme", bad), provider("beta", also_bad), provider("gone")],
        timeouts=FAST,
        on_interrupt="continue",
    )
    received: list[str] = []
    with pytest.raises(StreamInterruptedError) as caught:
        async with asyncio.timeout(BOUND):
            async for chunk in chain.stream("", MESSAGES):
                received.append(chunk)
    assert caught.value.text == "".join(received) == "one two "
    assert caught.value.provider == "beta"
    assert [(a.provider, a.outcome) for a in caught.value.attempts] == [
        ("acme", "interrupted"),
        ("beta", "interrupted"),
        ("gone", "failed"),
    ]


async def test_retries_retryable_failures_on_the_same_provider(fake_upstream: MakeUpstream) -> None:
    flaky = await fake_upstream(Reply.error(500), Reply.empty(), Reply.text("third time"))
    chain = FallbackChain([provider("acme", flaky)], retries=2, backoff=0.01, timeouts=FAST)
    stream = chain.stream("", MESSAGES)
    assert await consume(stream) == "third time"
    assert [(a.provider, a.outcome, a.try_number) for a in stream.attempts] == [
        ("acme", "failed", 1),
        ("acme", "failed", 2),
        ("acme", "served", 3),
    ]


async def test_auth_and_rate_limit_with_retry_after_are_not_retried(
    fake_upstream: MakeUpstream,
) -> None:
    denied = await fake_upstream(Reply.error(401), default=Reply.text("never"))
    limited = await fake_upstream(Reply.error(429, retry_after="5"), default=Reply.text("never"))
    good = await fake_upstream(Reply.text("ok"))
    chain = FallbackChain(
        [provider("denied", denied), provider("limited", limited), provider("good", good)],
        retries=3,
        backoff=0.01,
        health=MemoryHealthStore(),
    )
    assert await consume(chain.stream("", MESSAGES)) == "ok"
    assert (len(denied.requests), len(limited.requests)) == (1, 1)


async def test_retries_exhausted_moves_on(fake_upstream: MakeUpstream) -> None:
    bad = await fake_upstream(default=Reply.error(502))
    good = await fake_upstream(Reply.text("ok"))
    chain = FallbackChain(
        [provider("acme", bad), provider("good", good)],
        retries=1,
        backoff=0.01,
        health=MemoryHealthStore(),
    )
    stream = chain.stream("", MESSAGES)
    assert await consume(stream) == "ok"
    assert [(a.provider, a.outcome, a.try_number) for a in stream.attempts] == [
        ("acme", "failed", 1),
        ("acme", "failed", 2),
        ("good", "served", 1),
    ]


async def test_not_working_provider_gets_no_request(fake_upstream: MakeUpstream) -> None:
    would_answer = await fake_upstream(default=Reply.text("from the broken one"))
    good = await fake_upstream(Reply.text("ok"))
    broken = provider("broken", would_answer, working=False)
    chain = FallbackChain([broken, provider("good", good)])
    stream = chain.stream("", MESSAGES)
    assert await consume(stream) == "ok"
    assert would_answer.requests == []
    assert outcomes(stream)[0] == ("broken", "skipped", "not working")
    forced = FallbackChain([broken, provider("good", good)], ignore_working=True)
    assert await consume(forced.stream("", MESSAGES)) == "from the broken one"
    assert len(would_answer.requests) == 1


async def test_model_and_credential_skips(fake_upstream: MakeUpstream) -> None:
    never = await fake_upstream(default=Reply.text("never"))
    good = await fake_upstream(Reply.text("ok"))

    def no_key(cls: type[CodeLinkAva]) -> str:
        return "ACME_API_KEY is not set"

    locked = provider("locked", never, needs_auth=True, supports_gpt_4=True)
    locked.missing_credentials = classmethod(no_key)  # type: ignore[assignment]
    chain = FallbackChain(
        [provider("old", never), locked, provider("good", good, supports_gpt_4=True)]
    )
    stream = chain.stream("gpt-4", MESSAGES)
    assert await consume(stream) == "ok"
    assert outcomes(stream) == [
        ("old", "skipped", "model 'gpt-4' not supported"),
        ("locked", "skipped", "missing credentials: ACME_API_KEY is not set"),
        ("good", "served", ""),
    ]
    assert never.requests == []


async def test_all_failed_lists_every_provider(fake_upstream: MakeUpstream) -> None:
    bad = await fake_upstream(Reply.error(500, "boom"))
    chain = FallbackChain([CodeLinkAva, provider("acme", bad), provider("gone")], timeouts=FAST)
    with pytest.raises(AllProvidersFailedError) as caught:
        await consume(chain.stream("", MESSAGES))
    lines = str(caught.value).splitlines()
    assert lines[0] == "all providers failed:"
    assert lines[1:3] == [
        "  CodeLinkAva: skipped (not working)",
        "  acme: HTTP 500: boom",
    ]
    assert lines[3].startswith("  gone: cannot connect: ")
    assert [a.outcome for a in caught.value.attempts] == ["skipped", "failed", "failed"]


@pytest.mark.parametrize(
    ("model", "messages", "message"),
    [
        ("", [], "messages must not be empty"),
        ("", [{"role": "user"}], "messages[0] has no 'content'"),
        ("", "hi", "messages must be a list"),
        (None, MESSAGES, "model must be a string"),
    ],
)
async def test_bad_input_is_rejected_before_any_request(
    fake_upstream: MakeUpstream, model: Any, messages: Any, message: str
) -> None:
    upstream = await fake_upstream(default=Reply.text("never"))
    chain = FallbackChain([provider("acme", upstream)])
    with pytest.raises(InvalidRequestError, match=message.replace("[", r"\[").replace("]", r"\]")):
        chain.stream(model, messages)
    with pytest.raises(InvalidRequestError):
        chain.create_async_generator(model, messages)
    assert upstream.requests == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"retries": -1}, "retries"),
        ({"hedge_after": 0}, "hedge_after"),
        ({"order": "fastest"}, "order"),
        ({"on_interrupt": "retry"}, "on_interrupt"),
        ({"timeouts": "soon"}, "timeout"),
    ],
)
def test_bad_chain_options(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        FallbackChain([CodeLinkAva], **kwargs)


def test_chain_needs_providers() -> None:
    with pytest.raises(InvalidRequestError, match="at least one provider"):
        FallbackChain([])
    with pytest.raises(InvalidRequestError, match="is not a provider"):
        FallbackChain([object()])  # type: ignore[list-item]


class _Plugin:
    """A plugin object: registers providers and records finished attempts."""

    def __init__(self, *providers: object) -> None:
        self.providers = providers
        self.finished: list[Attempt] = []

    @providerhub.hookimpl
    def register_providers(self, register: Callable[[Any], None]) -> None:
        for item in self.providers:
            register(item)

    @providerhub.hookimpl
    def attempt_finished(self, attempt: Attempt) -> None:
        self.finished.append(attempt)


async def test_names_resolve_through_registry_and_hook_sees_attempts(
    fake_upstream: MakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    bad = await fake_upstream(Reply.error(500))
    good = await fake_upstream(Reply.text("ok"))
    plugin = _Plugin(CodeLinkAva, provider("acme", bad), provider("good", good))
    registry = Registry(plugins=[plugin], entry_points=False)
    chain = FallbackChain("codelinkava,ACME,good", registry=registry, name="main")
    assert [member.name for member in chain.members] == ["CodeLinkAva", "acme", "good"]
    with caplog.at_level(logging.INFO, logger="providerhub.routing"):
        stream = chain.stream("", MESSAGES)
        assert await consume(stream) == "ok"
    assert plugin.finished == stream.attempts
    lines = [r.getMessage() for r in caplog.records if r.name == "providerhub.routing"]
    assert len(lines) == 3
    assert lines[0] == "main: CodeLinkAva: skipped (not working)"
    assert lines[1].startswith("main: acme: failed (HTTP 500")
    assert lines[2].startswith("main: good: served [first chunk ")
    with pytest.raises(ProviderNotFoundError, match="did you mean"):
        FallbackChain(["acmee"], registry=registry)


def test_metadata_derive_from_members() -> None:
    old = provider("old")
    new = provider("new", supports_gpt_4=True, models=("mini",))
    chain = FallbackChain([CodeLinkAva, old, new])
    assert chain.working and chain.name == "chain(CodeLinkAva,old,new)"
    assert chain.supports_model("gpt-4") and chain.supports_model("mini")
    assert not chain.supports_model("claude")
    assert not FallbackChain([CodeLinkAva]).working
    assert FallbackChain([CodeLinkAva], ignore_working=True).working
    assert isinstance(chain, providerhub.Provider)
    assert chain.missing_credentials() is None


async def test_nested_chains(fake_upstream: MakeUpstream) -> None:
    bad = await fake_upstream(Reply.error(500))
    good = await fake_upstream(Reply.text("nested ok"))
    inner = FallbackChain([provider("acme", bad), provider("good", good)], name="inner")
    empty_inner = FallbackChain([CodeLinkAva], name="dead", ignore_working=False)
    outer = FallbackChain([empty_inner, inner], name="outer", timeouts=FAST)
    stream = outer.stream("", MESSAGES)
    assert await consume(stream) == "nested ok"
    assert outcomes(stream) == [("dead", "skipped", "not working"), ("inner", "served", "via good")]
    failing_inner = FallbackChain([provider("acme2")], name="inner2")
    outer2 = FallbackChain([failing_inner, inner], name="outer2")
    good.script(Reply.text("second"))
    bad.script(Reply.error(500))
    stream = outer2.stream("", MESSAGES)
    assert await consume(stream) == "second"
    assert stream.attempts[0].outcome == "failed"
    assert stream.attempts[0].reason.startswith("all providers failed: acme2: cannot connect")
    assert isinstance(stream.attempts[0].error, AllProvidersFailedError)


async def test_create_async_and_create_completion(fake_upstream: MakeUpstream) -> None:
    good = await fake_upstream(Reply.text("a", "b"), Reply.text("c"))
    chain = FallbackChain([provider("acme"), provider("good", good)])
    assert await chain.create_async("", MESSAGES) == "ab"
    chunks = chain.create_async_generator("", MESSAGES)
    assert isinstance(chunks, ChatStream)
    assert await consume(chunks) == "c"


def test_create_completion_sync() -> None:
    with serve_in_thread(Reply.text("sy", "nc"), Reply.text("str", "eam")) as good:
        chain = FallbackChain([provider("acme"), provider("good", good)])
        assert list(chain.create_completion("", MESSAGES)) == ["sync"]
        assert "".join(chain.create_completion("", MESSAGES, stream=True)) == "stream"


class _BrokenHook:
    @providerhub.hookimpl
    def attempt_finished(self, attempt: Attempt) -> None:
        raise RuntimeError("metrics backend down")


async def test_a_failing_hook_does_not_break_the_stream(
    fake_upstream: MakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    good = await fake_upstream(Reply.text("ok"))
    registry = Registry(plugins=[_BrokenHook()], entry_points=False)
    chain = FallbackChain([provider("good", good)], registry=registry)
    assert await consume(chain.stream("", MESSAGES)) == "ok"
    assert "an attempt_finished hook failed" in caplog.text


def test_replace_changes_only_what_it_is_given() -> None:
    health = MemoryHealthStore()
    first, second = provider("first"), provider("second")
    chain = FallbackChain([first, second], retries=1, hedge_after=0.5, health=health, name="c")
    copy = chain.replace(retries=3, providers=[second])
    assert copy is not chain
    assert [member.name for member in copy.members] == ["second"]
    assert (copy.retries, copy.hedge_after, copy.health, copy.name) == (3, 0.5, health, "c")
    assert (chain.retries, [m.name for m in chain.members]) == (1, ["first", "second"])
    with pytest.raises(TypeError, match=r"unknown arguments: \['retires'\]"):
        chain.replace(retires=2)


@pytest.mark.parametrize(
    ("name", "bad", "toml"),
    [
        ("order", "fastest", '"fastest"'),
        ("shuffle", "yes", '"yes"'),
        ("ignore_working", 1, "1"),
        ("retries", -1, "-1"),
        ("backoff", -1, "-1"),
        ("timeouts", 0, "0"),
        ("hedge_after", 0, "0"),
        ("on_interrupt", "retry", '"retry"'),
        ("deadline", 0, "0"),
    ],
)
def test_the_chain_and_the_config_check_options_by_one_table(
    name: str, bad: object, toml: str
) -> None:
    problem = options.problem(name, bad)
    assert problem is not None
    with pytest.raises(InvalidRequestError) as chain_error:
        FallbackChain([provider("a")], **{name: bad})
    assert str(chain_error.value) == f"{name} must be {problem.expected}, not {bad!r}"
    with pytest.raises(ConfigError) as config_error:
        parse_config(f'[chains.c]\nproviders = ["a"]\n{name} = {toml}\n')
    assert f"'{name}' must be {problem.expected}, not " in str(config_error.value)


async def test_a_chain_validates_messages_once_and_each_member_gets_its_own_copy(
    message_checks: list[str],
) -> None:
    """Checked once (the chain's `stream()`), not again by each member's guard; a member that
    modifies its messages cannot change what the next member or a retry is sent."""
    seen: list[list[dict[str, Any]]] = []

    class Meddler(AsyncGeneratorProvider):
        working = True
        supports_vision = True  # takes content parts as given

        @classmethod
        async def create_async_generator(
            cls, model: str, messages: Messages, **params: Any
        ) -> AsyncIterator[str]:
            seen.append([dict(message) for message in messages])
            messages[0]["content"] = "changed by a member"  # type: ignore[index]
            raise providerhub.UpstreamError(cls.name, "fails after meddling")
            yield ""

    class Good(Meddler):
        name = "good"

        @classmethod
        async def create_async_generator(
            cls, model: str, messages: Messages, **params: Any
        ) -> AsyncIterator[str]:
            seen.append([dict(message) for message in messages])
            yield "ok"

    parts = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    chain = FallbackChain([Meddler, Good], retries=1, backoff=0, health=MemoryHealthStore())
    assert await chain.stream("", parts).text() == "ok"
    assert message_checks == ["messages[0]"]
    assert seen == [parts, parts, parts], "each attempt is sent the caller's messages"
    assert parts[0]["content"] == [{"type": "text", "text": "hi"}]
