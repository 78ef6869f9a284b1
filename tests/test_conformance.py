"""The plugin contract, checked on this repository's providers as a plugin author would, and
the checks shown to catch a provider that breaks a rule."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from providerhub import AsyncGeneratorProvider, Messages, MissingCredentialsError, UpstreamError
from providerhub.chat_completions import Completion, parse_events
from providerhub.events import Event
from providerhub.testing import conformance
from providerhub.timeouts import DEFAULT_TIMEOUTS, Timeouts
from providerhub_codelinkava import CodeLinkAva


def codelinkava_at(url: str) -> type[CodeLinkAva]:
    """CodeLinkAva (a class of classmethods) sending to the upstream at `url`."""
    attributes = {"name": "CodeLinkAva", "api_url": url + "/api/chat"}
    return type("CodeLinkAva", (CodeLinkAva,), attributes)


test_conformance = conformance.suite(
    conformance.Target(codelinkava_at, model="gpt-3.5-turbo", name="codelinkava"),
    conformance.of_type("openai", wire="openai"),
)


class Minimal(AsyncGeneratorProvider):
    """A small chat-completions provider keeping every rule; the subclasses break one each."""

    working = True
    needs_auth = True
    models = ("fake-model",)

    def __init__(self, url: str) -> None:
        self.url = url

    def missing_credentials(self) -> str | None:
        return None if os.environ.get("MINIMAL_KEY") else "MINIMAL_KEY is not set"

    def create_event_generator(
        self,
        model: str,
        messages: Messages,
        *,
        timeout: Timeouts = DEFAULT_TIMEOUTS,
        proxy: str | None = None,
        **params: Any,
    ) -> AsyncIterator[Event]:
        key = self.key()
        return self.events(key, {"model": model, "messages": messages}, timeout, proxy)

    def key(self) -> str:
        key = os.environ.get("MINIMAL_KEY")
        if not key:
            raise MissingCredentialsError(self.name, "MINIMAL_KEY")
        return key

    async def events(
        self, key: str, body: dict[str, Any], timeout: Timeouts, proxy: str | None
    ) -> AsyncIterator[Event]:
        from providerhub import http

        headers = {"Authorization": f"Bearer {key}"}
        url = self.url + "/chat/completions"
        try:
            async with http.request(
                self.name, url, json_body=body, headers=headers, timeouts=timeout, proxy=proxy
            ) as response:
                completion, out = Completion(), list[Event]()
                async for batch in http.read_events(response, self.name):
                    try:
                        done = parse_events(batch, completion, self.name, out)
                    finally:
                        for event in out:
                            yield event
                        out.clear()
                    if done:
                        return
        except http.UpstreamHTTPError as exc:  # an upstream may echo the key back
            exc.message = exc.message.replace(key, "<redacted>")
            exc.body = exc.body.replace(key, "<redacted>")
            raise
        raise UpstreamError(self.name, "stream ended before data: [DONE]")


class LeaksItsKey(Minimal):
    async def events(self, key: str, *args: Any) -> AsyncIterator[Event]:
        try:
            async for event in super().events(key, *args):
                yield event
        except UpstreamError as exc:
            raise UpstreamError(self.name, f"{exc} (key {key})") from None


class SwallowsFaults(Minimal):
    async def events(self, *args: Any) -> AsyncIterator[Event]:
        try:
            async for event in super().events(*args):
                yield event
        except UpstreamError:
            return


class ReadsItsKeyLate(Minimal):
    def create_event_generator(self, model: str, messages: Messages, **kwargs: Any) -> Any:
        async def late() -> AsyncIterator[Event]:
            async for event in Minimal.create_event_generator(self, model, messages, **kwargs):
                yield event

        return late()


class SaysWorkingIsOne(Minimal):
    working = 1  # type: ignore[assignment]


def target(provider: type[Minimal]) -> conformance.Target:
    return conformance.Target(provider, key_env="MINIMAL_KEY", name=provider.__name__)


test_minimal_conformance = conformance.suite(target(Minimal))


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
def test_a_broken_rule_fails_its_check(provider: type[Minimal], check: str, message: str) -> None:
    checks = {check.__name__: check for check in conformance.CHECKS}
    with pytest.raises(AssertionError, match=message):
        checks[check](target(provider))
