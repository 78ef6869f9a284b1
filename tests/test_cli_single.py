"""`chat -p NAME` is the provider's one-provider chain, run in-process several times: the trace
is the chain's, refusals come before any request (exit 3), an upstream failure is the
provider's own error (exit 4), and one run's failures never cool the provider down for the next.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import outcomes
from config_helpers import hosted, run_main, write_config
from providerhub import (
    AllProvidersFailedError,
    CoolingDownError,
    StreamInterruptedError,
    UpstreamConnectionError,
    default_health_store,
)
from providerhub.attempt import Attempt
from providerhub.cli.chat import own_error
from providerhub.testing import Reply, serve_in_thread

VAR = "PROVIDERHUB_TEST_SINGLE_KEY"


def test_failures_of_earlier_runs_never_cool_the_provider_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(VAR, "sk-test")
    failures = [Reply.error(503, "overloaded")] * 4 + [Reply.error(429, "slow", retry_after="60")]
    with serve_in_thread(*failures, Reply.text("back")) as upstream:
        path = write_config(tmp_path, hosted(upstream.url, VAR))
        argv = ["chat", "--config", str(path), "-p", "hosted", "-v", "hi"]
        codes, outputs = run_main([argv] * 6, capsys, monkeypatch)
        requests = len(upstream.requests)

    assert codes == [4] * 5 + [0], outputs
    assert requests == 6
    attempt, error = outputs[1].splitlines()
    assert outcomes(attempt) == [("hosted", "failed", "HTTP 503: overloaded")]
    assert error == "providerhub: error: hosted: HTTP 503: overloaded"
    assert outputs[-2] == "back\n"
    assert outcomes(outputs[-1]) == [("hosted", "served", None)]
    assert default_health_store().latency("hosted") is None


def test_refusals_come_before_any_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(VAR, raising=False)
    with serve_in_thread(default=Reply.text("never")) as upstream:
        path = write_config(
            tmp_path,
            hosted(upstream.url, VAR)
            + f"""
            [providers.bare]
            use = "openai"
            base_url = "{upstream.url}/v1"
            """,
        )
        config = ["--config", str(path)]
        runs = [
            ["chat", *config, "-p", "hosted", "hi"],
            ["chat", *config, "-p", "bare", "hi"],
            ["chat", *config, "-p", "nobody", "hi"],
        ]
        codes, outputs = run_main(runs, capsys, monkeypatch)
        requests = upstream.requests

    assert codes == [3, 3, 3]
    assert outputs[::2] == ["", "", ""]
    assert outputs[1::2] == [
        f"providerhub: error: provider 'hosted' needs credentials: environment variable {VAR} "
        "is not set\n",
        "providerhub: error: provider 'bare' has no default model; name one with -m MODEL\n",
        "providerhub: error: no provider named 'nobody'\n",
    ]
    assert requests == []


def test_a_skipped_provider_keeps_the_chain_error() -> None:
    cut = UpstreamConnectionError("hosted", "connection closed")
    failed = AllProvidersFailedError([Attempt("hosted", "failed", "closed", error=cut)])
    assert own_error(failed) is cut
    cooling = CoolingDownError("hosted", "circuit open", seconds_left=3)
    skipped = AllProvidersFailedError([Attempt("hosted", "skipped", str(cooling), error=cooling)])
    assert own_error(skipped) is skipped
    interrupted = StreamInterruptedError("hosted", "half", [], cut)
    assert own_error(interrupted) is cut
