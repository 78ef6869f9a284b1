"""What `providerhub chat` calls: one provider (-p), a chain (--chain), or a model alias's chain.

Names are resolved by `providerhub.targets`, as the gateway's are, and checked here, before
any network I/O. `-p NAME` is the provider's one-provider chain (the gateway's too), refused
here when the provider is marked not working (unless --ignore-working), does not serve the
model or lacks credentials. `--chain` takes comma-separated names. A single name that is a
chain in the config is that chain (its configured options, with any --ignore-working,
--retries, --hedge-after on top); otherwise every name is a provider or a configured chain,
and the list is an ad-hoc chain of them, in order. Without -p and --chain, `-m ALIAS` routes
through the chain of a `[models]` alias. A name that only a config could define (an alias, a
configured chain) when no config file was found is refused saying so (`no_config`).

Every run has a health store of its own (a fresh MemoryHealthStore with the `[health]` breaker
settings), as a run in its own process has: failures of an earlier run in the same process
never make a provider cool down. A one-shot run does not join a shared (Redis) store.
"""

from __future__ import annotations

import argparse

from ..config import CONFIG_ENV, default_path
from ..config.build import memory_health_store
from ..config.spec import HealthSettings
from ..errors import (
    InvalidRequestError,
    MissingCredentialsError,
    ModelNotSupportedError,
    ProviderHubError,
    ProviderNotFoundError,
    ProviderNotWorkingError,
    TargetNotFoundError,
)
from ..provider import Provider
from ..routing import FallbackChain, policy
from ..targets import Target, Targets
from .common import Setup, UsageError

CHAIN_ONLY = (("retries", "--retries"), ("hedge_after", "--hedge-after"))
"""Options that only a chain has, by argparse dest and flag."""


def select(args: argparse.Namespace, setup: Setup) -> Target:
    """The chain the arguments name (`single` for -p), and the model to ask it for."""
    settings = setup.config.health if setup.config is not None else HealthSettings()
    targets = Targets(setup.registry, setup.config, health=memory_health_store(settings))
    if args.provider is not None:
        for dest, flag in CHAIN_ONLY:
            if getattr(args, dest) is not None:
                raise UsageError(f"{flag} is a chain option: use it with --chain")
        return Target(_single(args, targets), args.model, single=True)
    if args.chain is not None:
        return Target(_chain(args.chain, args, targets), args.model)
    config = setup.config
    if config is None and args.model:
        raise UsageError(
            f"{no_config(f'-m {args.model!r} cannot be a model alias')}, "
            "or say what to call: -p NAME or --chain A,B,C"
        )
    alias = config.resolve_model(args.model) if config is not None and args.model else None
    if alias is None:
        raise UsageError(
            "say what to call: -p NAME, --chain A,B,C or a configured chain's name, "
            "or -m with a model alias from the config's [models]"
        )
    return Target(_configured(alias.chain, args, targets), alias.model)


def no_config(consequence: str) -> str:
    """What to say when a name only a config could define was given and no config file was
    found: that, what it means for the name, where the file was looked for, how to name one."""
    return (
        f"no config file found, so {consequence}: looked for {default_path()} "
        f"(${CONFIG_ENV} is not set); name one with --config PATH or ${CONFIG_ENV}"
    )


def _single(args: argparse.Namespace, targets: Targets) -> FallbackChain:
    """The one-provider chain of -p, refused if the provider cannot serve this call at all."""
    name: str = args.provider
    try:
        chain = targets.single(name)
    except ProviderNotFoundError:
        config = targets.config
        if config is not None and config.find_chain(name) is not None:
            raise UsageError(f"{name!r} is a chain in {config.path}: use --chain {name}") from None
        raise
    [provider] = chain.members
    ruled_out = policy.skip(provider, args.model, ignore_working=args.ignore_working)
    if ruled_out is not None:
        raise _refusal(provider, args.model, ruled_out)
    return chain.replace(ignore_working=True) if args.ignore_working else chain


def _refusal(provider: Provider, model: str, ruled_out: policy.Skip) -> ProviderHubError:
    """The typed error (exit code 3) for a provider -p cannot ask at all."""
    if ruled_out.kind == "not working":
        return ProviderNotWorkingError(provider.name)
    if ruled_out.kind == "credentials":
        return MissingCredentialsError(provider.name, reason=ruled_out.detail)
    if not model:
        return InvalidRequestError(
            f"provider {provider.name!r} has no default model; name one with -m MODEL"
        )
    return ModelNotSupportedError(provider.name, model)


def _chain(spec: str, args: argparse.Namespace, targets: Targets) -> FallbackChain:
    names = [name.strip() for name in spec.split(",")]
    if not all(names):
        raise UsageError(f"--chain {spec!r} has an empty name; give names separated by commas")
    if len(names) == 1 and targets.chain(names[0]) is not None:
        return _configured(names[0], args, targets)
    members = [_member(name, args, targets) for name in names]
    return FallbackChain(
        members,
        registry=targets.registry,
        health=targets.health,
        ignore_working=args.ignore_working,
        retries=args.retries or 0,
        hedge_after=args.hedge_after,
    )


def _member(name: str, args: argparse.Namespace, targets: Targets) -> Provider:
    """A name in a --chain list: a configured chain (it nests, with --ignore-working), else a
    provider (TargetNotFoundError when it is neither; without a config, and with no close
    name to suggest, it says no config file was found)."""
    try:
        member = targets.member(name)
    except TargetNotFoundError as exc:
        if targets.config is not None or exc.suggestions:
            raise
        note = no_config("no chain is configured")
        raise TargetNotFoundError(name, f"{exc}; {note}", exc.suggestions) from None
    if isinstance(member, FallbackChain):
        return _override(member, args.ignore_working, None, None)
    return member


def _configured(name: str, args: argparse.Namespace, targets: Targets) -> FallbackChain:
    """The configured chain `name`, with the command line's chain options on top."""
    return _override(targets.configured(name), args.ignore_working, args.retries, args.hedge_after)


def _override(
    chain: FallbackChain, ignore_working: bool, retries: int | None, hedge_after: float | None
) -> FallbackChain:
    """`chain` rebuilt with the options given; --ignore-working reaches nested chains too."""
    if not ignore_working and retries is None and hedge_after is None:
        return chain
    members = [
        _override(member, ignore_working, None, None)
        if isinstance(member, FallbackChain)
        else member
        for member in chain.members
    ]
    changes: dict[str, object] = {"providers": members}
    if ignore_working:
        changes["ignore_working"] = True
    if retries is not None:
        changes["retries"] = retries
    if hedge_after is not None:
        changes["hedge_after"] = hedge_after
    return chain.replace(**changes)
