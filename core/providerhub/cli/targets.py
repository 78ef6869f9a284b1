"""What `providerhub chat` calls: one provider (-p), a chain (--chain), or a model alias's chain.

`--chain` takes comma-separated names. A single name that is a chain in the config is that chain
(its configured options, with any --ignore-working, --retries, --hedge-after on top); otherwise
every name is a provider or a configured chain, and the list is an ad-hoc chain of them, in
order (so `--chain NAME` with a provider's name is a one-provider chain, with its trace).
Without -p and --chain, `-m ALIAS` routes through the chain of a `[models]` alias.
Names are resolved and checked here, before any network I/O.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from .. import suggest
from ..config import Config
from ..errors import ModelNotSupportedError, ProviderNotFoundError, ProviderNotWorkingError
from ..provider import Provider
from ..routing import FallbackChain
from .common import Setup, TargetNotFoundError, UsageError

CHAIN_ONLY = (("retries", "--retries"), ("hedge_after", "--hedge-after"))
"""Options that only a chain has, by argparse dest and flag."""


@dataclass(frozen=True, slots=True)
class Target:
    """What to call and with which model ("" means each provider's default)."""

    provider: Provider
    model: str


def select(args: argparse.Namespace, setup: Setup) -> Target:
    """The provider or chain the arguments name, and the model to ask it for."""
    if args.provider is not None:
        for dest, flag in CHAIN_ONLY:
            if getattr(args, dest) is not None:
                raise UsageError(f"{flag} is a chain option: use it with --chain")
        return Target(_single(args, setup), args.model)
    if args.chain is not None:
        return Target(_chain(args.chain, args, setup), args.model)
    config = setup.config
    alias = config.resolve_model(args.model) if config is not None and args.model else None
    if config is None or alias is None:
        raise UsageError(
            "say what to call: -p NAME, --chain A,B,C or a configured chain's name, "
            "or -m with a model alias from the config's [models]"
        )
    return Target(_configured(config, alias.chain, args, setup), alias.model)


def _single(args: argparse.Namespace, setup: Setup) -> Provider:
    """The provider named by -p, refused if marked not working or off-model."""
    try:
        provider = setup.registry.get(args.provider)
    except ProviderNotFoundError:
        if setup.config is not None and setup.config.find_chain(args.provider) is not None:
            raise UsageError(
                f"{args.provider!r} is a chain in {setup.config.path}: use --chain {args.provider}"
            ) from None
        raise
    if not provider.working and not args.ignore_working:
        raise ProviderNotWorkingError(provider.name)
    if args.model and not provider.supports_model(args.model):
        raise ModelNotSupportedError(provider.name, args.model)
    return provider


def _chain(spec: str, args: argparse.Namespace, setup: Setup) -> FallbackChain:
    names = [name.strip() for name in spec.split(",")]
    if not all(names):
        raise UsageError(f"--chain {spec!r} has an empty name; give names separated by commas")
    config = setup.config
    if len(names) == 1 and config is not None and config.find_chain(names[0]) is not None:
        return _configured(config, names[0], args, setup)
    members = [_member(name, args, setup) for name in names]
    return FallbackChain(
        members,
        registry=setup.registry,
        ignore_working=args.ignore_working,
        retries=args.retries or 0,
        hedge_after=args.hedge_after,
    )


def _member(name: str, args: argparse.Namespace, setup: Setup) -> Provider:
    """A name in a --chain list: a configured chain (it nests), else a provider."""
    config = setup.config
    if config is not None and config.find_chain(name) is not None:
        chain = config.chain(name, setup.registry)
        return _override(chain, args.ignore_working, None, None)
    if name in setup.registry:
        return setup.registry.get(name)
    known = [provider.name for provider in setup.registry.providers()]
    known += list(config.chains) if config is not None else []
    raise TargetNotFoundError(name, suggest.suggest(name, known))


def _configured(config: Config, name: str, args: argparse.Namespace, setup: Setup) -> FallbackChain:
    """The configured chain `name`, with the command line's chain options on top."""
    chain = config.chain(name, setup.registry)
    return _override(chain, args.ignore_working, args.retries, args.hedge_after)


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
