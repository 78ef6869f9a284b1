"""CodeLinkAva: the gpt4free provider of that name, ported to providerhub.

Its service is gone, so it is marked `working = False` and chains skip it unless told to
ignore that. The wire format is OpenAI-style SSE (`data: {...choices[0].delta.content...}`,
ending with `data: [DONE]`), read by the shared `providerhub.chat_completions` parser (so
line-oriented variants without blank lines between events are read too); only the text is
streamed. A stream that ends without `[DONE]` is an error: the answer may be truncated.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import providerhub
from providerhub import AsyncGeneratorProvider, Messages, Timeouts
from providerhub.chat_completions import Completion, parse_events
from providerhub.events import Event
from providerhub.timeouts import DEFAULT_TIMEOUTS

__all__ = ["CodeLinkAva", "register_providers"]


class CodeLinkAva(AsyncGeneratorProvider):
    """gpt-3.5-turbo through the CodeLinkAva web app's API."""

    url = "https://ava-ai-ef611.web.app"
    api_url = "https://ava-alpha-api.codelink.io/api/chat"
    supports_gpt_35_turbo = True
    working = False

    @classmethod
    async def create_async_generator(
        cls,
        model: str,
        messages: Messages,
        /,
        *,
        timeout: Timeouts = DEFAULT_TIMEOUTS,
        proxy: str | None = None,
        **params: Any,
    ) -> AsyncIterator[str]:
        from providerhub import http

        headers = {
            "User-Agent": (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                "(KHTML, like Gecko) Chrome/116.0.0.0 Safari/537.36"
            ),
            "Accept": "*/*",
            "Accept-language": (
                "en,fr-FR;q=0.9,fr;q=0.8,es-ES;q=0.7,es;q=0.6,en-US;q=0.5,am;q=0.4,de;q=0.3"
            ),
            "Origin": cls.url,
            "Referer": f"{cls.url}/",
            "Sec-Fetch-Dest": "empty",
            "Sec-Fetch-Mode": "cors",
            "Sec-Fetch-Site": "same-origin",
        }
        data = {"messages": messages, "temperature": 0.6, "stream": True, **params}
        async with (
            http.request(
                cls.name,
                cls.api_url,
                json_body=data,
                headers=headers,
                timeouts=timeout,
                proxy=proxy,
            ) as response,
            aclosing(http.read_data(response, cls.name)) as reads,
        ):
            completion = Completion()
            async for events in reads:
                out: list[Event] = []
                try:
                    done = parse_events(events, completion, cls.name, out)
                except providerhub.UpstreamError:
                    if text := _text(out):
                        yield text
                    raise
                if text := _text(out):
                    yield text
                if done:
                    return
        raise providerhub.UpstreamConnectionError(
            cls.name,
            "stream ended before data: [DONE] (answer may be truncated)",
            url=cls.api_url,
        )


def _text(events: list[Event]) -> str:
    """The text of a batch's events: CodeLinkAva streams text only."""
    return "".join([event for event in events if isinstance(event, str)])


@providerhub.hookimpl
def register_providers(register: Any) -> None:
    """Register CodeLinkAva."""
    register(CodeLinkAva)
