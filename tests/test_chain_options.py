"""The one table of chain options: what FallbackChain and `[chains.NAME]` both check."""

from __future__ import annotations

import pytest
from providerhub import InvalidRequestError, Timeouts
from providerhub.routing import options
from providerhub.routing.options import Problem


def test_the_names_are_the_chain_keyword_options() -> None:
    assert options.NAMES == (
        "order",
        "shuffle",
        "ignore_working",
        "retries",
        "backoff",
        "timeouts",
        "hedge_after",
        "on_interrupt",
        "deadline",
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("retries", -1, "retries must be a whole number >= 0, not -1"),
        ("retries", True, "retries must be a whole number >= 0, not True"),
        ("backoff", "x", "backoff must be seconds >= 0, not 'x'"),
        ("deadline", 0, "deadline must be positive seconds, not 0"),
        ("hedge_after", -1, "hedge_after must be a positive number of seconds, not -1"),
        ("order", "fastest", 'order must be "given", "shuffle" or "latency", not \'fastest\''),
        ("on_interrupt", "retry", 'on_interrupt must be "raise" or "continue", not \'retry\''),
        ("shuffle", "yes", "shuffle must be true or false, not 'yes'"),
        ("timeouts", 0, "timeouts must be a positive number of seconds, not 0"),
        ("timeouts", {"idle": -1}, "timeouts.idle must be a positive number of seconds, not -1"),
        (
            "timeouts",
            "soon",
            "timeouts must be positive seconds or a table of connect, first_chunk, idle, total, "
            "not 'soon'",
        ),
    ],
)
def test_a_wrong_value_is_one_problem(name: str, value: object, message: str) -> None:
    found = options.problem(name, value)
    assert found is not None and str(found) == message
    with pytest.raises(InvalidRequestError) as caught:
        options.check(**{name: value})
    assert str(caught.value) == message


def test_the_problem_names_the_phase_at_fault() -> None:
    assert options.problem("timeouts", {"connect": 1, "idle": 0}) == Problem(
        "timeouts.idle", "a positive number of seconds", 0
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("retries", 0),
        ("backoff", 0),
        ("deadline", 0.5),
        ("deadline", None),
        ("hedge_after", None),
        ("timeouts", None),
        ("timeouts", 3),
        ("timeouts", Timeouts()),
        ("timeouts", {"first_chunk": 5}),
        ("order", "latency"),
    ],
)
def test_good_values_pass(name: str, value: object) -> None:
    assert options.problem(name, value) is None


def test_shuffle_contradicts_another_order() -> None:
    assert options.contradiction({"shuffle": True, "order": "latency"}) == (
        "shuffle=True contradicts order='latency'"
    )
    assert options.contradiction({"shuffle": True, "order": "shuffle"}) is None
    assert options.contradiction({"shuffle": False, "order": "latency"}) is None
    with pytest.raises(InvalidRequestError, match="contradicts"):
        options.check(shuffle=True, order="latency")


def test_timeouts_stand_for_a_timeouts() -> None:
    assert options.timeouts(None) is None
    assert options.timeouts(5) == Timeouts.coerce(5)
    assert options.timeouts({"idle": 7}) == Timeouts(idle=7)
    given = Timeouts(total=9)
    assert options.timeouts(given) is given
