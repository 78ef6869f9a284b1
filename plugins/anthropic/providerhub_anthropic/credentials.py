"""The key and extra headers of a provider: held hidden, read at call time, kept out of errors.

`Credentials` is what the `api_key`/`api_key_env`, `headers` and `headers_env` options make: the
key header (`x-api-key` here) filled from a literal or an environment variable read at every
call, literal extra headers (secret-looking values hidden from reprs), and headers filled from
environment variables. A missing or unusable variable is named, never echoed; `scrub` removes
any value sent from an UpstreamHTTPError, should the upstream echo it back.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from providerhub import InvalidRequestError, MissingCredentialsError
from providerhub.redaction import REDACTED, is_secret_header, redact_headers

from . import options

if TYPE_CHECKING:
    from providerhub.http import UpstreamHTTPError

__all__ = ["Credentials"]


class _Secret:
    """A key held in memory: its repr and str hide it, so dumping the provider cannot leak it."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return REDACTED

    __str__ = __repr__


class Credentials:
    """What a request sends to authenticate, and what may be shown of it."""

    __slots__ = ("_key", "_secret_headers", "env", "header", "headers", "headers_env")

    def __init__(
        self,
        header: str,
        api_key: str | None,
        api_key_env: str | None,
        headers: Mapping[str, str] | None,
        headers_env: Mapping[str, str] | None,
    ) -> None:
        if api_key is not None and api_key_env is not None:
            raise ValueError("give either 'api_key' or 'api_key_env', not both")
        self.header = header
        self._key = None if api_key is None else _Secret(options.key("api_key", api_key))
        self.env = options.env_name(api_key_env) if api_key_env is not None else None
        extra = options.headers(headers)
        self.headers = redact_headers(extra)
        """Extra request headers; values of secret-bearing ones read "<redacted>"."""
        self._secret_headers = {
            name: _Secret(value) for name, value in extra.items() if is_secret_header(name)
        }
        self.headers_env = options.headers_env(headers_env)
        """Headers whose values are read at call time from environment variables, by name."""
        options.check_overlap(extra, self.headers_env, self.keyed)

    @property
    def keyed(self) -> bool:
        """Whether the key header is filled from `api_key` or `api_key_env`."""
        return self._key is not None or self.env is not None

    @property
    def needs_auth(self) -> bool:
        return self.keyed or bool(self.headers_env)

    def shown(self) -> list[str]:
        """The repr fragments of the options given, secrets as names or "<redacted>"."""
        parts = []
        if self.env:
            parts.append(f"api_key_env={self.env!r}")
        elif self._key is not None:
            parts.append(f"api_key={REDACTED}")
        if self.headers:
            parts.append(f"headers={self.headers!r}")
        if self.headers_env:
            parts.append(f"headers_env={self.headers_env!r}")
        return parts

    def missing(self) -> str | None:
        """Why no usable key is configured ("environment variable X is not set"), or None."""
        variables = ([self.env] if self.env else []) + list(self.headers_env.values())
        for variable in variables:
            value = os.environ.get(variable)
            if not value:
                return f"environment variable {variable} is not set"
            if options.CONTROL.search(value):
                return options.unusable(f"environment variable {variable}")
        return None

    def sent(self, provider: str) -> dict[str, str]:
        """The headers to send now; MissingCredentialsError or InvalidRequestError naming the
        variable that is unset or unusable."""
        headers = {}
        if self.env:
            key: str | None = self._read(self.env, provider)
        else:
            key = None if self._key is None else self._key.value
        if key:
            headers[self.header] = key
        headers.update(self.headers)
        headers.update((name, secret.value) for name, secret in self._secret_headers.items())
        headers.update(
            (name, self._read(variable, provider)) for name, variable in self.headers_env.items()
        )
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

    def scrub(self, error: UpstreamHTTPError, sent: Mapping[str, str]) -> None:
        """Remove every secret value of `sent` from `error`, should the upstream have echoed
        one in its error body.

        Headers `headers_env` fills are redacted from the recorded request too, even when their
        names do not look secret to the rule providerhub.http applies.
        """
        for name, value in sent.items():
            if is_secret_header(name) or name in self.headers_env:
                error.message = error.message.replace(value, REDACTED)
                error.body = error.body.replace(value, REDACTED)
        hidden = {name.lower() for name in self.headers_env if not is_secret_header(name)}
        if hidden:
            from multidict import CIMultiDict, CIMultiDictProxy

            info = error.request_info
            shown = CIMultiDict(
                (name, REDACTED if name.lower() in hidden else value)
                for name, value in info.headers.items()
            )
            error.request_info = info._replace(headers=CIMultiDictProxy(shown))
