"""Nested chains say what happened inside them; the hook fires for chains built from objects."""

from __future__ import annotations

import providerhub
import providerhub.registry
import pytest
from helpers import MakeUpstream
from providerhub import Attempt, FallbackChain, MemoryHealthStore, Registry
from providerhub.testing import Reply
from routing_helpers import MESSAGES, consume, provider


async def test_nested_chain_keeps_its_trace_and_names_the_real_provider(
    fake_upstream: MakeUpstream,
) -> None:
    bad = await fake_upstream(default=Reply.error(500))
    good = await fake_upstream(default=Reply.text("ok"))
    health = MemoryHealthStore()
    inner = FallbackChain(
        [provider("acme", bad), provider("good", good)], name="inner", health=health
    )
    middle = FallbackChain([inner], name="middle", health=health)
    outer = FallbackChain([middle], name="outer", health=health)
    stream = outer.stream("", MESSAGES)
    assert await consume(stream) == "ok"
    assert stream.provider == "good"
    assert stream.route == "outer > middle > inner > good"
    [top] = stream.attempts
    assert (top.provider, top.outcome, top.reason) == ("middle", "served", "via good")
    assert top.time_to_first_chunk is not None and top.duration is not None
    [inner_attempt] = top.inner
    assert (inner_attempt.provider, inner_attempt.outcome) == ("inner", "served")
    assert [(a.provider, a.outcome) for a in inner_attempt.inner] == [
        ("acme", "failed"),
        ("good", "served"),
    ]
    assert health.latency("middle") is None and health.latency("inner") is None
    assert outer.latency() == middle.latency() == inner.latency() == health.latency("good")


async def test_latency_order_uses_a_nested_chains_estimate(fake_upstream: MakeUpstream) -> None:
    health = MemoryHealthStore()
    health.first_chunk("fast", 0.01)
    health.first_chunk("slow", 0.5)
    inner = FallbackChain([provider("slow")], name="inner", health=health)
    chain = FallbackChain([inner, provider("fast")], order="latency", health=health)
    assert [member.name for member in chain.ordered()] == ["fast", "inner"]


class _Recorder:
    def __init__(self) -> None:
        self.finished: list[Attempt] = []

    @providerhub.hookimpl
    def attempt_finished(self, attempt: Attempt) -> None:
        self.finished.append(attempt)


async def test_hooks_of_the_registry_given_hear_a_chain_built_from_objects(
    fake_upstream: MakeUpstream,
) -> None:
    good = await fake_upstream(default=Reply.text("ok"))
    recorder = _Recorder()
    registry = Registry(plugins=[recorder], entry_points=False)
    members = [provider("gone"), provider("good", good)]
    chain = FallbackChain(members, registry=registry, health=MemoryHealthStore())
    stream = chain.stream("", MESSAGES)
    assert await consume(stream) == "ok"
    assert recorder.finished == stream.attempts
    assert [(a.provider, a.outcome) for a in recorder.finished] == [
        ("gone", "failed"),
        ("good", "served"),
    ]


async def test_a_chain_of_objects_without_a_registry_scans_no_plugins(
    fake_upstream: MakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No hidden entry-point scan: without `registry=` nobody's hooks are called."""
    good = await fake_upstream(default=Reply.text("ok"))
    monkeypatch.setattr(providerhub.registry, "_default", None)
    chain = FallbackChain([provider("good", good)], health=MemoryHealthStore())
    assert chain.registry is None
    assert await consume(chain.stream("", MESSAGES)) == "ok"
    assert providerhub.registry._default is None
