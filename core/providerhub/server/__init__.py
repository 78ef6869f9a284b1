"""The OpenAI-compatible HTTP gateway (`providerhub serve`) in front of providers and chains.

Importing this package imports aiohttp.web; only the serve path does (`providerhub providers`
never does).

Routes (JSON errors are always `{"error": {"message", "type", "param", "code"}}`):

- `POST /v1/chat/completions`: an OpenAI request body. `model` picks the target (see
  `resolve`: alias, chain, provider, "NAME/MODEL", else the default chain with the model passed
  through; 404 `model_not_found` lists what exists). `messages` (the full shape: content
  parts, assistant `tool_calls`, `tool` results) are validated by providerhub;
  `stream`, `n` (only 1) and `stream_options.include_usage` are the gateway's; every other field
  (tools, tool_choice, response_format, temperature, max_tokens, stop, ...) is passed upstream
  as a request parameter, except the transport options `timeout`, `proxy`, `deadline`
  (refused: a client must not pick where the gateway connects). A field named like a Python
  argument (`self`, `provider`, ...) is forwarded as any other. A body nesting more than
  `wire.MAX_DEPTH` (64) levels, or holding `NaN` or an infinity (`Infinity`, `1e999`), is a
  400 naming the field. A bad request, or one needing
  a capability (tools, images, ...) no provider of the target has, is a 400 before any
  upstream I/O (the latter with code `unsupported_capability`, the capabilities named in the
  message and `param` the field needing the first: `messages`, `tools`, `response_format`,
  ...); providers lacking it are skipped.
- `GET /v1/models`: aliases, chains and providers as model objects (`owned_by` = their source:
  the config file or the plugin distribution; `kind` says which). `GET /v1/models/{id}` (the
  SDK's `models.retrieve`): one of them (any case), or for a model a chat request would route,
  an object with `kind` "routed" naming the chain; else 404 `model_not_found`.
- Any other endpoint: 404 `unknown_url`, naming the routes this gateway serves.
- `GET /v1/providers`: name, source, working, flags, credentials state, and the health store's
  view (`ProviderHealth.record`: `circuit` closed/open/half-open, `seconds_left`, `reason` it is
  open, `last_failure`, `latency_ms`, `in_flight`, `failures`; the shared view with Redis, so a
  circuit another replica opened shows), never an upstream's URL: clients of a gateway do not
  learn internal hosts.
- `GET /healthz` (and `HEAD`, like every GET route): `{"status": "ok"}` with counts; open even
  when auth is on.
- `GET /metrics`, with `[server] metrics = true` only (the `providerhub[metrics]` extra;
  without it the gateway does not start, a ConfigError): the Prometheus text format
  (`metrics`); like `/healthz` outside `/v1/`, so open even when auth is on (scrapers have
  no app key; it shows names and counts, never secrets, URLs or messages).

Streaming (`"stream": true`): the gateway waits for the first chunk before sending headers, so a
failure before it is a real status: every provider failed → 502 with one line per provider;
every provider asked answered 429 → 429 (Retry-After: the shortest asked), nobody could be
asked (not working, cooling down, at capacity, missing credentials) → 503; every one timed out
→ 504; every one rejected the request (400/413/422) → 400. A 429 or 503 says `Retry-After`
(seconds, rounded up) when a cooldown's time left is known; an answer no retry can heal (every
provider skipped or failed for good, any other 4xx) says `x-should-retry: false`, which the
openai SDK obeys (`status.py`). Then SSE exactly like OpenAI's: a first
`chat.completion.chunk` with `role` (and `content` "" before text, null before a tool call or
a refusal), content deltas, tool-call deltas (a call's first delta with `index`, `id`, `type`,
`function.name` and empty arguments, then argument fragments by `index`; never the id or name
again, even when the upstream repeats them), `refusal` deltas, `logprobs`, a final chunk with
`finish_reason` (the serving provider's, e.g. "length" or "tool_calls"; else "tool_calls" when
the answer made calls, "stop" otherwise), a usage chunk `{"choices": [], "usage": {...}}` when
`stream_options.include_usage` was asked and the serving provider reports usage (the gateway
never invents counts), and `data: [DONE]`. A failure after
the first chunk sends `data: {"error": {...}}` (code `stream_interrupted`) and ends the stream
without `[DONE]`: the client sees a truncated answer, never spliced text. A client that
disconnects cancels its handler, which closes the upstream connection at once.

Non-streaming: one `chat.completion` whose `message` has the joined text (null when the answer
is only tool calls), `tool_calls` and `refusal` when there were any, the serving provider's
`finish_reason`, `logprobs` when sent, and `usage` whenever the upstream gave any (the
OpenAI-compatible provider asks for it on every call); any failure is an error status (never
partial text). Both carry `x-providerhub-provider` (who served) and
`x-providerhub-route` (the path through nested chains, e.g. "default > local").

Error messages name the provider, the status and the upstream's own message, never an
upstream's URL or address (logs keep them), and every secret the process read (provider keys,
`headers_env` values, the gateway's own key) is redacted from every error body, SSE error event
and log line (`providerhub.redaction`); answers pass unchanged.

Health: every chain of the gateway shares one store, the one `[health]` configures (`resolve`):
this process's own, or Redis shared by every gateway pointed at it
(`providerhub.routing.redis_health`).

Auth: with a key (`[server] api_key_env` names the variable), `/v1/` needs
`Authorization: Bearer <key>`, compared in constant time, else 401; the key never appears in a
log line or a response (`create_app` remembers it as a secret). Logging: one line per
request on logger "providerhub.server" (method, path, status, provider, duration; 499 when the
client went away, also mid-write, with no error logged), never headers or bodies.

Limits (`[server]`, see `run` and `limits`): a request must arrive whole (head and body) within
`request_timeout` seconds (30) of its first byte, and a new connection must send one within
that time, else 408 `request_timeout` and the connection is closed (after a lingering close:
what the client still sends is dropped for up to `run.LINGER`, 2 s, so it reads its answer
rather than a reset, as after a head the parser refused); an idle keep-alive
connection is closed after `run.KEEPALIVE` (30 s). `/v1/` requests beyond
`max_concurrent_requests` (256) get 429 `server_busy` with `Retry-After: 1` at once, before
their body is read. A body is charged as it arrives at what it costs decoded (`limits.BYTE_COST`,
3 per byte, plus `limits.NODE_COST`, 160 per `{`, `[` or `,`), held until its answer ends: when
the bodies in flight would pass `limits.MAX_BODIES` (64 MiB) it is a 429 `server_busy`, when it
alone would, or passes `MAX_BODY` (16 MiB) of bytes, a 413 `body_too_large` (both close the
connection). A stream whose client leaves written bytes unread for `limits.WRITE_STALL` (30 s)
is aborted: the upstream is closed, the slot freed, the access line says 499. CORS
(`cors_origins`, off by default): see `cors`.

Shutdown on SIGINT/SIGTERM: stop accepting and close idle connections, give in-flight answers
exactly `shutdown_grace` seconds (`GRACE`, 5), then cut the rest (closing their upstreams): a
stream ends with `data: {"error": {...}}` (code `server_shutdown`) and no `[DONE]`, an answer
not begun is a 503 `server_shutdown`; stragglers get `limits.CUT_LIMIT` (1 s) more. Then the
upstream connections kept alive between requests (`providerhub.pool`) are closed too.
"""

from __future__ import annotations

from .app import create_app
from .resolve import Target, Targets
from .run import GRACE, serve, start
from .wire import PROVIDER_HEADER, ROUTE_HEADER, RequestError

__all__ = [
    "GRACE",
    "PROVIDER_HEADER",
    "ROUTE_HEADER",
    "RequestError",
    "Target",
    "Targets",
    "create_app",
    "serve",
    "start",
]
