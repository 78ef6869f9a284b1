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
import os
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from providerhub import (
    AsyncGeneratorProvider,
    EmptyStreamError,
    InvalidRequestError,
    Messages,
    MissingCredentialsError,
    ModelNotSupportedError,
    Timeouts,
    UpstreamConnectionError,
    UpstreamError,
)
from providerhub.capabilities import CAPABILITIES
from providerhub.chat_completions import (
    Completion,
    CompletionStream,
    parse_completion,
    parse_events,
)
from providerhub.events import Event
from providerhub.redaction import REDACTED, is_secret_header, redact_headers
from providerhub.timeouts import DEFAULT_TIMEOUTS

if TYPE_CHECKING:
    from providerhub.http import UpstreamHTTPError

from . import options

log = logging.getLogger("providerhub.openai")


class OpenAICompatible(AsyncGeneratorProvider):
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
        if api_key is not None and api_key_env is not None:
            raise ValueError("give either 'api_key' or 'api_key_env', not both")
        self._api_key = None if api_key is None else _Secret(options.key("api_key", api_key))
        self.api_key_env = options.env_name(api_key_env) if api_key_env is not None else None
        self.models = options.strings("models", models)
        self.default_model = options.optional_string("default_model", default_model)
        extra = options.headers(headers)
        self.headers = redact_headers(extra)
        """Extra request headers; values of secret-bearing ones read "<redacted>"."""
        self._secret_headers = {
            key: _Secret(value) for key, value in extra.items() if is_secret_header(key)
        }
        self.headers_env = options.headers_env(headers_env)
        """Headers whose values are read at call time from environment variables, by name."""
        bearer = api_key is not None or api_key_env is not None
        options.check_overlap(extra, self.headers_env, bearer)
        self.needs_auth = bearer or bool(self.headers_env)
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
        for flag, value in flags.items():
            if not isinstance(value, bool):
                raise TypeError(f"option {flag!r} must be true or false, not {options.kind(value)}")
            setattr(self, flag, value)

    def __repr__(self) -> str:
        parts = [f"name={self.name!r}", f"base_url={self.base_url!r}"]
        if self.api_key_env:
            parts.append(f"api_key_env={self.api_key_env!r}")
        elif self._api_key is not None:
            parts.append(f"api_key={REDACTED}")
        if self.models:
            parts.append(f"models={list(self.models)!r}")
        if self.default_model:
            parts.append(f"default_model={self.default_model!r}")
        if self.headers:
            parts.append(f"headers={self.headers!r}")
        if self.headers_env:
            parts.append(f"headers_env={self.headers_env!r}")
        if not self.working:
            parts.append("working=False")
        parts += [f"{flag}=False" for flag in CAPABILITIES.values() if not getattr(self, flag)]
        return f"OpenAICompatible({', '.join(parts)})"

    def supports_model(self, model: str) -> bool:
        """With `models` configured, those (and the default); with none, any model.

        "" means the default model, so it is supported only when one is configured.
        """
        if not model:
            return self.default_model is not None
        return not self.models or model in self.models or model == self.default_model

    def missing_credentials(self) -> str | None:
        """Why no usable key is configured ("environment variable X is not set"), or None."""
        for variable in self._variables():
            value = os.environ.get(variable)
            if not value:
                return f"environment variable {variable} is not set"
            if options.CONTROL.search(value):
                return options.unusable(f"environment variable {variable}")
        return None

    def _variables(self) -> list[str]:
        """Every environment variable a request reads, in the order they are checked."""
        first = [self.api_key_env] if self.api_key_env else []
        return first + list(self.headers_env.values())

    def _read(self, variable: str) -> str:
        """The value of `variable`, refused by name (never echoed) when unset or unusable."""
        value = os.environ.get(variable)
        if not value:
            raise MissingCredentialsError(self.name, variable)
        if options.CONTROL.search(value):
            raise InvalidRequestError(
                f"{self.name}: {options.unusable(f'environment variable {variable}')}"
            )
        return value

    def create_event_generator(
        self,
        model: str,
        messages: Messages,
        *,
        timeout: Timeouts = DEFAULT_TIMEOUTS,
        proxy: str | None = None,
        **params: Any,
    ) -> CompletionStream:
        """Check the call (model, credentials, options) now, then stream events lazily.

        The stream reports the upstream's `finish_reason` and `usage` once exhausted.
        """
        model = model or self.default_model or ""
        if not model:
            raise InvalidRequestError(
                f"{self.name}: no model given and no default_model configured"
            )
        if not self.supports_model(model):
            raise ModelNotSupportedError(self.name, model)
        stream = params.pop("stream", self.supports_stream)
        if not isinstance(stream, bool):
            raise InvalidRequestError(f"stream must be true or false, not {options.kind(stream)}")
        stream = stream and self.supports_stream
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
        key = None if self._api_key is None else self._api_key.value
        if self.api_key_env:
            key = self._read(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        if self.organization:
            headers["OpenAI-Organization"] = self.organization
        headers.update(self.headers)
        headers.update((name, secret.value) for name, secret in self._secret_headers.items())
        headers.update((name, self._read(variable)) for name, variable in self.headers_env.items())
        return headers

    async def _call(
        self,
        body: dict[str, Any],
        headers: dict[str, str],
        timeouts: Timeouts,
        proxy: str | None,
        completion: Completion,
    ) -> AsyncIterator[Event]:
        from providerhub import http

        stream = body["stream"]
        log.debug("%s: POST %s model=%s stream=%s", self.name, self.endpoint, body["model"], stream)
        produced = done = False
        try:
            async with http.request(
                self.name,
                self.endpoint,
                json_body=body,
                headers=headers,
                timeouts=timeouts,
                proxy=proxy,
            ) as response:
                if not stream or response.content_type == "application/json":
                    answer = parse_completion(await response.read(), completion, self.name)
                    if not answer:
                        raise EmptyStreamError(self.name)
                    for event in answer:
                        yield event
                    return
                batches = http.read_events(response, self.name)
                out: list[Event] = []
                try:
                    async for events in batches:
                        failure: UpstreamError | None = None
                        try:
                            done = parse_events(events, completion, self.name, out)
                        except UpstreamError as exc:
                            failure = exc
                        for event in out:
                            yield event
                        if failure is not None:
                            raise failure
                        produced = produced or bool(out)
                        out.clear()
                        if done:
                            break
                finally:
                    await cast("AsyncGenerator[Any, None]", batches).aclose()
        except http.UpstreamHTTPError as exc:
            secrets = [
                value
                for key, value in headers.items()
                if is_secret_header(key) or key in self.headers_env
            ]
            _scrub(exc, secrets, self.headers_env)
            raise
        if not done and completion.finish_reason is None:
            raise UpstreamConnectionError(
                self.name, "stream ended before data: [DONE]", url=self.endpoint
            )
        if not produced:
            raise EmptyStreamError(self.name)


class _Secret:
    """A key held in memory: its repr and str hide it, so dumping the provider cannot leak it."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return REDACTED

    __str__ = __repr__


def _scrub(error: UpstreamHTTPError, secrets: list[str], hidden: Mapping[str, str]) -> None:
    """Remove keys from `error`, should the upstream have echoed one in its error body.

    Headers named in `hidden` (from `headers_env`) are redacted from the recorded request too,
    even when their names do not look secret to the shared rule that http.py applies.
    """
    for secret in secrets:
        for token in {secret, secret.removeprefix("Bearer ")}:
            error.message = error.message.replace(token, REDACTED)
            error.body = error.body.replace(token, REDACTED)
    names = {name.lower() for name in hidden if not is_secret_header(name)}
    if names:
        from multidict import CIMultiDict, CIMultiDictProxy

        info = error.request_info
        shown = CIMultiDict(
            (key, REDACTED if key.lower() in names else value)
            for key, value in info.headers.items()
        )
        error.request_info = info._replace(headers=CIMultiDictProxy(shown))
