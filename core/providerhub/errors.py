"""The error taxonomy: every error providerhub raises, in one tree.

    ProviderHubError
    ├── PluginError                  a plugin failed to load (strict mode only)
    ├── ConfigError (ValueError)     providerhub.toml missing, unreadable or invalid
    ├── ProviderNotFoundError (LookupError)
    │   └── TargetNotFoundError      no alias, chain or provider answers to a name (gateway 404)
    ├── ProviderNotWorkingError
    ├── ModelNotSupportedError (ValueError)
    ├── InvalidRequestError (ValueError)      raised before any network I/O
    │   └── UnsupportedCapabilityError        tools, images, ... the provider cannot send
    ├── MissingCredentialsError
    ├── CoolingDownError             the health store refuses the provider for now
    ├── AtCapacityError              the provider has as many requests in flight as it may take
    ├── UpstreamError                an upstream misbehaved; `retryable` says if a retry may help
    │   ├── UpstreamHTTPError        an HTTP error status (also aiohttp.ClientResponseError)
    │   ├── UpstreamTimeoutError (TimeoutError)   a phase: connect, first_chunk, idle, total
    │   ├── UpstreamConnectionError (ConnectionError)
    │   ├── MalformedStreamError (ValueError)
    │   └── EmptyStreamError
    ├── DeadlinePassed (TimeoutError)         a chain call's own deadline: nobody to blame
    ├── SpuriousCancellation (RuntimeError)   a provider raised CancelledError unasked (a bug)
    ├── StreamInterruptedError       failed after text was delivered; `text` has it
    └── AllProvidersFailedError      a chain's every member skipped or failed; `attempts`

Upstream faults are classified so routing can decide what to retry or skip. `UpstreamHTTPError`
subclasses `aiohttp.ClientResponseError`, so it lives in `providerhub.http`, the module that
imports aiohttp; import it from there or as `providerhub.UpstreamHTTPError` (looked up lazily).
This module imports only `suggest` (the "did you mean" rule), so importing it stays free of
aiohttp and no module it is imported by is imported back.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from . import suggest

if TYPE_CHECKING:
    from .attempt import Attempt

_E = TypeVar("_E", bound=BaseException)

Phase = Literal["connect", "first_chunk", "idle", "total"]
"""The timeout phases of a streaming call (see `providerhub.timeouts.Timeouts`)."""

__all__ = [
    "AllProvidersFailedError",
    "AtCapacityError",
    "ConfigError",
    "CoolingDownError",
    "DeadlinePassed",
    "EmptyStreamError",
    "InvalidRequestError",
    "MalformedStreamError",
    "MissingCredentialsError",
    "ModelNotSupportedError",
    "PluginError",
    "ProviderHubError",
    "ProviderNotFoundError",
    "ProviderNotWorkingError",
    "SpuriousCancellation",
    "StreamInterruptedError",
    "TargetNotFoundError",
    "UnsupportedCapabilityError",
    "UpstreamConnectionError",
    "UpstreamError",
    "UpstreamTimeoutError",
    "os_error_text",
]


class ProviderHubError(Exception):
    """Root of every error providerhub raises.

    Subclasses have their own constructor arguments, so a pickled error (e.g. one crossing a
    process pool) is rebuilt from its `args` and attributes without calling `__init__`.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return _restore, (type(self), self.args), dict(self.__dict__)


class PluginError(ProviderHubError):
    """A plugin could not be loaded (raised only in strict mode; otherwise recorded)."""

    def __init__(self, plugin: str, distribution: str | None, reason: str) -> None:
        self.plugin = plugin
        self.distribution = distribution
        self.reason = reason
        where = f" (from {distribution})" if distribution else ""
        super().__init__(f"plugin {plugin!r}{where}: {reason}")


class ConfigError(ProviderHubError, ValueError):
    """The config file is missing, unreadable or invalid.

    The message names the file, the table (`[providers.local]`) and the key at fault. It never
    repeats the value of a secret-looking key; other wrong values are shown only when short
    (numbers, strings of up to 40 characters), to make the problem plain.
    """

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        table: str | None = None,
        key: str | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.table = table
        self.key = key
        self.reason = message
        where = [part for part in (self.path, f"[{table}]" if table else None) if part]
        super().__init__(f"{' '.join(where)}: {message}" if where else message)


class ProviderNotFoundError(ProviderHubError, LookupError):
    """No provider is registered under the requested name."""

    def __init__(self, name: str, suggestions: Sequence[str] = ()) -> None:
        self.name = name
        self.suggestions = tuple(suggestions)
        super().__init__(f"no provider named {name!r}{suggest.hint(self.suggestions)}")


class TargetNotFoundError(ProviderNotFoundError):
    """No alias, configured chain or provider answers to a name, or none of the providers it
    names serves the model asked for; the message says what exists or what may be meant. The
    CLI exits with code 3, the gateway answers 404 `model_not_found`."""

    def __init__(self, name: str, message: str, suggestions: Sequence[str] = ()) -> None:
        self.name = name
        self.suggestions = tuple(suggestions)
        LookupError.__init__(self, message)


class ProviderNotWorkingError(ProviderHubError):
    """The provider is marked not working and the caller did not ask to ignore that."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        super().__init__(
            f"provider {provider!r} is marked not working; "
            "pass ignore_working=True (CLI: --ignore-working) to use it anyway"
        )


class ModelNotSupportedError(ProviderHubError, ValueError):
    """The provider does not serve the requested model."""

    def __init__(self, provider: str, model: str) -> None:
        self.provider = provider
        self.model = model
        super().__init__(f"provider {provider!r} does not support model {model!r}")


class InvalidRequestError(ProviderHubError, ValueError):
    """The request (messages, model, options) is malformed; raised before any network I/O."""


class UnsupportedCapabilityError(InvalidRequestError):
    """The request uses something the provider cannot send (tools, images, ...); nothing was
    sent, so the feature is never silently dropped."""

    def __init__(self, provider: str, capabilities: Sequence[str]) -> None:
        self.provider = provider
        self.capabilities = tuple(capabilities)
        super().__init__(
            f"provider {provider!r} does not support {', '.join(self.capabilities)}, "
            "which the request uses"
        )


class MissingCredentialsError(ProviderHubError):
    """The provider needs a key and none is usable; names the variable, never a value.

    `reason` says what is wrong when it is more than an unset `env_var` (the provider's own
    `missing_credentials()`).
    """

    def __init__(
        self, provider: str, env_var: str | None = None, *, reason: str | None = None
    ) -> None:
        self.provider = provider
        self.env_var = env_var
        if reason is None and env_var:
            reason = f"environment variable {env_var} is not set"
        self.reason = reason
        super().__init__(
            f"provider {provider!r} needs credentials" + (f": {reason}" if reason else "")
        )


class CoolingDownError(ProviderHubError):
    """The health store keeps a provider out for now: its circuit is open after failures, or
    it asked for a wait (HTTP 429 Retry-After). A value `HealthStore.admit` returns, kept on
    the skipped Attempt, so callers tell a rate limit from an outage without reading words;
    the message keeps the last real failure ("HTTP 500: model crashed"), so a client that only
    sees skips still learns what is wrong.
    """

    def __init__(
        self,
        provider: str,
        cause: str,
        *,
        rate_limited: bool = False,
        seconds_left: float | None = None,
        last_failure: str = "",
    ) -> None:
        self.provider = provider
        self.cause = cause
        """Why the circuit is open: "rate limited, Retry-After 5s", "circuit open after ..."."""
        self.rate_limited = rate_limited
        """True when the provider itself asked for the wait (a 429)."""
        self.seconds_left = seconds_left
        """Seconds until the probe may go; None when the probe is already in flight."""
        self.last_failure = last_failure
        """The reason line of the provider's latest failure ("" when none was recorded)."""
        why = f"{cause}; last failure: {last_failure}" if last_failure else cause
        if seconds_left is None:
            super().__init__(f"cooling down, probe in flight ({why})")
        else:
            super().__init__(f"cooling down, {seconds_left:.1f}s left ({why})")


class AtCapacityError(ProviderHubError):
    """The provider has as many requests in flight as it may take now, so a chain skips it:
    its `max_concurrent` (`unproven` False), or, while its health is unproven (it has not
    answered since its last failure, or ever), as many as it takes failures to open its
    circuit (`unproven` True). A value `HealthStore.admit` returns, kept on the skipped
    Attempt; unlike a cooldown it ends as soon as a request in flight does.
    """

    def __init__(self, provider: str, limit: int, *, unproven: bool = False) -> None:
        self.provider = provider
        self.limit = limit
        """How many requests were in flight: the limit reached."""
        self.unproven = unproven
        why = " while its health is unproven" if unproven else ", its max_concurrent"
        super().__init__(f"at capacity: {limit} in flight{why}")


class UpstreamError(ProviderHubError):
    """An upstream misbehaved. `retryable` says whether the same request may succeed later.

    The text names the provider and what went wrong, with the upstream's own message when it
    sent one, never the upstream's URL or address (a gateway's clients must not learn internal
    hosts): an error that knows the URL keeps it in `url`, and the provider's log line of the
    failed request shows it.
    """

    retryable: bool = True

    def __init__(self, provider: str, message: str) -> None:
        self.provider = provider
        super().__init__(f"{provider}: {message}")


class UpstreamTimeoutError(UpstreamError, TimeoutError):
    """A timeout phase (connect, first_chunk, idle, total) passed without progress."""

    def __init__(self, provider: str, phase: Phase, seconds: float | None) -> None:
        self.phase = phase
        self.seconds = seconds
        label = phase.replace("_", " ")
        super().__init__(provider, f"{label} timeout after {seconds:g}s")


class UpstreamConnectionError(UpstreamError, ConnectionError):
    """The connection could not be made (refused, DNS, TLS) or was cut; `url`, when known,
    is where it was going (kept out of the message)."""

    def __init__(self, provider: str, message: str, *, url: str | None = None) -> None:
        self.url = url
        super().__init__(provider, message)


def os_error_text(exc: OSError) -> str:
    """An OS error in the words of its errno ("Connection refused"), never its own text, which
    may carry the address ("Connect call failed ('10.0.0.5', 443)"); without an errno, its
    type's name."""
    return os.strerror(exc.errno) if exc.errno and exc.errno > 0 else type(exc).__name__


class MalformedStreamError(UpstreamError, ValueError):
    """The upstream sent something that is not the wire format it promised."""

    def __init__(self, provider: str, message: str, *, excerpt: str = "") -> None:
        self.excerpt = excerpt
        super().__init__(provider, f"{message}: {excerpt!r}" if excerpt else message)


class EmptyStreamError(UpstreamError):
    """The upstream ended its answer without producing any text."""

    def __init__(self, provider: str) -> None:
        super().__init__(provider, "stream ended without any text")


class DeadlinePassed(ProviderHubError, TimeoutError):
    """The whole-call deadline of a chain passed: no provider is to blame."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"deadline passed ({seconds:g}s)")


class SpuriousCancellation(ProviderHubError, RuntimeError):
    """A provider raised CancelledError although nobody cancelled it: a provider bug, which
    counts against its health like any other failure of its own."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        super().__init__(f"{provider} raised CancelledError without being cancelled")


class StreamInterruptedError(ProviderHubError):
    """A stream failed after text was delivered; it is never silently restarted.

    `text` is what the consumer already received, so nothing is lost and nothing duplicated.
    """

    def __init__(
        self, provider: str, text: str, attempts: Sequence[Attempt], cause: BaseException
    ) -> None:
        self.provider = provider
        self.text = text
        self.attempts = list(attempts)
        self.__cause__ = cause
        super().__init__(
            f"stream from {provider} interrupted after {len(text)} characters: {cause}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        rebuild, args, state = super().__reduce__()
        return rebuild, args, {**state, "__cause__": self.__cause__}


class AllProvidersFailedError(ProviderHubError):
    """Every provider of a chain was skipped or failed; the message has a line for each."""

    def __init__(self, attempts: Sequence[Attempt]) -> None:
        self.attempts = list(attempts)
        lines = [f"  {attempt.summary()}" for attempt in self.attempts] or ["  (no providers)"]
        super().__init__("all providers failed:\n" + "\n".join(lines))


def _restore(cls: type[_E], args: tuple[Any, ...]) -> _E:
    """Unpickle an error: a bare instance with its `args`; pickle then restores its attributes."""
    error = cls.__new__(cls)
    error.args = args
    return error
