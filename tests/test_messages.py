"""Message, model and timeout validation: exact messages naming the index and field."""

from __future__ import annotations

from typing import Any

import pytest
from providerhub import InvalidRequestError, Timeouts, validate_messages
from providerhub.messages import validate_model

USER = {"role": "user", "content": "hi"}


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ("hi", "messages must be a list of {'role', 'content'} dicts, not str"),
        (b"hi", "messages must be a list of {'role', 'content'} dicts, not bytes"),
        (None, "messages must be a list of {'role', 'content'} dicts, not NoneType"),
        ({"role": "user"}, "messages must be a list of {'role', 'content'} dicts, not dict"),
        ([], "messages must not be empty"),
        ([USER, "hello"], "messages[1] must be a dict with 'role' and 'content', not str"),
        ([USER, {"content": "x"}], "messages[1] has no 'role'"),
        ([{"role": "user"}], "messages[0] has no 'content'"),
        (
            [USER, USER, {"role": "user", "content": 5}],
            "messages[2].content must be a string, not int",
        ),
        ([{"role": None, "content": "x"}], "messages[0].role must be a string, not NoneType"),
        (
            [{"role": "user", "content": "x", "name": 3}],
            "messages[0].name must be a string, not int",
        ),
        ([{"role": "user", "content": "x", 1: "y"}], "messages[0] has a non-string key 1"),
        (
            [USER, {"role": "wizard", "content": "x"}],
            "messages[1].role is 'wizard'; "
            "expected one of assistant, developer, system, tool, user",
        ),
    ],
)
def test_invalid_messages_name_index_and_field(messages: Any, message: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        validate_messages(messages)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


def test_valid_messages_are_copied_to_plain_dicts() -> None:
    source = ({"role": "system", "content": "be brief"}, USER)
    checked = validate_messages(source)
    assert checked == [{"role": "system", "content": "be brief"}, USER]
    assert type(checked) is list
    assert checked[1] is not USER


@pytest.mark.parametrize(
    ("model", "message"),
    [(None, "model must be a string, not NoneType"), (4, "model must be a string, not int")],
)
def test_model_must_be_a_string(model: Any, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=f"^{message}$"):
        validate_model(model)
    assert validate_model("") == ""


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5", "timeout must be a number of seconds or Timeouts, not '5'"),
        (True, "timeout must be a number of seconds or Timeouts, not True"),
        ([1], "timeout must be a number of seconds or Timeouts, not [1]"),
        (0, "timeout must be a positive number of seconds, not 0"),
        (-1.5, "timeout must be a positive number of seconds, not -1.5"),
        (float("nan"), "timeout must be a positive number of seconds, not nan"),
    ],
)
def test_timeout_coercion_errors(value: Any, message: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        Timeouts.coerce(value)
    assert str(info.value) == message


def test_timeout_phase_errors() -> None:
    with pytest.raises(InvalidRequestError, match=r"^timeout idle must be .* not 0$"):
        Timeouts(idle=0)
    with pytest.raises(InvalidRequestError, match=r"^timeout total must be .* not '3'$"):
        Timeouts(total="3")  # type: ignore[arg-type]


def test_timeout_coercion() -> None:
    assert Timeouts.coerce(None) == Timeouts()
    limits = Timeouts(first_chunk=1, idle=None)
    assert Timeouts.coerce(limits) is limits
    assert Timeouts.coerce(5) == Timeouts(connect=5, first_chunk=5, idle=5, total=5)
    assert Timeouts.coerce(30.0) == Timeouts(connect=10, first_chunk=20, idle=30, total=30)
