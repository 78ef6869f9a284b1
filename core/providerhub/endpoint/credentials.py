"""The key and extra headers of an endpoint: held hidden, read at call time, kept out of errors.

`Credentials` is what the `api_key`/`api_key_env`, `headers` and `headers_env` options make:
the key header (`Authorization: Bearer <key>`, `x-api-key: <key>`, ...) filled from a literal
or from an environment variable read at every call, literal extra headers (secret-looking
values hidden from reprs), and headers filled from environment variables. A missing or
unusable variable is named, never echoed. Every secret value sent (the key, with and without
its prefix, secret-bearing or secret-looking headers, every `headers_env` value) is handed to
`providerhub.redaction.remember` as it is sent, so the process redacts it wherever text
leaves; `scrub` applies that to an UpstreamError, should the upstream echo a secret back in an
error body or an in-stream error.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from ..errors import InvalidRequestError, MissingCredentialsError, UpstreamError
from ..redaction import (
    REDACTED,
    is_secret_header,
    is_secret_value,
    redact_error,
    redact_headers,
    remember,
)
from . import options

__all__ = ["Credentials", "HeaderCheck"]

HeaderCheck = Callable[[Mapping[str, str], Mapping[str, str]], None]
"""A plugin's own rule on the checked `headers` and `headers_env` (e.g. a header another
option fills), run before the shared overlap check; it raises ValueError."""


class _Secret:
    """A key held in memory: its repr and str hide it, so dumping the provider cannot leak it."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return REDACTED

    __str__ = __repr__


class Credentials:
    """What a request sends to authenticate, and what may be shown of it.

    `header` is the key's header and `prefix` what precedes the key there (`"Bearer "` or
    `""`); `key_example` and `header_example` are variable names the option messages show.
    """

    __slots__ = ("_key", "_secret_headers", "env", "header", "headers", "headers_env", "prefix")

    def __init__(
        self,
        *,
        header: str,
        prefix: str,
        api_key: str | None,
        api_key_env: str | None,
        headers: Mapping[str, str] | None,
        headers_env: Mapping[str, str] | None,
        key_example: str,
        header_example: str,
        check: HeaderCheck | None = None,
    ) -> None:
        if api_key is not None and api_key_env is not None:
            raise ValueError("give either 'api_key' or 'api_key_env', not both")
        self.header = header
        self.prefix = prefix
        self._key = None if api_key is None else _Secret(options.key("api_key", api_key))
        self.env = None if api_key_env is None else options.env_name(api_key_env, key_example)
        """The variable whose value is the key (`api_key_env`), or None."""
        extra = options.headers(headers)
        self.headers = redact_headers(extra)
        """Extra request headers; values of secret-bearing ones read "<redacted>"."""
        self._secret_headers = {
            name: _Secret(value) for name, value in extra.items() if is_secret_value(name, value)
        }
        self.headers_env = options.headers_env(headers_env, header_example)
        """Headers whose values are read at call time from environment variables, by name."""
        if check is not None:
            check(extra, self.headers_env)
        options.check_overlap(extra, self.headers_env, header, prefix if self.keyed else None)

    @property
    def keyed(self) -> bool:
        """Whether the key header is filled from `api_key` or `api_key_env`."""
        return self._key is not None or self.env is not None

    @property
    def needs_auth(self) -> bool:
        return self.keyed or bool(self.headers_env)

    def shown_key(self) -> list[str]:
        """The repr fragment of `api_key_env` (or `api_key`, as "<redacted>"), if given."""
        if self.env:
            return [f"api_key_env={self.env!r}"]
        return [] if self._key is None else [f"api_key={REDACTED}"]

    def shown_headers(self) -> list[str]:
        """The repr fragments of `headers` (secret values redacted) and `headers_env`."""
        parts = []
        if self.headers:
            parts.append(f"headers={self.headers!r}")
        if self.headers_env:
            parts.append(f"headers_env={self.headers_env!r}")
        return parts

    def missing(self) -> str | None:
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
        return ([self.env] if self.env else []) + list(self.headers_env.values())

    def sent(self, provider: str) -> dict[str, str]:
        """The headers to send now: the key header, then the literal extra headers, then those
        from `headers_env`. MissingCredentialsError or InvalidRequestError names a variable
        that is unset or unusable."""
        headers = {}
        if self.env:
            key: str | None = self._read(self.env, provider)
        else:
            key = None if self._key is None else self._key.value
        if key:
            headers[self.header] = self.prefix + key
        headers.update(self.headers)
        headers.update((name, secret.value) for name, secret in self._secret_headers.items())
        headers.update(
            (name, self._read(variable, provider)) for name, variable in self.headers_env.items()
        )
        secrets = [
            value
            for name, value in headers.items()
            if is_secret_value(name, value) or name in self.headers_env
        ]
        remember(*secrets, *(value.removeprefix(self.prefix) for value in secrets))
        return headers

    @staticmethod
    def _read(variable: str, provider: str) -> str:
        value = os.environ.get(variable)
        if not value:
            raise MissingCredentialsError(provider, variable)
        if options.CONTROL.search(value):
            raise InvalidRequestError(
                f"{provider}: {options.unusable(f'environment variable {variable}')}"
            )
        return value

    def scrub(self, error: UpstreamError) -> None:
        """Redact every secret sent (remembered by `sent`) from the text of `error`: its
        message, its str and repr, an HTTP error's body and headers.

        Headers `headers_env` fills are redacted from an HTTP error's recorded request too,
        even when their names do not look secret to the rule providerhub.http applies.
        """
        redact_error(error)
        hidden = {name.lower() for name in self.headers_env if not is_secret_header(name)}
        if hidden:
            _hide_request_headers(error, hidden)


def _hide_request_headers(error: UpstreamError, hidden: set[str]) -> None:
    """Redact the headers named in `hidden` from an HTTP error's recorded request."""
    from ..http import UpstreamHTTPError  # imports aiohttp: an error means a request was made

    if not isinstance(error, UpstreamHTTPError):
        return
    from multidict import CIMultiDict, CIMultiDictProxy

    info = error.request_info
    shown = CIMultiDict(
        (name, REDACTED if name.lower() in hidden else value)
        for name, value in info.headers.items()
    )
    error.request_info = info._replace(headers=CIMultiDictProxy(shown))
