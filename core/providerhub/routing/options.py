"""The options of a chain: the one table `FallbackChain` and `[chains.NAME]` both check.

Each option has a name, a test of its value and what the test expects, in words ("a whole
number >= 0"). `problem` says what is wrong with one value, or None; FallbackChain raises it as
InvalidRequestError ("retries must be a whole number >= 0, not -1", which `check` does), the
config as ConfigError naming the key ("'retries' must be a whole number >= 0, not -1").
`contradiction` is the one rule between options. None stands for "not given" where the chain
takes None (`timeouts`, `hedge_after`, `deadline`); a TOML file has no None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeGuard, get_args

from ..errors import InvalidRequestError
from ..timeouts import PHASES, Timeouts

__all__ = [
    "NAMES",
    "OPTIONS",
    "OnInterrupt",
    "Option",
    "Order",
    "Problem",
    "check",
    "contradiction",
    "problem",
    "timeouts",
]

Order = Literal["given", "shuffle", "latency"]
"""How a chain orders its members for a call."""
OnInterrupt = Literal["raise", "continue"]
"""What a chain does when an answer is cut after its first chunk."""

POSITIVE = "a positive number of seconds"
TIMEOUTS = f"positive seconds or a table of {', '.join(PHASES)}"


@dataclass(frozen=True, slots=True)
class Option:
    """One chain option: its name, the test of a value, and what the test expects in words."""

    name: str
    ok: Callable[[object], bool]
    expected: str
    optional: bool = False
    """Whether None is accepted (meaning: not given)."""


@dataclass(frozen=True, slots=True)
class Problem:
    """What is wrong with an option's value: `key` is the option, or "timeouts.idle" for a
    value inside it; `value` is the wrong value itself."""

    key: str
    expected: str
    value: object

    def __str__(self) -> str:
        """The chain's phrasing: "retries must be a whole number >= 0, not -1"."""
        return f"{self.key} must be {self.expected}, not {self.value!r}"


def _number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _positive(value: object) -> bool:
    return _number(value) and value > 0


def _bool(value: object) -> bool:
    return isinstance(value, bool)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _seconds(value: object) -> bool:
    return _number(value) and value >= 0


def _one_of(*choices: str) -> tuple[Callable[[object], bool], str]:
    words = [f'"{choice}"' for choice in choices]
    return (lambda value: value in choices), f"{', '.join(words[:-1])} or {words[-1]}"


def _timeouts(value: object) -> bool:
    """Whether `value` makes a Timeouts (whose own rules decide: seconds, or phases)."""
    if not isinstance(value, Timeouts | Mapping) and not _number(value):
        return False
    try:
        timeouts(value)
    except (InvalidRequestError, TypeError):
        return False
    return True


OPTIONS: Mapping[str, Option] = {
    option.name: option
    for option in (
        Option("order", *_one_of(*get_args(Order))),
        Option("shuffle", _bool, "true or false"),
        Option("ignore_working", _bool, "true or false"),
        Option("retries", _whole, "a whole number >= 0"),
        Option("backoff", _seconds, "seconds >= 0"),
        Option("timeouts", _timeouts, TIMEOUTS, optional=True),
        Option("hedge_after", _positive, POSITIVE, optional=True),
        Option("on_interrupt", *_one_of(*get_args(OnInterrupt))),
        Option("deadline", _positive, "positive seconds", optional=True),
    )
}
"""Every chain option by name, in the order FallbackChain takes them."""

NAMES: tuple[str, ...] = tuple(OPTIONS)


def problem(name: str, value: object) -> Problem | None:
    """What is wrong with `value` for option `name`, or None when it is fine.

    A wrong `timeouts` number is "a positive number of seconds"; in a table, the wrong phase
    is named ("timeouts.idle"). An unknown `name` is a KeyError: the names are fixed.
    """
    option = OPTIONS[name]
    if (value is None and option.optional) or option.ok(value):
        return None
    if name == "timeouts":
        if _number(value):
            return Problem(name, POSITIVE, value)
        if isinstance(value, Mapping) and all(phase in PHASES for phase in value):
            phase, seconds = next((p, s) for p, s in value.items() if not _positive(s))
            return Problem(f"{name}.{phase}", POSITIVE, seconds)
    return Problem(name, option.expected, value)


def contradiction(values: Mapping[str, object]) -> str | None:
    """Why options given together contradict each other, or None: shuffling is an order."""
    order = values.get("order", "given")
    if values.get("shuffle") and order not in ("given", "shuffle"):
        return f"shuffle=True contradicts order={order!r}"
    return None


def check(**values: object) -> None:
    """Raise InvalidRequestError for the first option given with a wrong value, then for a
    contradiction between them (`FallbackChain`'s checks)."""
    for name, value in values.items():
        found = problem(name, value)
        if found is not None:
            raise InvalidRequestError(str(found))
    why = contradiction(values)
    if why is not None:
        raise InvalidRequestError(why)


def timeouts(value: Timeouts | float | Mapping[str, float] | None) -> Timeouts | None:
    """The Timeouts a checked `timeouts` value stands for: None (each member's own), seconds
    (a total that also caps the rest), a table of phases (the others at their defaults)."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return Timeouts(**value)
    return Timeouts.coerce(value)
