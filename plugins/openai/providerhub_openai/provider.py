"""OpenAICompatible: one configured OpenAI-compatible chat-completions endpoint.

OpenAI, Groq, OpenRouter, Together, DeepInfra and local servers (Ollama's /v1, vLLM, llama.cpp
server, LM Studio) all speak this API, so one class configured per endpoint covers them. Keys are
given by environment variable name (read at call time) or, in code only, as a literal; either
way they never appear in a repr, an error or a log line. `api_key_env` fills `Authorization:
Bearer`; `headers_env` fills any other header (Azure's `api-key`, Google's `x-goog-api-key`).

The request carries the whole chat-completions shape as given (content parts, tool history,
tools, tool_choice, response_format, ...); the answer comes back as providerhub events (text,
tool-call deltas, refusal, logprobs), with usage asked for on every streamed call.
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
from providerhub.capabilities import CAPABILITIES
from providerhub.chat_completions import (
    Completion,
    CompletionStream,
    parse_completion,
    parse_events,
)
from providerhub.endpoint import options
from providerhub.endpoint.call import Format, choose, post
from providerhub.endpoint.credentials import Credentials
from providerhub.endpoint.provider import EndpointProvider
from providerhub.events import Event
from providerhub.pool import MAX_CONNECTIONS, Pool
from providerhub.timeouts import DEFAULT_TIMEOUTS

log = logging.getLogger("providerhub.openai")


class OpenAICompatible(EndpointProvider):
    """A chat-completions endpoint at `base_url` (requests go to `base_url + "/chat/completions"`).

    `models` lists what it serves (empty: any model); `default_model` is used when a call gives
    none. Extra keyword arguments of a call are request parameters (temperature, max_tokens,
    tools, tool_choice, response_format, ...); `stream=False` asks for one JSON completion
    instead of SSE. The stream of a call (`stream()`) reports finish_reason and usage.
    `stream_usage` (default True) adds
    `stream_options.include_usage` to streamed requests so usage is always known; turn it off
    for a server that refuses that field. A non-streamed request never carries
    `stream_options` (OpenAI refuses it there; the completion reports usage anyway). The
    capability flags (`supports_tools`, `supports_vision`, `supports_audio`, `supports_files`,
    `supports_response_format`) default to True; set one False for an endpoint that lacks it,
    and chains skip it for such requests.
    `headers_env` maps header names to environment variable names (`{"api-key":
    "AZURE_OPENAI_API_KEY"}`), read at every call like `api_key_env`.
    """

    working = True
    supports_tools = True
    supports_vision = True
    supports_audio = True
    supports_files = True
    supports_response_format = True
    stream_usage = True

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        api_key: str | None = None,
        api_key_env: str | None = None,
        models: Sequence[str] = (),
        default_model: str | None = None,
        headers: Mapping[str, str] | None = None,
        headers_env: Mapping[str, str] | None = None,
        max_connections: int = MAX_CONNECTIONS,
        organization: str | None = None,
        working: bool = True,
        supports_stream: bool = True,
        supports_message_history: bool = True,
        supports_system_message: bool = True,
        supports_gpt_35_turbo: bool = False,
        supports_gpt_4: bool = False,
        supports_tools: bool = True,
        supports_vision: bool = True,
        supports_audio: bool = True,
        supports_files: bool = True,
        supports_response_format: bool = True,
        stream_usage: bool = True,
    ) -> None:
        self.name = options.string("name", name)
        self.base_url = options.base_url(base_url)
        self.url = self.base_url
        self.endpoint = self.base_url + "/chat/completions"
        self.credentials = Credentials(
            header="Authorization",
            prefix="Bearer ",
            api_key=api_key,
            api_key_env=api_key_env,
            headers=headers,
            headers_env=headers_env,
            key_example="OPENAI_API_KEY",
            header_example="AZURE_OPENAI_API_KEY",
        )
        """The key and extra headers (`api_key_env`, `headers`, `headers_env`), shown redacted."""
        self.api_key_env = self.credentials.env
        self.headers = self.credentials.headers
        self.headers_env = self.credentials.headers_env
        self.needs_auth = self.credentials.needs_auth
        self.pool = Pool(options.max_connections(max_connections))
        self.models = options.strings("models", models)
        self.default_model = options.optional_string("default_model", default_model)
        self.organization = options.optional_string("organization", organization)
        flags = {
            "working": working,
            "supports_stream": supports_stream,
            "supports_message_history": supports_message_history,
            "supports_system_message": supports_system_message,
            "supports_gpt_35_turbo": supports_gpt_35_turbo,
            "supports_gpt_4": supports_gpt_4,
            "supports_tools": supports_tools,
            "supports_vision": supports_vision,
            "supports_audio": supports_audio,
            "supports_files": supports_files,
            "supports_response_format": supports_response_format,
            "stream_usage": stream_usage,
        }
        for flag, value in options.flags(flags).items():
            setattr(self, flag, value)

    def __repr__(self) -> str:
        parts = [f"name={self.name!r}", f"base_url={self.base_url!r}"]
        parts += self.credentials.shown_key()
        if self.models:
            parts.append(f"models={list(self.models)!r}")
        if self.default_model:
            parts.append(f"default_model={self.default_model!r}")
        parts += self.credentials.shown_headers()
        if not self.working:
            parts.append("working=False")
        parts += [f"{flag}=False" for flag in CAPABILITIES.values() if not getattr(self, flag)]
        return f"OpenAICompatible({', '.join(parts)})"

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
        """Check the call (model, credentials, options) now, then stream events lazily.

        The stream reports the upstream's `finish_reason` and `usage` once exhausted.
        """
        model, stream = choose(
            self.name, model, self.default_model, self.supports_model, params, self.supports_stream
        )
        headers = self._request_headers(stream)
        body = {"model": model, "messages": messages, "stream": stream, **params}
        if stream and self.stream_usage:
            asked = params.get("stream_options")
            if asked is not None and not isinstance(asked, Mapping):
                raise InvalidRequestError(
                    f"stream_options must be an object, not {options.kind(asked)}"
                )
            body["stream_options"] = {**(asked or {}), "include_usage": True}
        elif not stream:
            body.pop("stream_options", None)  # OpenAI refuses it (400) on a non-streamed call
        completion = Completion()
        return CompletionStream(self._call(body, headers, timeout, proxy, completion), completion)

    def _request_headers(self, stream: bool) -> dict[str, str]:
        headers = {"Accept": "text/event-stream" if stream else "application/json"}
        if self.organization:
            headers["OpenAI-Organization"] = self.organization
        return {**headers, **self.credentials.sent(self.name)}

    def _call(
        self,
        body: dict[str, Any],
        headers: dict[str, str],
        timeouts: Timeouts,
        proxy: str | None,
        completion: Completion,
    ) -> AsyncIterator[Event]:
        answer = Format(
            body=lambda raw: parse_completion(raw, completion, self.name),
            batch=lambda events, out: parse_events(events, completion, self.name, out),
            finished=lambda: completion.finish_reason is not None,
            end="data: [DONE]",
        )
        return post(
            self.name,
            self.endpoint,
            body,
            headers,
            timeouts=timeouts,
            proxy=proxy,
            credentials=self.credentials,
            answer=answer,
            log=log,
            pool=self.pool,
        )
