"""AnthropicProvider: Anthropic's native Messages API as a providerhub provider.

Callers speak chat-completions (messages, tools, tool_choice, ...); `request.py` translates the
request, `response.py` the streamed or JSON answer back into providerhub events, finish reasons
and OpenAI-shaped usage, `errors.py` what an in-stream error means. Keys are given by
environment variable name (read at every call) or, in code only, as a literal; either way they
never appear in a repr, an error or a log line.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from providerhub import (
    InvalidRequestError,
    Messages,
    Timeouts,
)
from providerhub.chat_completions import CompletionStream
from providerhub.endpoint.call import Format, choose, post
from providerhub.endpoint.credentials import Credentials
from providerhub.endpoint.options import base_url as check_base_url
from providerhub.endpoint.options import flags as check_flags
from providerhub.endpoint.options import max_connections as max_connections_option
from providerhub.endpoint.options import optional_string, string, strings
from providerhub.endpoint.provider import EndpointProvider
from providerhub.events import Event
from providerhub.pool import MAX_CONNECTIONS, Pool
from providerhub.timeouts import DEFAULT_TIMEOUTS

from . import options
from .request import request_body
from .response import Answer, parse_events, parse_message

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MAX_TOKENS", "DEFAULT_VERSION", "AnthropicProvider"]

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
"""Sent when a call gives neither max_tokens nor max_completion_tokens (Anthropic requires
one): the largest output every Claude model accepts, so the default is never refused."""

log = logging.getLogger("providerhub.anthropic")


class AnthropicProvider(EndpointProvider):
    """The Messages API at `base_url` (the API root: requests go to `base_url + "/v1/messages"`).

    `api_key_env` names the variable whose value is sent as `x-api-key` (a literal `api_key` is
    for code only); `anthropic_version` is the `anthropic-version` header; `headers` and
    `headers_env` add others (e.g. `anthropic-beta`). `models` lists what it serves (empty: any
    model); `default_model` is used when a call gives none; `max_tokens` when a call gives no
    limit. Extra keyword arguments of a call are chat-completions parameters, translated
    (`providerhub_anthropic.request`); `stream=False` asks for one JSON message instead of SSE.
    The stream of a call reports finish_reason and usage. Tools, images and files (PDF, plain
    text) are supported; set a flag False to have chains skip such requests. Audio and
    structured output (response_format) are not: Anthropic has no equivalent.
    """

    working = True
    supports_tools = True
    supports_vision = True
    supports_files = True

    def __init__(
        self,
        *,
        name: str,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        api_key_env: str | None = None,
        anthropic_version: str = DEFAULT_VERSION,
        models: Sequence[str] = (),
        default_model: str | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        headers: Mapping[str, str] | None = None,
        headers_env: Mapping[str, str] | None = None,
        max_connections: int = MAX_CONNECTIONS,
        working: bool = True,
        supports_stream: bool = True,
        supports_message_history: bool = True,
        supports_system_message: bool = True,
        supports_tools: bool = True,
        supports_vision: bool = True,
        supports_files: bool = True,
    ) -> None:
        self.name = string("name", name)
        self.base_url = check_base_url(base_url)
        if self.base_url.endswith("/v1"):
            raise ValueError(
                "option 'base_url' is the API root, without '/v1' (requests go to "
                "base_url + '/v1/messages')"
            )
        self.url = self.base_url
        self.endpoint = self.base_url + "/v1/messages"
        self.credentials = Credentials(
            header="x-api-key",
            prefix="",
            api_key=api_key,
            api_key_env=api_key_env,
            headers=headers,
            headers_env=headers_env,
            key_example="ANTHROPIC_API_KEY",
            header_example="ANTHROPIC_BETA",
            check=options.check_headers,
        )
        """The key and extra headers (`api_key_env`, `headers`, `headers_env`), shown redacted."""
        self.api_key_env = self.credentials.env
        self.headers = self.credentials.headers
        self.headers_env = self.credentials.headers_env
        self.needs_auth = self.credentials.needs_auth
        self.pool = Pool(max_connections_option(max_connections))
        self.anthropic_version = options.version(anthropic_version)
        self.models = strings("models", models)
        self.default_model = optional_string("default_model", default_model)
        self.max_tokens = options.positive("max_tokens", max_tokens)
        flags = {
            "working": working,
            "supports_stream": supports_stream,
            "supports_message_history": supports_message_history,
            "supports_system_message": supports_system_message,
            "supports_tools": supports_tools,
            "supports_vision": supports_vision,
            "supports_files": supports_files,
        }
        for flag, value in check_flags(flags).items():
            setattr(self, flag, value)

    def __repr__(self) -> str:
        parts = [f"name={self.name!r}"]
        if self.base_url != DEFAULT_BASE_URL:
            parts.append(f"base_url={self.base_url!r}")
        shown: list[tuple[str, object, object]] = [
            ("anthropic_version", self.anthropic_version, DEFAULT_VERSION),
            ("models", list(self.models), []),
            ("default_model", self.default_model, None),
            ("max_tokens", self.max_tokens, DEFAULT_MAX_TOKENS),
        ]
        parts += self.credentials.shown_key() + self.credentials.shown_headers()
        parts += [f"{name}={value!r}" for name, value, default in shown if value != default]
        flags = ("working", "supports_tools", "supports_vision", "supports_files")
        parts += [f"{flag}=False" for flag in flags if not getattr(self, flag)]
        return f"AnthropicProvider({', '.join(parts)})"

    def create_event_generator(
        self,
        model: str,
        messages: Messages,
        /,
        *,
        timeout: Timeouts = DEFAULT_TIMEOUTS,
        proxy: str | None = None,
        **params: Any,
    ) -> CompletionStream:
        """Check the call (model, credentials, translation) now, then stream events lazily.

        The stream reports the finish_reason and usage once exhausted.
        """
        model, stream = choose(
            self.name, model, self.default_model, self.supports_model, params, self.supports_stream
        )
        headers = self._request_headers(stream)
        try:
            body = request_body(model, messages, params, max_tokens=self.max_tokens, stream=stream)
        except InvalidRequestError as exc:
            raise InvalidRequestError(f"{self.name}: {exc}") from None
        answer = Answer()
        return CompletionStream(
            self._call(body, headers, timeout, proxy, answer), answer.completion
        )

    def _request_headers(self, stream: bool) -> dict[str, str]:
        return {
            "Accept": "text/event-stream" if stream else "application/json",
            "anthropic-version": self.anthropic_version,
            **self.credentials.sent(self.name),
        }

    def _call(
        self,
        body: dict[str, Any],
        headers: dict[str, str],
        timeouts: Timeouts,
        proxy: str | None,
        answer: Answer,
    ) -> AsyncIterator[Event]:
        def batch(events: list[str], out: list[Event]) -> bool:
            parse_events(events, answer, self.name, out)
            return answer.done

        reader = Format(
            body=lambda raw: parse_message(raw, answer, self.name),
            batch=batch,
            finished=lambda: answer.done,
            end="message_stop",
        )
        return post(
            self.name,
            self.endpoint,
            body,
            headers,
            timeouts=timeouts,
            proxy=proxy,
            credentials=self.credentials,
            answer=reader,
            log=log,
            pool=self.pool,
        )
