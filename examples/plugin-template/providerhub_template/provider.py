"""OllamaChat: a chat endpoint speaking Ollama's NDJSON (`POST {base_url}/api/chat`).

Each line of the answer is one JSON object: `{"message": {"content": ..., "tool_calls":
[...]}, "done": false}`, then `{"done": true, ...}`. The base class validates the request,
enforces the timeouts and closes the connection when the reader stops; this module builds the
request and turns lines into events, raising a classified error for anything else.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from typing import Any

from providerhub import (
    AsyncGeneratorProvider,
    MalformedStreamError,
    Messages,
    MissingCredentialsError,
    Timeouts,
    UpstreamConnectionError,
    UpstreamError,
)
from providerhub.events import Event, ToolCallDelta
from providerhub.redaction import REDACTED
from providerhub.timeouts import DEFAULT_TIMEOUTS


class OllamaChat(AsyncGeneratorProvider):
    """An Ollama-style endpoint at `base_url`; `api_key_env` names the variable holding a key
    sent as `Authorization: Bearer` (for a server behind an authenticating proxy)."""

    working = True
    supports_tools = True

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        api_key_env: str | None = None,
        default_model: str | None = None,
    ) -> None:
        self.name = name
        self.url = base_url.rstrip("/")
        self.endpoint = self.url + "/api/chat"
        self.api_key_env = api_key_env
        self.needs_auth = api_key_env is not None
        self.default_model = default_model

    def supports_model(self, model: str) -> bool:
        """Any model the server has; "" (the default) when one is configured."""
        return bool(model or self.default_model)

    def missing_credentials(self) -> str | None:
        if self.api_key_env and not os.environ.get(self.api_key_env):
            return f"environment variable {self.api_key_env} is not set"
        return None

    def create_event_generator(
        self,
        model: str,
        messages: Messages,
        /,
        *,
        timeout: Timeouts = DEFAULT_TIMEOUTS,
        proxy: str | None = None,
        **params: Any,
    ) -> AsyncIterator[Event]:
        """Check the key now, before any I/O; stream the answer lazily."""
        key = None
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise MissingCredentialsError(self.name, self.api_key_env)
        body = {"model": model or self.default_model, "messages": messages, **params}
        return self._events({**body, "stream": True}, key, timeout, proxy)

    async def _events(
        self, body: dict[str, Any], key: str | None, timeout: Timeouts, proxy: str | None
    ) -> AsyncIterator[Event]:
        from providerhub import http  # imports aiohttp: only when a request is made

        url = self.endpoint
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        try:
            async with http.request(
                self.name, url, json_body=body, headers=headers, timeouts=timeout, proxy=proxy
            ) as response:
                pending, calls = b"", 0
                while True:
                    chunk = await response.content.readany()
                    *lines, pending = (pending + chunk).split(b"\n")
                    if not chunk:  # the end: what is left is the last line
                        lines.append(pending)
                    for line in lines:
                        events, done = self._parse(line, calls)
                        for event in events:
                            yield event
                        calls += sum(isinstance(event, ToolCallDelta) for event in events)
                        if done:
                            return
                    if not chunk:
                        break
        except http.UpstreamHTTPError as exc:
            if key:  # an upstream may echo the key back in its error
                exc.message = exc.message.replace(key, REDACTED)
                exc.body = exc.body.replace(key, REDACTED)
            raise
        raise UpstreamConnectionError(self.name, "stream ended before its done line", url=url)

    def _parse(self, line: bytes, calls: int) -> tuple[list[Event], bool]:
        """The events of one line (none for a blank keep-alive line), and whether it is the
        last (`"done": true`); `calls` is how many tool calls came before."""
        if not line.strip():
            return [], False
        try:
            data = json.loads(line)
            message = data.get("message") or {}
        except (ValueError, AttributeError):
            raise MalformedStreamError(
                self.name, "not a JSON object", excerpt=line[:80].decode("utf-8", "replace")
            ) from None
        if "error" in data:
            raise UpstreamError(self.name, f"error in stream: {data['error']}")
        events: list[Event] = [message["content"]] if message.get("content") else []
        for index, call in enumerate(message.get("tool_calls") or (), start=calls):
            function = call["function"]
            arguments = json.dumps(function.get("arguments") or {})
            call_id = call.get("id") or f"call_{index}"
            events.append(ToolCallDelta(index, call_id, function["name"], arguments))
        return events, data.get("done") is True
