"""The gateway's Prometheus metrics: `GET /metrics` with `[server] metrics = true`.

Counted from two places only: the access-log middleware (each request's route and status) and
a chat answer's trace once it has ended (`ChatStream.attempts`, the `Attempt` records routing
keeps anyway), so routing itself counts nothing. A nested chain's attempts count as those of
its members, not of the chain. Circuits are read from the health store when scraped (the
shared one with Redis: every replica then reports the same circuits, so aggregate them with
`max`, not `sum`).

- `providerhub_requests_total{route, status}`: requests answered; `route` is the route's path
  ("/v1/models/{id}"), "unmatched" for any other (so no client makes up label values).
- `providerhub_attempts_total{provider, outcome}`: requests sent to providers; outcome served,
  failed, interrupted or cancelled (`Attempt.outcome`: served is the attempt that answered,
  however its answer ended, so a client leaving mid-answer is a 499 request, not a failure).
- `providerhub_skips_total{provider, reason}`: providers a chain did not ask; reason is
  `Attempt.skipped_for` with "_" for " " (not_working, model, capability, credentials,
  history, cooling_down, rate_limited, at_capacity, unproven, deadline).
- `providerhub_time_to_first_chunk_seconds{provider}` (histogram): attempts that had a first
  chunk; `providerhub_attempt_duration_seconds{provider}` (histogram): every attempt sent.
- `providerhub_circuit_open{provider}` (gauge): 1 while the circuit is open or half-open.
- `providerhub_streams_in_flight` (gauge): chat answers this process is giving now.

prometheus-client (`pip install 'providerhub[metrics]'`) is imported here only, so a gateway
without metrics never imports it. Its own registry per app (no process-wide state, no
multiprocess mode: each gateway process is scraped on its own).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ..attempt import Attempt
from ..routing.health import ProviderHealth

__all__ = ["CONTENT_TYPE", "DURATION_BUCKETS", "FIRST_CHUNK_BUCKETS", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text format (what `generate_latest` writes for these names)."""
FIRST_CHUNK_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0)
"""Seconds; up to the default first-chunk timeout (20 s)."""
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
"""Seconds; up to the default total timeout (600 s)."""


class Metrics:
    """One gateway's counters, histograms and gauges, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            "providerhub_requests",
            "Gateway requests answered, by route and status.",
            ("route", "status"),
            registry=registry,
        )
        self.attempts = Counter(
            "providerhub_attempts",
            "Requests sent to providers, by outcome.",
            ("provider", "outcome"),
            registry=registry,
        )
        self.skips = Counter(
            "providerhub_skips",
            "Providers a chain did not ask, by reason.",
            ("provider", "reason"),
            registry=registry,
        )
        self.first_chunk = Histogram(
            "providerhub_time_to_first_chunk_seconds",
            "Seconds from sending a request to a provider to its first chunk.",
            ("provider",),
            buckets=FIRST_CHUNK_BUCKETS,
            registry=registry,
        )
        self.duration = Histogram(
            "providerhub_attempt_duration_seconds",
            "Seconds from sending a request to a provider to the end of its answer or failure.",
            ("provider",),
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.circuit_open = Gauge(
            "providerhub_circuit_open",
            "1 while the provider's circuit is open or half-open, else 0.",
            ("provider",),
            registry=registry,
        )
        self.in_flight = Gauge(
            "providerhub_streams_in_flight",
            "Chat answers this process is giving now.",
            registry=registry,
        )
        self.streams = 0
        """Chat answers in progress (the app's handler counts them; read when scraped)."""

    def request(self, route: str, status: int) -> None:
        """A request ended with `status` (499: the client went away)."""
        self.requests.labels(route, str(status)).inc()

    def answered(self, attempts: Sequence[Attempt]) -> None:
        """A chat answer ended: count its trace."""
        for attempt in _leaves(attempts):
            provider = attempt.provider
            if attempt.outcome == "skipped":
                self.skips.labels(provider, attempt.skipped_for.replace(" ", "_")).inc()
                continue
            self.attempts.labels(provider, attempt.outcome).inc()
            if attempt.time_to_first_chunk is not None:
                self.first_chunk.labels(provider).observe(attempt.time_to_first_chunk)
            if attempt.duration is not None:
                self.duration.labels(provider).observe(attempt.duration)

    def render(self, health: Iterable[ProviderHealth]) -> bytes:
        """The text exposition, with the circuits as `health` (the store's now) has them."""
        for snapshot in health:
            self.circuit_open.labels(snapshot.provider).set(snapshot.circuit != "closed")
        self.in_flight.set(self.streams)
        return generate_latest(self.registry)


def _leaves(attempts: Sequence[Attempt]) -> Iterator[Attempt]:
    """The attempts of real providers: a nested chain's own attempts replace its line."""
    for attempt in attempts:
        if attempt.inner:
            yield from _leaves(attempt.inner)
        else:
            yield attempt
