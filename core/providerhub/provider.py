"""What a provider is: metadata flags plus one streaming call, and the one way to open it.

A provider is either a class whose methods are classmethods (the gpt4free style, e.g.
CodeLinkAva) or a configured instance (e.g. one OpenAI-compatible endpoint). Subclasses of
`AsyncGeneratorProvider` implement `create_async_generator` (text chunks, the seed contract) or
`create_event_generator` (text plus tool calls, refusals, logprobs: `providerhub.events`), as
`(model, messages, /, *, timeout: Timeouts, proxy: str | None = None, **params)`; the base class
derives the other one and wraps the implementation in the guard (`providerhub.guard`), so
every call validates its input and checks the provider's capabilities before any I/O,
enforces the wall-clock timeouts, and raises only classified errors. `stream`, `create_async`
and `create_completion` come for free. `open_stream` opens any provider's answer the same way
for every caller (routing, and through it the CLI and the gateway).

`model` and `messages` are positional-only wherever request parameters come as keywords, so
any parameter name a client sends reaches the upstream; `model=`/`messages=` keywords, and
names an implementation written without `/` would bind to its own arguments, are refused
(`request_params`: InvalidRequestError before I/O), never a TypeError.

An implementation may return a `ChunkStream` (e.g. one that reports `finish_reason` and
`usage`); the `GuardedStream` it comes back as reads those from it. Messages reach it
validated, each attempt its own copy; it must not rely on modifying them.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from types import MethodType
from typing import (
    Any,
    ClassVar,
    Concatenate,
    Generic,
    ParamSpec,
    Protocol,
    TypeGuard,
    TypeVar,
    runtime_checkable,
)

from .bridge import iterate_sync
from .capabilities import adapt
from .errors import (
    InvalidRequestError,
    ProviderHubError,
)
from .events import Event
from .guard import GuardedStream, guard
from .messages import Messages, check_messages, validate_model
from .stream import ChunkStream, EventStream
from .timeouts import Timeouts

__all__ = [
    "TRANSPORT_OPTIONS",
    "AsyncGeneratorProvider",
    "Provider",
    "event_generator",
    "has_base_stream",
    "hybridmethod",
    "is_guarded",
    "open_stream",
    "request_params",
    "transport_options",
]

_GUARD_MARK = "_providerhub_guard"

TRANSPORT_OPTIONS = ("timeout", "proxy")
"""Keyword arguments of every provider call that say how to connect, not what to ask: `timeout`
(seconds or Timeouts) and `proxy` (a URL). Every other keyword is a request parameter."""

RESERVED = frozenset({"model", "messages"})
"""Names that are never request parameters: the call's own positional arguments."""

P = ParamSpec("P")
R = TypeVar("R")
E = TypeVar("E")


class hybridmethod(Generic[P, R]):
    """A method bound to the instance when called on one, and to the class otherwise.

    It lets one base class serve providers that are classes and providers that are instances.
    """

    def __init__(self, func: Callable[Concatenate[Any, P], R]) -> None:
        self.__func__ = func
        self.__doc__ = func.__doc__
        self.__isabstractmethod__ = getattr(func, "__isabstractmethod__", False)

    def __get__(self, obj: object, owner: type | None = None) -> Callable[P, R]:
        return MethodType(self.__func__, owner if obj is None else obj)


@runtime_checkable
class Provider(Protocol):
    """The contract the registry and chains rely on; `AsyncGeneratorProvider` fulfils it."""

    name: str
    working: bool
    supports_stream: bool
    needs_auth: bool

    def supports_model(self, model: str) -> bool: ...

    def missing_credentials(self) -> str | None: ...

    def create_async_generator(
        self, model: str, messages: Messages, /, **kwargs: Any
    ) -> AsyncIterator[str]: ...


class AsyncGeneratorProvider:
    """Base class of providers that stream an answer from an async generator.

    Metadata are class attributes (an instance may override them). `name` defaults to the class
    name. The `supports_*` capability flags (tools, vision, audio, files, response_format; see
    `providerhub.capabilities`) default to False: a request using one is refused before I/O.
    Transport options `timeout` (seconds or `Timeouts`) and `proxy` are keyword arguments of
    every call; other keyword arguments are request parameters for the upstream.
    """

    name: str = ""
    url: str | None = None
    working: bool = False
    supports_stream: bool = True
    supports_message_history: bool = True
    supports_system_message: bool = True
    supports_gpt_35_turbo: bool = False
    supports_gpt_4: bool = False
    needs_auth: bool = False
    supports_tools: bool = False
    supports_vision: bool = False
    supports_audio: bool = False
    supports_files: bool = False
    supports_response_format: bool = False
    models: tuple[str, ...] = ()
    default_model: str | None = None

    guarded: ClassVar[bool] = True
    """Whether calls get per-provider validation and timeouts (a chain does its own)."""
    speaks_events: ClassVar[bool] = False
    """Whether the class implements `create_event_generator` (else `create_async_generator`)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__
        for method in ("create_async_generator", "create_event_generator"):
            impl = cls.__dict__.get(method)
            if impl is not None and cls.guarded and not getattr(impl, _GUARD_MARK, False):
                setattr(cls, method, _guarded(impl, events=method == "create_event_generator"))
        cls.speaks_events = _defines_last(cls, "create_event_generator", "create_async_generator")

    @hybridmethod
    def supports_model(this, /, model: str) -> bool:
        """Whether this provider serves `model` ("" means its default model)."""
        if not model or model == this.default_model or model in this.models:
            return True
        family = model.lower()
        if family.startswith("gpt-3.5"):
            return this.supports_gpt_35_turbo
        if family.startswith("gpt-4"):
            return this.supports_gpt_4
        return False

    @hybridmethod
    def missing_credentials(this, /) -> str | None:
        """Why the provider cannot authenticate (e.g. "OPENAI_API_KEY is not set"), or None."""
        return None

    @hybridmethod
    def create_async_generator(
        this, model: str, messages: Messages, /, **kwargs: Any
    ) -> AsyncIterator[str]:
        """Stream the answer as text chunks (tool calls and other events are left out).

        Subclasses implement this or `create_event_generator`.
        """
        if this.speaks_events:
            return _as_stream(this.create_event_generator(model, messages, **kwargs))
        raise ProviderHubError(f"{this.name} does not implement create_async_generator")

    @hybridmethod
    def create_event_generator(
        this, model: str, messages: Messages, /, **kwargs: Any
    ) -> AsyncIterator[Event]:
        """Stream the answer as events: text (`str`), tool-call deltas, refusal, logprobs.

        A provider that implements only `create_async_generator` streams text events.
        """
        return _events_of(this.create_async_generator(model, messages, **kwargs))

    @hybridmethod
    def stream(this, model: str, messages: Messages, /, **kwargs: Any) -> ChunkStream:
        """Stream the answer; the request is validated now, before any I/O.

        Iterating the returned stream yields text; its `events()` every event. It is closed
        early with `aclose()` or `async with`; its `finish_reason` and `usage` are None unless
        the provider reports them (a subclass returns a ChunkStream subclass that does).
        """
        return _as_stream(this.create_event_generator(model, messages, **kwargs))

    @hybridmethod
    async def create_async(this, model: str, messages: Messages, /, **kwargs: Any) -> str:
        """The whole answer as one string."""
        return "".join(
            [chunk async for chunk in this.create_async_generator(model, messages, **kwargs)]
        )

    @hybridmethod
    def create_completion(
        this, model: str, messages: Messages, /, stream: bool = False, **kwargs: Any
    ) -> Iterator[str]:
        """Synchronous iterator of chunks (one joined chunk unless `stream`).

        Usable with or without a running event loop: inside one, it runs in a worker thread.
        """
        validate_model(model)
        checked = check_messages(messages)
        transport_options(kwargs)
        chunks = iterate_sync(lambda: this.create_async_generator(model, checked, **kwargs))
        return chunks if stream else iter(["".join(chunks)])


def _guarded(impl: Any, *, events: bool) -> Any:
    """Wrap a subclass's generator method (function or classmethod) with the guard.

    A generator comes back under `guard` as it is (the cheapest path); a ChunkStream the
    implementation returned comes back as a GuardedStream, still reporting what it reports,
    and for `create_event_generator` (`events`) as that stream's every event.
    """
    is_classmethod = isinstance(impl, classmethod)
    func = impl.__func__ if is_classmethod or isinstance(impl, hybridmethod) else impl
    clashes: frozenset[str] | None = None  # worked out on the first call, not at import

    @functools.wraps(func)
    def guarded(this: Any, model: str, messages: Messages, /, **kwargs: Any) -> AsyncIterator[Any]:
        nonlocal clashes
        if clashes is None:
            clashes = _clashes(func)
        request_params(kwargs, clashes)
        model = validate_model(model)
        checked = adapt(this, check_messages(messages), kwargs)
        timeouts = transport_options(kwargs)
        kwargs.pop("timeout", None)
        chunks = func(this, model, checked, timeout=timeouts, **kwargs)
        if isinstance(chunks, ChunkStream):
            guarded = GuardedStream(chunks, timeouts, this.name)
            return guarded.events() if events else guarded
        return guard(chunks, timeouts, this.name)

    setattr(guarded, _GUARD_MARK, True)
    if is_classmethod:
        return classmethod(guarded)
    if isinstance(impl, hybridmethod):
        return hybridmethod(guarded)
    return guarded


def _defines_last(cls: type, name: str, other: str) -> bool:
    """Whether `cls` gets `name` from a class more derived than the one `other` comes from
    (the base class's own definitions do not count)."""
    for klass in cls.__mro__:
        if klass is AsyncGeneratorProvider:
            return False
        if name in klass.__dict__:
            return True
        if other in klass.__dict__:
            return False
    return False


def is_guarded(provider: object) -> bool:
    """Whether calls to `provider` already validate input and enforce timeouts themselves.

    An AsyncGeneratorProvider guards the one generator it implements (text or events) and
    derives the other from it, so either being guarded means every call is.
    """
    return any(
        getattr(getattr(provider, method, None), _GUARD_MARK, False)
        for method in ("create_async_generator", "create_event_generator")
    )


def has_base_stream(
    provider: object,
) -> TypeGuard[AsyncGeneratorProvider | type[AsyncGeneratorProvider]]:
    """Whether `provider` is an AsyncGeneratorProvider, as a class (classmethod style) or an
    instance, and so has `stream()`; other provider objects need not."""
    if isinstance(provider, type):
        return issubclass(provider, AsyncGeneratorProvider)
    return isinstance(provider, AsyncGeneratorProvider)


def event_generator(provider: Provider) -> Callable[..., AsyncIterator[Event]]:
    """Any provider object's event generator, or its text generator when it has none."""
    method: Callable[..., AsyncIterator[Event]] | None = getattr(
        provider, "create_event_generator", None
    )
    return provider.create_async_generator if method is None else method


def transport_options(kwargs: dict[str, Any]) -> Timeouts:
    """The call's Timeouts, with `timeout` and `proxy` checked: InvalidRequestError before I/O."""
    proxy = kwargs.get("proxy")
    if proxy is not None and not isinstance(proxy, str):
        raise InvalidRequestError(f"proxy must be a URL string, not {type(proxy).__name__}")
    return Timeouts.coerce(kwargs.get("timeout"))


def request_params(kwargs: dict[str, Any], clashes: frozenset[str] = RESERVED) -> None:
    """Refuse (InvalidRequestError, before I/O) a keyword argument that cannot be a request
    parameter: `model`, `messages`, or a name in `clashes` (one the implementation would bind
    to an argument of its own). Any other name goes upstream as it is."""
    if not clashes.isdisjoint(kwargs):
        name = min(clashes.intersection(kwargs))
        raise InvalidRequestError(
            f"{name!r} cannot be a request parameter: it names an argument of the call"
        )


@functools.lru_cache(maxsize=256)
def _clashes(func: Callable[..., Any]) -> frozenset[str]:
    """`RESERVED` plus the parameters of `func` a keyword could collide with: those passed
    by position that are not positional-only (`self, model, messages` of an implementation
    written without `/`), so a request parameter of that name is refused, not a TypeError."""
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return RESERVED
    named = {p.name for p in parameters if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD}
    return RESERVED.union(named)


def open_stream(
    provider: Provider, model: str, messages: Messages, /, **options: Any
) -> ChunkStream:
    """The answer of any provider as a guarded stream, its request checked now, before any I/O.

    An AsyncGeneratorProvider (class or instance, a chain too) answers through its `stream()`;
    any other provider object through its event (or text) generator. Either way the stream is
    put under the guard unless it is guarded already (a chain guards each of its attempts).
    """
    if has_base_stream(provider):
        stream = provider.stream(model, messages, **options)
        if stream.guarded or is_guarded(provider):
            return stream
        return GuardedStream(stream, transport_options(options), provider.name)
    if is_guarded(provider):
        return _as_stream(event_generator(provider)(model, messages, **options))
    generate = event_generator(provider)
    request_params(options, _clashes(getattr(generate, "__func__", generate)))
    checked = adapt(provider, check_messages(messages), options)
    timeouts = transport_options(options)
    return GuardedStream(generate(model, checked, **options), timeouts, provider.name)


def _as_stream(chunks: AsyncIterator[Event]) -> ChunkStream:
    """`chunks` as a ChunkStream: itself when it is one, the stream of an EventStream."""
    if isinstance(chunks, ChunkStream):
        return chunks
    if isinstance(chunks, EventStream):
        return chunks.stream
    return ChunkStream(chunks)


def _events_of(chunks: AsyncIterator[Event]) -> AsyncIterator[Event]:
    """Every event of `chunks` (a ChunkStream's `events()`; any other iterator as it is)."""
    return chunks.events() if isinstance(chunks, ChunkStream) else chunks
