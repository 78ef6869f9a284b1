"""Each class of config mistake gets its own message naming the file, the table and the key."""

from __future__ import annotations

import providerhub
import providerhub_codelinkava
import pytest
from config_helpers import OK_PROVIDER, build_error, parse_error
from providerhub import Registry
from providerhub.config import ConfigError, parse_config


def fails(text: str) -> str:
    return str(parse_error(text))


def fails_to_build(text: str) -> str:
    return str(build_error(text))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[providers\n", "p.toml: invalid TOML: "),
        ("[provider.x]\n", "p.toml: unknown key 'provider'; did you mean 'providers'?"),
        ("providers = 3\n", "p.toml: 'providers' must be a table, not an integer"),
        ("[providers]\nlocal = 1\n", "p.toml [providers]: 'local' must be a table, not an integer"),
        (
            '[providers."a b"]\nuse = "openai"\n',
            "p.toml [providers.a b]: names use letters, digits, '_', '.', '-' "
            "and start with a letter or digit",
        ),
        (
            "[providers.local]\nbase_url = 'http://x'\n",
            "p.toml [providers.local]: missing key 'use' (the provider type, e.g. \"openai\")",
        ),
        (
            "[providers.local]\nuse = 3\n",
            "p.toml [providers.local]: 'use' must be a provider type name like \"openai\", not 3",
        ),
        (
            "[chains.main]\nretry = 1\nproviders = ['a']\n",
            "p.toml [chains.main]: unknown key 'retry'; did you mean 'retries'?",
        ),
        (
            "[chains.main]\nretries = 1\n",
            "p.toml [chains.main]: missing key 'providers' (a list of provider names)",
        ),
        (
            "[chains.main]\nproviders = 'a,b'\n",
            "p.toml [chains.main]: 'providers' must be a non-empty list of provider names, "
            "not 'a,b'",
        ),
        (
            "[chains.main]\nproviders = []\n",
            "p.toml [chains.main]: 'providers' must be a non-empty list of provider names, "
            "not an array",
        ),
        (
            "[chains.main]\nproviders = ['a', 'b', 'a']\n",
            "p.toml [chains.main]: 'providers' lists 'a' twice",
        ),
        (
            "[chains.main]\nproviders = ['a']\nretries = -1\n",
            "p.toml [chains.main]: 'retries' must be a whole number >= 0, not -1",
        ),
        (
            "[chains.main]\nproviders = ['a']\nretries = true\n",
            "p.toml [chains.main]: 'retries' must be a whole number >= 0, not a boolean",
        ),
        (
            "[chains.main]\nproviders = ['a']\norder = 'fast'\n",
            'p.toml [chains.main]: \'order\' must be "given", "shuffle" or "latency", not \'fast\'',
        ),
        (
            "[chains.main]\nproviders = ['a']\nshuffle = 'yes'\n",
            "p.toml [chains.main]: 'shuffle' must be true or false, not 'yes'",
        ),
        (
            "[chains.main]\nproviders = ['a']\ndeadline = 0\n",
            "p.toml [chains.main]: 'deadline' must be positive seconds, not 0",
        ),
        (
            "[chains.main]\nproviders = ['a']\ndeadline = 'soon'\n",
            "p.toml [chains.main]: 'deadline' must be positive seconds, not 'soon'",
        ),
        (
            "[chains.main]\nproviders = ['a']\nshuffle = true\norder = 'latency'\n",
            "p.toml [chains.main]: shuffle=True contradicts order='latency'",
        ),
        (
            "[chains.main]\nproviders = ['a']\nhedge_after = 0\n",
            "p.toml [chains.main]: 'hedge_after' must be a positive number of seconds, not 0",
        ),
        (
            "[chains.main]\nproviders = ['a']\non_interrupt = 'retry'\n",
            "p.toml [chains.main]: 'on_interrupt' must be \"raise\" or \"continue\", not 'retry'",
        ),
        (
            "[chains.main]\nproviders = ['a']\ntimeouts = 'slow'\n",
            "p.toml [chains.main]: 'timeouts' must be positive seconds or a table of "
            "connect, first_chunk, idle, total, not a string",
        ),
        (
            "[chains.main]\nproviders = ['a']\ntimeouts = { first = 3 }\n",
            "p.toml [chains.main]: unknown key 'first'; did you mean 'first_chunk'?",
        ),
        (
            "[chains.main]\nproviders = ['a']\ntimeouts = { idle = -1 }\n",
            "p.toml [chains.main]: 'timeouts.idle' must be a positive number of seconds, not -1",
        ),
        (
            "[chains.loop]\nproviders = ['a', 'loop']\n",
            "p.toml [chains.loop]: chain refers to itself: loop -> loop",
        ),
        (
            "[chains.a]\nproviders = ['b']\n[chains.b]\nproviders = ['c']\n"
            "[chains.c]\nproviders = ['x', 'A']\n",
            "p.toml [chains.a]: chain refers to itself: a -> b -> c -> a",
        ),
        (
            OK_PROVIDER + "[chains.local]\nproviders = ['x']\n",
            "p.toml [chains.local]: 'local' is also the name of a provider; rename one",
        ),
        (
            "[chains.main]\nproviders = ['a']\n[models]\nfast = 'mian'\n",
            "p.toml [models]: 'fast' names chain 'mian', which is not defined; "
            "did you mean 'main'?",
        ),
        (
            "[chains.main]\nproviders = ['a']\n[models]\nfast = { chain = 'main', modle = 'x' }\n",
            "p.toml [models]: unknown key 'modle'; did you mean 'model'?",
        ),
        (
            "[models]\nfast = 3\n",
            'p.toml [models]: \'fast\' must be a chain name, or { chain = "...", model = "..." }, '
            "not 3",
        ),
        (
            "[server]\nport = '80'\n",
            "p.toml [server]: 'port' must be a port number (0-65535), not '80'",
        ),
        (
            "[server]\nport = 70000\n",
            "p.toml [server]: 'port' must be a port number (0-65535), not 70000",
        ),
        ("[server]\nhots = 'x'\n", "p.toml [server]: unknown key 'hots'; did you mean 'host'?"),
        (
            "[server]\nrequest_timeout = 0\n",
            "p.toml [server]: 'request_timeout' must be a positive number of seconds, not 0",
        ),
        (
            "[server]\nrequest_timeout = '30'\n",
            "p.toml [server]: 'request_timeout' must be a positive number of seconds, not '30'",
        ),
        (
            "[server]\nshutdown_grace = -1\n",
            "p.toml [server]: 'shutdown_grace' must be a positive number of seconds, not -1",
        ),
        (
            "[server]\nshutdown_grace = inf\n",
            "p.toml [server]: 'shutdown_grace' must be a positive number of seconds, not inf",
        ),
        (
            "[server]\nmax_concurrent_requests = 0\n",
            "p.toml [server]: 'max_concurrent_requests' must be a positive integer, not 0",
        ),
        (
            "[server]\nmax_concurrent_requests = true\n",
            "p.toml [server]: 'max_concurrent_requests' must be a positive integer, not a boolean",
        ),
        (
            "[server]\nmax_concurent_requests = 9\n",
            "p.toml [server]: unknown key 'max_concurent_requests'; "
            "did you mean 'max_concurrent_requests'?",
        ),
        (
            "[server]\nchain = 'main'\n",
            "p.toml [server]: 'chain' names chain 'main', which is not defined",
        ),
    ],
)
def test_structural_mistakes(text: str, message: str) -> None:
    assert fails(text).startswith(message)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[providers.local]\nuse = 'opneai'\n",
            "p.toml [providers.local]: unknown provider type 'opneai'; did you mean 'openai'?",
        ),
        (
            "[providers.local]\nuse = 'anthropic'\n",
            "p.toml [providers.local]: unknown provider type 'anthropic'; known types: openai",
        ),
        (
            OK_PROVIDER + "base_ur = 'http://x'\n",
            "p.toml [providers.local]: unknown key 'base_ur'; did you mean 'base_url'?",
        ),
        (
            OK_PROVIDER + "models = 'gpt-4'\n",
            "p.toml [providers.local]: option 'models' must be a list of strings, not str",
        ),
        (
            OK_PROVIDER + "working = 'no'\n",
            "p.toml [providers.local]: option 'working' must be true or false, not str",
        ),
        (
            '[providers.local]\nuse = "openai"\n',
            "p.toml [providers.local]: missing key 'base_url'",
        ),
        (
            OK_PROVIDER + "[chains.main]\nproviders = ['lokal']\n",
            "p.toml [chains.main]: 'providers': no provider or chain named 'lokal'; "
            "did you mean local?",
        ),
        (
            '[providers.codelinkava]\nuse = "openai"\nbase_url = "http://127.0.0.1:1/v1"\n',
            "p.toml [providers.codelinkava]: name 'codelinkava' is already used by provider "
            "'CodeLinkAva' from providerhub_codelinkava",
        ),
    ],
)
def test_mistakes_found_when_building(text: str, message: str) -> None:
    assert fails_to_build(text).startswith(message)


def test_no_type_plugin_installed() -> None:
    config = parse_config(OK_PROVIDER, "p.toml")
    with pytest.raises(ConfigError, match=r"no installed plugin provides types"):
        config.build_registry(Registry(entry_points=False))


def test_unknown_chain_name() -> None:
    config = parse_config("[chains.main]\nproviders = ['CodeLinkAva']\n", "p.toml")
    registry = config.build_registry(Registry([providerhub_codelinkava], entry_points=False))
    with pytest.raises(ConfigError, match=r"^p\.toml: no chain named 'mian'; did you mean main\?$"):
        config.chain("mian", registry)


def test_literal_key_is_refused_with_the_reason_and_without_the_key() -> None:
    message = fails(OK_PROVIDER + 'api_key = "sk-live-abcdef123456"\n')

    assert message.startswith(
        "p.toml [providers.local]: 'api_key': literal secrets are refused: config files get "
        "committed, shared and printed"
    )
    assert 'api_key_env = "OPENAI_API_KEY"' in message
    assert "sk-live" not in message


@pytest.mark.parametrize(
    "line",
    [
        'token = "tok-123456"',
        'apikey = "sk-live-abcdef123456"',
        'password = "hunter2hunter2"',
        'headers = { Authorization = "Bearer sk-live-abcdef123456" }',
        'headers = { "api-key" = "sk-live-abcdef123456" }',
    ],
)
def test_other_literal_secrets_are_refused(line: str) -> None:
    message = fails(OK_PROVIDER + line + "\n")

    assert "literal secrets are refused" in message
    assert "sk-live" not in message and "tok-123" not in message and "hunter2" not in message


def test_key_in_place_of_a_variable_name_is_refused_without_echo() -> None:
    message = fails_to_build(OK_PROVIDER + 'api_key_env = "sk-live-abcdef123456"\n')

    assert message == (
        "p.toml [providers.local]: option 'api_key_env' must be the NAME of an environment "
        "variable (like OPENAI_API_KEY), not the key itself"
    )


def test_config_error_is_exported_and_classified() -> None:
    assert providerhub.ConfigError is ConfigError
    assert issubclass(ConfigError, providerhub.ProviderHubError)
    error = ConfigError("bad", path="p.toml", table="server", key="port")
    assert (error.path, error.table, error.key, error.reason) == ("p.toml", "server", "port", "bad")
