"""The plugin contract as checks a plugin author runs against their own provider.

Point the suite at a provider: a `Target` whose `make(url)` builds one sending its requests
to a FakeUpstream at `url` (any path under it), the wire format it speaks, a model it serves,
and the environment variable it reads its key from::

    from providerhub.testing import conformance

    target = conformance.Target(
        lambda url: Acme(base_url=url, api_key_env="ACME_KEY"), wire="openai", key_env="ACME_KEY"
    )
    test_acme_conformance = conformance.suite(target)  # one pytest test per check

or, for a provider type a plugin registers (`use = "..."` in providerhub.toml), taking
`base_url` and `api_key_env`: `conformance.suite(conformance.of_type("acme", wire="ndjson"))`.

The checks (`CHECKS`, plain functions `check(target)`; `run_all(target)` runs them outside
pytest): `metadata` (the contract's attributes and types), `validation_before_io` (bad
requests, missing capabilities and a missing key refused at the call, nothing sent),
`timeouts` (connect, first chunk, idle and total each enforced on time), `cancellation`
(closing or cancelling closes the connection at once), `faults` (every fault a classified
error, the text before it delivered, HTTP errors with status, message and Retry-After),
`tcp_splits` (exact text however the stream is cut), `tool_calls` (assembled, for a provider
declaring tools), `secrets` (the key is sent and never in an error). Each runs on an event
loop of its own, so call them from plain (sync) tests; none needs pytest-asyncio.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...registry import default_registry
from .._reply import WireFormat
from ._checks import Check, cancellation, metadata, timeouts, validation_before_io
from ._faults import faults, secrets, tcp_splits, tool_calls
from ._target import SECRET, Target

__all__ = ["CHECKS", "KEY_ENV", "SECRET", "Check", "Target", "of_type", "run_all", "suite"]

CHECKS: tuple[Check, ...] = (
    metadata,
    validation_before_io,
    timeouts,
    cancellation,
    faults,
    tcp_splits,
    tool_calls,
    secrets,
)
"""Every check of the contract, in the order the suite runs them."""
KEY_ENV = "PROVIDERHUB_CONFORMANCE_KEY"
"""The variable `of_type` configures as the provider's `api_key_env`."""


def of_type(provider_type: str, wire: WireFormat, **options: Any) -> Target:
    """A target built from a registered provider type, as the config builds one:
    `name="conformance"`, `base_url` the upstream's URL, `api_key_env` KEY_ENV, then `options`."""

    def make(url: str) -> Any:
        factory = default_registry().provider_types()[provider_type]
        return factory(name="conformance", base_url=url, api_key_env=KEY_ENV, **options)

    return Target(make, wire=wire, key_env=KEY_ENV, name=provider_type)


def run_all(target: Target) -> dict[str, str | None]:
    """Run every check; each one's name -> None (passed) or why it did not apply. The first
    failure raises its AssertionError."""
    return {check.__name__: check(target) for check in CHECKS}


def suite(*targets: Target) -> Callable[..., None]:
    """A pytest test running every check on every target (ids "target-check"); a check that
    does not apply is skipped with its reason. Assign it to a `test_...` name."""
    import pytest

    @pytest.mark.parametrize("check", CHECKS, ids=[check.__name__ for check in CHECKS])
    @pytest.mark.parametrize("target", targets, ids=[target.name for target in targets])
    def test_conformance(target: Target, check: Check) -> None:
        reason = check(target)
        if reason is not None:
            pytest.skip(reason)

    return test_conformance
