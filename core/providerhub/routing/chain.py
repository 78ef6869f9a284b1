"""FallbackChain: try providers in turn until one answers, and say exactly what happened.

A chain skips providers that cannot serve (not working, model not supported, missing
credentials, cooling down, at capacity: `Registry.set_max_concurrent`, or an unproven
provider's trials, `providerhub.routing.health`), fails over on anything that goes wrong
before the first chunk (retrying retryable faults when asked), may hedge a slow provider with
the next one, and never restarts an answer that was already flowing: a failure after the
first chunk raises `StreamInterruptedError` with the text delivered, or, with
`on_interrupt="continue"`, asks the next provider to continue it (never an answer that had
begun a tool call or a refusal, which a continuation of the text cannot finish: that raises).
A provider lacking a capability the request needs (tools, images, ...) is skipped. Every
provider considered leaves an `Attempt` in the trace, one log line on logger
"providerhub.routing" and, for a chain with a registry, a call of the registry's
`attempt_finished` hooks.

The chain is the policy: it validates the request once and freezes what a call needs into a
`Plan`; the call (`providerhub.routing.call`) does the work and keeps the trace.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .. import capabilities
from ..errors import InvalidRequestError, UnsupportedCapabilityError
from ..messages import Messages, check_messages, validate_model
from ..provider import (
    TRANSPORT_OPTIONS,
    AsyncGeneratorProvider,
    Provider,
    request_params,
    transport_options,
)
from ..stream import EventStream
from ..timeouts import Timeouts
from . import options
from .call import Call
from .health import HealthStore, default_health_store
from .options import OnInterrupt, Order
from .plan import CONTINUE_PROMPT, Member, Plan, Request
from .stream import ChatStream

if TYPE_CHECKING:
    from ..registry import Registry

__all__ = ["CALL_OPTIONS", "CONTINUE_PROMPT", "FallbackChain", "OnInterrupt", "Order"]

CALL_OPTIONS = (*TRANSPORT_OPTIONS, "deadline")
"""Keywords of `FallbackChain.stream()` that say how to run the call, not what to ask: the
transport options every provider takes, and the whole call's `deadline`."""


class FallbackChain(AsyncGeneratorProvider):
    """A provider made of providers, tried in order until one answers.

    `providers` are names (looked up in `registry`, by default the installed plugins) or
    provider objects, chains included. The registry's `attempt_finished` hooks hear every
    attempt; a chain of objects given no `registry` calls no hooks (and never scans the
    installed plugins behind the caller's back). Metadata derive from the members when the chain is
    built: it works if any member works and supports a model if any member does. `timeouts`
    (seconds or `Timeouts`; None leaves each member its own defaults) apply to each attempt;
    `retries` is how many times a retryable failure is retried on the same provider (jittered
    exponential backoff from `backoff` seconds) before moving on. `hedge_after` starts the next
    provider alongside one that has sent nothing for that long. `health` defaults to the store
    shared by the process. `on_interrupt="continue"` hands a cut answer to the next provider
    (one cut after a tool call or a refusal had begun raises StreamInterruptedError instead).
    `deadline` (seconds, also a per-call keyword of `stream()`) bounds the whole call: once it
    has passed no attempt starts and the running one is cut.
    """

    guarded = False

    def __init__(
        self,
        providers: Iterable[str | Provider | type[Any]] | str,
        *,
        registry: Registry | None = None,
        order: Order = "given",
        shuffle: bool = False,
        ignore_working: bool = False,
        retries: int = 0,
        backoff: float = 0.1,
        timeouts: Timeouts | float | Mapping[str, float] | None = None,
        hedge_after: float | None = None,
        health: HealthStore | None = None,
        on_interrupt: OnInterrupt = "raise",
        deadline: float | None = None,
        name: str | None = None,
    ) -> None:
        items = providers.split(",") if isinstance(providers, str) else list(providers)
        if not items:
            raise InvalidRequestError("a chain needs at least one provider")
        options.check(
            order=order,
            shuffle=shuffle,
            ignore_working=ignore_working,
            retries=retries,
            backoff=backoff,
            timeouts=timeouts,
            hedge_after=hedge_after,
            on_interrupt=on_interrupt,
            deadline=deadline,
        )
        if registry is None and any(isinstance(item, str) for item in items):
            from ..registry import default_registry

            registry = default_registry()
        self.registry = registry
        self.members: tuple[Provider, ...] = tuple(_resolve(item, registry) for item in items)
        self.order: Order = "shuffle" if shuffle else order
        self.ignore_working = ignore_working
        self.retries = retries
        self.backoff = backoff
        self.timeouts = options.timeouts(timeouts)
        self.hedge_after = hedge_after
        self.health: HealthStore = health if health is not None else default_health_store()
        self.on_interrupt: OnInterrupt = on_interrupt
        self.deadline = deadline
        self.name = name or f"chain({','.join(member.name for member in self.members)})"
        self._derive_metadata()

    def replace(self, **changes: Any) -> FallbackChain:
        """A copy of this chain with some constructor arguments (`providers` too) changed."""
        arguments: dict[str, Any] = {
            "providers": self.members,
            "registry": self.registry,
            "order": self.order,
            "ignore_working": self.ignore_working,
            "retries": self.retries,
            "backoff": self.backoff,
            "timeouts": self.timeouts,
            "hedge_after": self.hedge_after,
            "health": self.health,
            "on_interrupt": self.on_interrupt,
            "deadline": self.deadline,
            "name": self.name,
        }
        unknown = set(changes) - set(arguments)
        if unknown:
            raise TypeError(f"FallbackChain.replace() got unknown arguments: {sorted(unknown)}")
        return FallbackChain(**{**arguments, **changes})

    def _derive_metadata(self) -> None:
        members = self.members

        def any_of(flag: str, default: bool = False) -> bool:
            return any(bool(getattr(member, flag, default)) for member in members)

        self.url = None
        self.working = any_of("working") or self.ignore_working
        self.supports_stream = any_of("supports_stream", True)
        self.supports_message_history = any_of("supports_message_history", True)
        self.supports_system_message = any_of("supports_system_message", True)
        self.supports_gpt_35_turbo = any_of("supports_gpt_35_turbo")
        self.supports_gpt_4 = any_of("supports_gpt_4")
        for flag in capabilities.CAPABILITIES.values():
            setattr(self, flag, any_of(flag))
        self.needs_auth = all(bool(getattr(member, "needs_auth", False)) for member in members)
        self.models = tuple(
            dict.fromkeys(model for member in members for model in getattr(member, "models", ()))
        )
        self.default_model = None

    def supports_model(self, model: str) -> bool:
        """Whether any member serves `model`."""
        return any(member.supports_model(model) for member in self.members)

    def missing_credentials(self) -> str | None:
        """Why no member can authenticate, or None when at least one can (or needs nothing)."""
        reasons = []
        for member in self.members:
            if not getattr(member, "needs_auth", False):
                return None
            why = member.missing_credentials()
            if why is None:
                return None
            reasons.append(f"{member.name}: {why}")
        return "; ".join(reasons)

    def stream(self, model: str, messages: Messages, /, **kwargs: Any) -> ChatStream:
        """Stream the answer; the request is validated here, before any I/O.

        `timeout` (seconds or Timeouts) overrides the chain's timeouts for each attempt and
        `deadline` (seconds) its whole-call deadline; other keyword arguments go to every member.
        Once the answer has completed, the stream's `finish_reason` and `usage` are those the
        serving provider reported. A request that needs a capability no member declares (tools,
        images, ...) raises UnsupportedCapabilityError here; members lacking it are skipped.
        Transport options (`timeout`, `proxy`) are checked here: a bad one raises
        InvalidRequestError at once instead of failing (and blaming) every member.
        """
        request_params(kwargs)
        model = validate_model(model)
        checked = check_messages(messages)
        timeout = kwargs.pop("timeout", None)
        deadline = kwargs.pop("deadline", self.deadline)
        options.check(deadline=deadline)
        transport_options({"timeout": timeout, "proxy": kwargs.get("proxy")})
        timeouts = self.timeouts if timeout is None else Timeouts.coerce(timeout)
        needs = capabilities.required(checked, kwargs)
        lacking = capabilities.missing(self, needs)
        if lacking:
            raise UnsupportedCapabilityError(self.name, lacking)
        request = Request(model, checked, kwargs, timeouts, needs, deadline)
        return ChatStream(Call(self._plan(), request))

    def _plan(self) -> Plan:
        """What a call needs of this chain, its members in the order the call tries them."""
        registry = self.registry
        return Plan(
            name=self.name,
            members=tuple(
                Member(member, isinstance(member, FallbackChain)) for member in self.ordered()
            ),
            health=self.health,
            ignore_working=self.ignore_working,
            retries=self.retries,
            backoff=self.backoff,
            hedge_after=self.hedge_after,
            on_interrupt=self.on_interrupt,
            report=None if registry is None else registry.attempt_finished,
            limit=None if registry is None else registry.max_concurrent,
        )

    def create_async_generator(
        self, model: str, messages: Messages, /, **kwargs: Any
    ) -> AsyncIterator[str]:
        """The provider interface: the same as `stream()`."""
        return self.stream(model, messages, **kwargs)

    def create_event_generator(
        self, model: str, messages: Messages, /, **kwargs: Any
    ) -> EventStream:
        """The provider interface for events: `stream(...).events()`."""
        return self.stream(model, messages, **kwargs).events()

    def ordered(self) -> list[Provider]:
        """The members in the order a call tries them.

        "latency" sorts by the health store's estimate of time to first chunk; members with no
        estimate yet come first (in the given order), so they get measured. A nested chain's
        estimate is that of its fastest member, from its own store.
        """
        members = list(self.members)
        if self.order == "shuffle":
            random.shuffle(members)
        elif self.order == "latency":
            members.sort(key=lambda member: self._estimate(member) or 0.0)
        return members

    def latency(self) -> float | None:
        """The lowest time-to-first-chunk estimate among the members, or None without any."""
        estimates = [self._estimate(member) for member in self.members]
        known = [value for value in estimates if value is not None]
        return min(known) if known else None

    def _estimate(self, member: Provider) -> float | None:
        if isinstance(member, FallbackChain):
            return member.latency()
        return self.health.latency(member.name)

    def __repr__(self) -> str:
        return f"FallbackChain({self.name!r}, members={[m.name for m in self.members]!r})"


def _resolve(item: object, registry: Registry | None) -> Provider:
    """A chain member from a name or a provider object."""
    if isinstance(item, str):
        assert registry is not None
        return registry.get(item.strip())
    if not isinstance(item, Provider):
        raise InvalidRequestError(f"{item!r} is not a provider")
    return item
