"""Review fixes: every secret header refused and redacted, messages that say the real problem,
the key of a factory's error, values of secret-looking keys never echoed, linear cycle check."""

from __future__ import annotations

import subprocess
import sys

import pytest
from config_helpers import OK_PROVIDER, build_error, parse_error
from providerhub.config import Config, ProviderSpec
from providerhub.config.routes import LITERAL_SECRET_WHY

SECRET = "sk-live-abcdef123456"
HEADERS = [
    "x-goog-api-key",
    "Cookie",
    "X-Auth-Token",
    "Ocp-Apim-Subscription-Key",
    "Authorization",
    "Proxy-Authorization",
    "api-key",
    "X-Api-Key",
]


@pytest.mark.parametrize("header", HEADERS)
def test_each_literal_secret_header_is_refused_without_its_value(header: str) -> None:
    caught = parse_error(
        OK_PROVIDER + f'headers = {{ "{header}" = "{SECRET}", X-Title = "demo" }}\n'
    )

    prefix = f"p.toml [providers.local]: header {header!r}: {LITERAL_SECRET_WHY}"
    assert str(caught).startswith(prefix)
    assert (
        str(caught)
        .removeprefix(prefix)
        .startswith(
            "api_key_env = "
            if header.lower() == "authorization"
            else f'headers_env = {{ "{header}" = '
        )
    )
    assert (caught.table, caught.key) == ("providers.local", "headers")
    assert SECRET not in str(caught) and SECRET not in repr(caught)


@pytest.mark.parametrize(
    ("header", "suggestion"),
    [
        ("api-key", 'headers_env = { "api-key" = "API_KEY" }'),
        ("x-goog-api-key", 'headers_env = { "x-goog-api-key" = "X_GOOG_API_KEY" }'),
        (
            "Ocp-Apim-Subscription-Key",
            'headers_env = { "Ocp-Apim-Subscription-Key" = "OCP_APIM_SUBSCRIPTION_KEY" }',
        ),
        ("1-Token", 'headers_env = { "1-Token" = "API_KEY_1_TOKEN" }'),
        ("Authorization", 'api_key_env = "OPENAI_API_KEY"'),
    ],
)
def test_literal_secret_header_refusal_points_at_the_option_to_use(
    header: str, suggestion: str
) -> None:
    caught = parse_error(OK_PROVIDER + f'headers = {{ "{header}" = "{SECRET}" }}\n')

    assert str(caught) == (
        f"p.toml [providers.local]: header {header!r}: {LITERAL_SECRET_WHY}{suggestion}"
    )


@pytest.mark.parametrize("header", HEADERS)
def test_each_secret_header_is_redacted_in_render(header: str) -> None:
    spec = ProviderSpec(
        "local", "openai", {"base_url": "http://h/v1", "headers": {header: SECRET, "X-T": "d"}}
    )

    rendered = Config(providers={"local": spec}).render()

    assert f'headers = {{ {header} = "<redacted>", X-T = "d" }}' in rendered
    assert SECRET not in rendered


@pytest.mark.parametrize(
    ("text", "message", "table", "key"),
    [
        (
            "[chains.main]\nproviders = ['a']\n[models]\nfast = { model = 'x' }\n",
            "p.toml [models]: 'fast' is missing key 'chain' (the chain it routes to)",
            "models",
            "fast",
        ),
        (
            "[chains.main]\nproviders = ['a']\ntimeouts = 0\n",
            "p.toml [chains.main]: 'timeouts' must be a positive number of seconds, not 0",
            "chains.main",
            "timeouts",
        ),
        (
            "[chains.main]\nproviders = ['a']\ntimeouts = -2.5\n",
            "p.toml [chains.main]: 'timeouts' must be a positive number of seconds, not -2.5",
            "chains.main",
            "timeouts",
        ),
        (
            "[chains.main]\nproviders = ['a']\nretries = 1979-05-27\n",
            "p.toml [chains.main]: 'retries' must be a whole number >= 0, not a date or time",
            "chains.main",
            "retries",
        ),
        (
            "[chains.main]\nproviders = ['a']\n[models]\ntoken = 12345\n",
            "p.toml [models]: 'token' must be a chain name, or "
            '{ chain = "...", model = "..." }, not an integer',
            "models",
            "token",
        ),
        (
            f"[chains.main]\nproviders = ['a']\n[models]\napi_key = '{SECRET}'\n",
            "p.toml [models]: 'api_key' names a chain that is not defined",
            "models",
            "api_key",
        ),
        (
            "[chains.main]\nproviders = ['a']\norder = '" + "long-value-" * 4 + "'\n",
            'p.toml [chains.main]: \'order\' must be "given", "shuffle" or "latency", not a string',
            "chains.main",
            "order",
        ),
    ],
)
def test_messages_say_the_real_problem(text: str, message: str, table: str, key: str) -> None:
    caught = parse_error(text)

    assert str(caught) == message
    assert (caught.path, caught.table, caught.key) == ("p.toml", table, key)
    assert SECRET not in str(caught)


@pytest.mark.parametrize(
    ("line", "message", "key"),
    [
        ('models = "gpt-4"', "option 'models' must be a list of strings, not str", "models"),
        ('models = ["a", 3]', "option 'models[]' must be a non-empty string, not int", "models"),
        ('working = "no"', "option 'working' must be true or false, not str", "working"),
        (
            'api_key_env = "sk-live-abcdef123456"',
            "option 'api_key_env' must be the NAME of an environment variable "
            "(like OPENAI_API_KEY), not the key itself",
            "api_key_env",
        ),
        (
            'headers = { "X-Title" = "a\\nb" }',
            "option 'headers': the value of 'X-Title' has a control character (a stray "
            "newline?), which an HTTP header cannot carry",
            "headers",
        ),
        (
            'headers = { "X Title" = "a" }',
            "option 'headers': 'X Title' is not a valid header name",
            "headers",
        ),
    ],
)
def test_factory_errors_name_the_option(line: str, message: str, key: str) -> None:
    caught = build_error(OK_PROVIDER + line + "\n")

    assert str(caught) == f"p.toml [providers.local]: {message}"
    assert (caught.table, caught.key) == ("providers.local", key)
    assert "sk-live" not in str(caught)


def diamond_ladder(levels: int) -> str:
    """Chains a{i} and b{i} both contain a{i+1} and b{i+1}: 2**levels paths, 2*levels chains."""
    lines = []
    for i in range(levels):
        below = f"['a{i + 1}', 'b{i + 1}']" if i + 1 < levels else "['x', 'y']"
        lines += [
            f"[chains.a{i}]",
            f"providers = {below}",
            f"[chains.b{i}]",
            f"providers = {below}",
        ]
    return "\n".join(lines) + "\n"


def test_cycle_check_is_linear_on_a_diamond_ladder() -> None:
    """An exponential walk would never finish (2**100 paths): the child is killed, and this
    fails instead of hanging the suite."""
    script = (
        "import sys\n"
        "from providerhub.config import parse_config\n"
        "config = parse_config(sys.stdin.read())\n"
        "print(len(config.chains), config.chains['a0'].providers)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=diamond_ladder(100),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )

    assert done.stdout == "200 ('a1', 'b1')\n"


def test_cycle_at_the_bottom_of_a_diamond_ladder_is_reported_in_full() -> None:
    text = diamond_ladder(100).replace("providers = ['x', 'y']", "providers = ['x', 'A0']", 1)

    caught = parse_error(text)

    loop = " -> ".join([*(f"a{i}" for i in range(100)), "a0"])
    assert str(caught) == f"p.toml [chains.a0]: chain refers to itself: {loop}"
    assert caught.key == "providers"


def test_cycle_is_reported_at_the_chain_where_it_starts() -> None:
    caught = parse_error(
        "[chains.x]\nproviders = ['a']\n[chains.a]\nproviders = ['b']\n"
        "[chains.b]\nproviders = ['p', 'a']\n"
    )

    assert str(caught) == "p.toml [chains.a]: chain refers to itself: a -> b -> a"
