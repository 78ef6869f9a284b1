"""The plugin contract, checked on this repository's providers as a plugin author would, and
the checks shown to catch a provider that breaks a rule."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from providerhub import Messages, UpstreamError
from providerhub.events import Event
from providerhub.testing import conformance
from providerhub_codelinkava import CodeLinkAva
from providerhub_template import OllamaChat


def codelinkava_at(url: str) -> type[CodeLinkAva]:
    """CodeLinkAva (a class of classmethods) sending to the upstream at `url`."""
    attributes = {"name": "CodeLinkAva", "api_url": url + "/api/chat"}
    return type("CodeLinkAva", (CodeLinkAva,), attributes)


test_conformance = conformance.suite(
    conformance.Target(codelinkava_at, model="gpt-3.5-turbo", name="codelinkava"),
    conformance.of_type("openai", wire="openai"),
    conformance.of_type("anthropic", wire="anthropic"),
)


class LeaksItsKey(OllamaChat):
    async def _events(self, body: Any, key: str | None, *args: Any) -> AsyncIterator[Event]:
        try:
            async for event in super()._events(body, key, *args):
                yield event
        except UpstreamError as exc:
            raise UpstreamError(self.name, f"{exc} (key {key})") from None


class SwallowsFaults(OllamaChat):
    async def _events(self, *args: Any) -> AsyncIterator[Event]:
        try:
            async for event in super()._events(*args):
                yield event
        except UpstreamError:
            return


class ReadsItsKeyLate(OllamaChat):
    def create_event_generator(self, model: str, messages: Messages, **kwargs: Any) -> Any:
        async def late() -> AsyncIterator[Event]:
            async for event in OllamaChat.create_event_generator(self, model, messages, **kwargs):
                yield event

        return late()


class SaysWorkingIsOne(OllamaChat):
    working = 1  # type: ignore[assignment]


def target(provider: type[OllamaChat]) -> conformance.Target:
    """The template's provider (examples/plugin-template, which passes) broken one way."""

    def make(url: str) -> OllamaChat:
        return provider(name=provider.__name__, base_url=url, api_key_env="BROKEN_KEY")

    return conformance.Target(make, wire="ndjson", key_env="BROKEN_KEY", name=provider.__name__)


@pytest.mark.parametrize(
    ("provider", "check", "message"),
    [
        (LeaksItsKey, "secrets", "the key is in UpstreamError: LeaksItsKey: LeaksItsKey: HTTP 401"),
        (
            SwallowsFaults,
            "faults",
            "a refused connection: UpstreamConnectionError expected, got no error",
        ),
        (ReadsItsKeyLate, "validation_before_io", "no key: not refused at the call"),
        (SaysWorkingIsOne, "metadata", "working must be a bool, not 1"),
    ],
)
def test_a_broken_rule_fails_its_check(
    provider: type[OllamaChat], check: str, message: str
) -> None:
    checks = {check.__name__: check for check in conformance.CHECKS}
    with pytest.raises(AssertionError, match=message):
        checks[check](target(provider))
