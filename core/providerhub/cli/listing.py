"""`providerhub providers` and `providerhub plugins`: what is available, as a table or JSON.

`providers` lists plugin providers and the config's provider instances side by side, each with
its source (a distribution and version, or "config:<path>"); `plugins` lists installed plugin
distributions only. Listing reads metadata only: it never touches the network and never imports
aiohttp.

`providers --health` adds what the `[health]` store knows of each provider (circuit, cooldown
left, why it is open, last failure, latency estimate, requests in flight): with
`store = "redis"`, the circuits every gateway sharing that Redis opened (one round trip per
provider, the store's timeout bounding each; Redis not answering is an error, exit 4, as the
fallback view would show every circuit closed); with the memory store, only this process's
own view, in which every circuit is closed (a note on stderr says so). Only then is the store
built, so plain listing stays as cheap as before.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..errors import UpstreamConnectionError
from ..registry import Registered, Registry
from .common import config_option, load_registry, load_setup

if TYPE_CHECKING:
    from ..routing.health import ProviderHealth


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `providers` and `plugins` subcommands."""
    providers = commands.add_parser(
        "providers",
        help="list the providers of installed plugins and of the config",
        description="List providers: name, source (plugin distribution or config file), "
        "working, gpt-3.5, gpt-4, stream, url. With --health: working, circuit, cooldown left, "
        "requests in flight, latency, why the circuit is open, last failure.",
    )
    providers.add_argument("--json", action="store_true", help="print a JSON list")
    providers.add_argument("--working", action="store_true", help="only providers marked working")
    providers.add_argument("--model", metavar="M", help="only providers that serve model M")
    providers.add_argument(
        "--health",
        action="store_true",
        help="show each provider's circuit, cooldown, last failure, latency and requests in "
        "flight, from the [health] store (with Redis: the gateways' shared state)",
    )
    config_option(providers, default=argparse.SUPPRESS)
    providers.set_defaults(run=run_providers)

    plugins = commands.add_parser(
        "plugins",
        help="list installed plugins and their load errors",
        description="List plugins: distribution, version, entry point, providers, load errors.",
    )
    plugins.add_argument("--json", action="store_true", help="print a JSON list")
    plugins.set_defaults(run=run_plugins)


def run_providers(args: argparse.Namespace) -> int:
    """Print the providers, filtered by --working and --model; with --health, their health."""
    setup = load_setup(args.config)
    registry = setup.registry
    entries = registry.entries(working=True if args.working else None, model=args.model)
    if args.health:
        health = read_health(setup.config, [entry.provider.name for entry in entries])
        pairs = list(zip(entries, health, strict=True))
        if args.json:
            _print_json([provider_record(entry) | state.record() for entry, state in pairs])
        else:
            _print_table(HEALTH_COLUMNS, [_health_row(entry, state) for entry, state in pairs])
    elif args.json:
        _print_json([provider_record(entry) for entry in entries])
    else:
        _print_table(
            ("NAME", "SOURCE", "WORKING", "GPT-3.5", "GPT-4", "STREAM", "URL"),
            [_provider_row(entry) for entry in entries],
        )
    _warn_plugin_errors(registry)
    return 0


def run_plugins(args: argparse.Namespace) -> int:
    """Print the plugins with what they registered and why any failed."""
    registry = load_registry()
    if args.json:
        _print_json(
            [
                {
                    "name": info.name,
                    "distribution": info.distribution,
                    "version": info.version,
                    "entry_point": info.entry_point,
                    "providers": list(info.providers),
                    "provider_types": list(info.provider_types),
                    "error": info.error,
                    "errors": list(info.errors),
                }
                for info in registry.plugins
            ]
        )
        return 0
    rows = [
        (
            info.name,
            info.distribution or "-",
            info.version or "-",
            info.entry_point or "-",
            ", ".join([*info.providers, *(f"{name} (type)" for name in info.provider_types)])
            or "-",
            "error" if info.errors else "ok",
        )
        for info in registry.plugins
    ]
    _print_table(("PLUGIN", "DISTRIBUTION", "VERSION", "ENTRY POINT", "PROVIDERS", "STATUS"), rows)
    if registry.errors:
        sys.stdout.write("\nerrors:\n")
        for failure in registry.errors:
            sys.stdout.write(f"  {failure}\n")
    return 0


def provider_record(entry: Registered) -> dict[str, Any]:
    """One provider as JSON-ready metadata."""
    provider = entry.provider
    return {
        "name": provider.name,
        "plugin": entry.plugin.name,
        "distribution": entry.plugin.distribution,
        "version": entry.plugin.version,
        "source": entry.plugin.source,
        "working": bool(provider.working),
        "supports_gpt_35_turbo": bool(getattr(provider, "supports_gpt_35_turbo", False)),
        "supports_gpt_4": bool(getattr(provider, "supports_gpt_4", False)),
        "supports_stream": bool(provider.supports_stream),
        "needs_auth": bool(provider.needs_auth),
        "url": getattr(provider, "url", None),
    }


def _provider_row(entry: Registered) -> tuple[str, ...]:
    record = provider_record(entry)
    flags = (record[key] for key in ("supports_gpt_35_turbo", "supports_gpt_4", "supports_stream"))
    return (
        record["name"],
        entry.plugin.source,
        _yes(record["working"]),
        *(_yes(flag) for flag in flags),
        record["url"] or "-",
    )


HEALTH_COLUMNS = (
    "NAME",
    "WORKING",
    "CIRCUIT",
    "LEFT",
    "IN FLIGHT",
    "LATENCY",
    "WHY OPEN",
    "LAST FAILURE",
)
"""The table of `providers --health`."""


def read_health(config: Config | None, names: Sequence[str]) -> list[ProviderHealth]:
    """What the `[health]` store knows of each provider now (the store is closed after)."""
    import asyncio

    from ..config.build import build_health_store
    from ..config.spec import ConfigSpec

    spec = config if config is not None else ConfigSpec()
    store = build_health_store(spec)
    if spec.health.store == "memory":
        sys.stderr.write(
            'providerhub: note: [health] store is "memory": this is this process\'s own view '
            "(every circuit closed); a gateway's circuits show in its GET /v1/providers, or "
            'here with store = "redis"\n'
        )

    async def snapshots() -> list[ProviderHealth]:
        try:
            return list(await asyncio.gather(*(store.snapshot(name) for name in names)))
        finally:
            close = getattr(store, "aclose", None)
            if close is not None:
                await close()

    states = asyncio.run(snapshots())
    if not getattr(store, "shared", True):  # a fallback view would show every circuit closed
        raise UpstreamConnectionError(
            "health store", "Redis did not answer, so the circuits are unknown"
        )
    return states


def _health_row(entry: Registered, health: ProviderHealth) -> tuple[str, ...]:
    record = health.record()
    left, latency = record["seconds_left"], record["latency_ms"]
    return (
        entry.provider.name,
        _yes(bool(entry.provider.working)),
        health.circuit,
        "-" if left is None else f"{left:g}s",
        str(health.in_flight),
        "-" if latency is None else f"{latency:g} ms",
        record["reason"] or "-",
        record["last_failure"] or "-",
    )


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in (header, *rows)
    ]
    sys.stdout.write("".join(line.rstrip() + "\n" for line in lines))


def _print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def _warn_plugin_errors(registry: Registry) -> None:
    """Broken plugins do not stop the listing; each gets one line on stderr."""
    for failure in registry.errors:
        sys.stderr.write(f"providerhub: warning: plugin {failure}\n")
