"""Routing: fallback chains, and how one chain call runs.

    chain.py   FallbackChain: validation, members, metadata, the order members are tried in
    plan.py    what a call is given: the frozen part of its chain, and the request
    call.py    one call: attempts, retries, hand-overs, the trace, health and hook reporting
    race.py    the race to a first chunk, hedged attempts in parallel
    policy.py  whether to ask a provider (skip), and how its failure is read: reason line,
               retry or not, health or not, backoff
    health.py  per-provider circuit breaker, cooldowns, requests in flight and latency,
               behind `HealthStore`
    options.py the one table of chain options, checked by the chain and the config alike
    stream.py  ChatStream: the caller's stream, reading the call's trace

The chain (policy) builds a call and drives nothing itself; the call never imports the chain.
"""

from __future__ import annotations

from .chain import CALL_OPTIONS, CONTINUE_PROMPT, FallbackChain
from .options import OnInterrupt, Order
from .stream import ChatStream

__all__ = ["CALL_OPTIONS", "CONTINUE_PROMPT", "ChatStream", "FallbackChain", "OnInterrupt", "Order"]
