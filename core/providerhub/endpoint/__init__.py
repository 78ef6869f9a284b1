"""Helpers for a plugin whose provider is one configured HTTP endpoint.

`options` checks the configuration every such provider takes (`base_url`, `api_key_env`,
`headers`, `headers_env`, lists, flags) with one wording for every plugin; `credentials` holds
the key and extra headers, reads environment variables at call time, hands every secret it
sends to `providerhub.redaction.remember` and scrubs echoed secrets from errors; `call` is the
request/answer loop of a JSON-or-SSE endpoint (a JSON body bounded by `http.MAX_BODY`); `provider`
is `EndpointProvider`, the base class that answers `supports_model` and `missing_credentials`
from those. Nothing here
imports aiohttp at module level: a plugin may import these where it defines its provider.
"""

from __future__ import annotations

__all__: list[str] = []
