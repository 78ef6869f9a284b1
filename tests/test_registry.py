"""The registry against real plugin distributions on a temporary sys.path entry.

Each broken plugin must be recorded with its exact reason while the good one next to it loads
and streams from a loopback upstream.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pluggy
import providerhub
import pytest
from plugin_dists import (
    GOOD_URL_ENV,
    RAISING_REASON,
    ZOO_ERRORS,
    write_dist,
    write_good_plugin,
    write_plugin_zoo,
    write_raising_plugin,
)
from providerhub import (
    AsyncGeneratorProvider,
    PluginError,
    ProviderNotFoundError,
    Registry,
    default_registry,
)
from providerhub.registry import STRICT_ENV
from providerhub.testing import FakeUpstream, Reply

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def add_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Path]]:
    """Make directories to prepend to sys.path; their modules are forgotten afterwards."""
    made: list[Path] = []

    def add(name: str) -> Path:
        site = tmp_path / name
        site.mkdir()
        monkeypatch.syspath_prepend(str(site))
        made.append(site)
        return site

    yield add
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None) or ""
        if any(origin.startswith(str(site)) for site in made):
            del sys.modules[name]
    importlib.invalidate_caches()


@pytest.fixture
def site(add_site: Callable[[str], Path]) -> Path:
    return add_site("site")


def ours(registry: Registry) -> dict[tuple[str, str], str]:
    """Recorded failures of the test distributions (other installed plugins may exist)."""
    return {
        (failure.plugin, failure.distribution): failure.reason
        for failure in registry.errors
        if failure.distribution and failure.distribution.startswith("ph-")
    }


async def test_good_plugin_works_next_to_broken_ones(
    site: Path, fake_upstream: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream: FakeUpstream = await fake_upstream(Reply.text("Hel", "lo", " there"))
    monkeypatch.setenv(GOOD_URL_ENV, f"{upstream.url}/api/chat")
    write_plugin_zoo(site)

    registry = Registry.discover()

    assert ours(registry) == ZOO_ERRORS
    for info in registry.plugins:
        if info.distribution and info.distribution.startswith("ph-"):
            expected = [ZOO_ERRORS[(info.name, info.distribution)]] if info.name != "good" else []
            assert info.errors == expected
    good = next(info for info in registry.plugins if info.name == "good")
    assert (good.distribution, good.version, good.entry_point) == (
        "ph-good",
        "1.0",
        "good = ph_good",
    )
    assert good.providers == ["GoodProvider", "Dormant"]
    assert good.error is None
    for name in ("HalfRegistered", "Misspelled", "WrongArgs", "ClashA", "ClashB", "NotAProvider"):
        assert name not in registry
    assert "codelinkava" in registry

    provider = registry.get("GOODPROVIDER")
    assert provider is sys.modules["ph_good"].GoodProvider
    text = await provider.create_async("gpt-4", HI)
    assert text == "Hello there"
    [request] = upstream.requests
    assert (request.method, request.path) == ("POST", "/api/chat")
    assert request.json == {"messages": HI, "temperature": 0.6, "stream": True}


def test_failures_keep_their_tracebacks(site: Path) -> None:
    write_plugin_zoo(site)
    registry = Registry()
    traces = {failure.plugin: failure.traceback for failure in registry.errors}
    assert "ModuleNotFoundError: No module named 'ph_missing_dependency'" in traces["importerror"]
    assert "ph_importerror.py" in traces["importerror"]
    assert 'raise RuntimeError("boom in plugin")' in traces["raises"]
    assert traces["twin"] == ""
    failure = next(f for f in registry.errors if f.plugin == "raises")
    assert (
        str(failure)
        == "raises (ph-raises 1.0): register_providers raised RuntimeError: boom in plugin"
    )


def test_installed_codelinkava_is_discovered() -> None:
    registry = Registry()
    entry = next(e for e in registry.entries() if e.provider.name == "CodeLinkAva")
    assert entry.plugin.distribution == "providerhub-codelinkava"
    assert entry.plugin.entry_point == "codelinkava = providerhub_codelinkava"
    provider = registry.get("codelinkava")
    assert provider.working is False
    assert provider.supports_model("gpt-3.5-turbo")
    assert not provider.supports_model("gpt-4")


def test_same_distribution_twice_on_sys_path_loads_once(
    add_site: Callable[[str], Path],
) -> None:
    write_good_plugin(add_site("first"))
    write_good_plugin(add_site("second"))
    registry = Registry()
    assert [info.name for info in registry.plugins].count("good") == 1
    assert ours(registry) == {}
    assert "goodprovider" in registry


def test_an_entry_point_name_repeated_in_one_distribution_is_a_clash(site: Path) -> None:
    info = write_dist(site, "ph-dup", files={"ph_x.py": "", "ph_y.py": ""})
    (info / "entry_points.txt").write_text("[providerhub]\ndup = ph_x\ndup = ph_y\n")
    registry = Registry()
    reason = "entry point name 'dup' is declared 2 times by ph-dup 1.0; neither is loaded"
    assert [(f.plugin, f.reason) for f in registry.errors if f.distribution == "ph-dup"] == [
        ("dup", reason),
        ("dup", reason),
    ]
    assert {"ph_x", "ph_y"}.isdisjoint(sys.modules)


def test_two_entry_points_for_one_module_load_it_once(site: Path) -> None:
    write_good_plugin(site)
    write_dist(site, "ph-alias", entry_points={"alias": "ph_good"})
    registry = Registry()
    assert ours(registry) == {
        ("good", "ph-good"): "the same plugin object is already loaded as plugin 'alias'"
    }
    alias = next(info for info in registry.plugins if info.name == "alias")
    assert (alias.distribution, alias.providers) == ("ph-alias", ["GoodProvider", "Dormant"])


def test_strict_mode_reraises_the_first_failure_with_its_traceback(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_good_plugin(site)
    write_dist(
        site,
        "ph-importerror",
        entry_points={"importerror": "ph_importerror"},
        files={"ph_importerror.py": "import ph_missing_dependency\n"},
    )
    monkeypatch.setenv(STRICT_ENV, "1")
    with pytest.raises(ModuleNotFoundError, match="ph_missing_dependency") as raised:
        Registry()
    assert any(str(entry.path).endswith("ph_importerror.py") for entry in raised.traceback)


def test_strict_mode_raises_plugin_error_for_a_recorded_problem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(STRICT_ENV, "1")
    with pytest.raises(PluginError) as raised:
        Registry([plugin_registering(Named("A"), Named("a"))], entry_points=False)
    assert raised.value.reason == "provider name 'a' is already registered by test-plugin"


def test_strict_mode_raises_a_hook_error_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STRICT_ENV, "1")
    with pytest.raises(PluginError) as raised:
        Registry([plugin_registering(object())], entry_points=False)
    assert raised.value.reason == (
        "registered an instance of 'object', which is not a provider: it has no name"
    )


def test_get_is_case_insensitive_and_suggests_close_names() -> None:
    registry = Registry(
        [plugin_registering(Named("GoodProvider"), Named("Other"))], entry_points=False
    )
    assert registry.get("goodprovider").name == "GoodProvider"
    with pytest.raises(ProviderNotFoundError) as raised:
        registry.get("goodprovidr")
    assert raised.value.suggestions == ("GoodProvider",)
    assert str(raised.value) == "no provider named 'goodprovidr'; did you mean GoodProvider?"
    with pytest.raises(ProviderNotFoundError, match="did you mean GoodProvider"):
        registry.get("good")
    with pytest.raises(ProviderNotFoundError) as raised:
        registry.get("zzz")
    assert raised.value.suggestions == ()
    assert str(raised.value) == "no provider named 'zzz'"


def test_objects_only_without_entry_points() -> None:
    registry = Registry([plugin_registering(Named("Only"))], entry_points=False)
    assert [p.name for p in registry.providers()] == ["Only"]
    assert "codelinkava" not in registry
    [info] = registry.plugins
    assert (info.name, info.distribution, info.providers, info.error) == (
        "test-plugin",
        None,
        ["Only"],
        None,
    )


def test_providers_filter_by_working_and_model() -> None:
    fast = Named("Fast", working=True, gpt4=True)
    old = Named("Old", working=False)
    registry = Registry([plugin_registering(fast, old)], entry_points=False)
    assert registry.providers() == [fast, old]
    assert registry.providers(working=True) == [fast]
    assert registry.providers(working=False) == [old]
    assert registry.providers(model="gpt-4") == [fast]
    assert registry.providers(model="gpt-3.5-turbo") == [fast, old]
    assert registry.providers(working=False, model="gpt-4") == []


def test_a_provider_raising_in_a_query_does_not_match_and_is_recorded_once(site: Path) -> None:
    write_good_plugin(site)
    write_raising_plugin(site)
    registry = Registry()
    assert "codex" in registry
    for _ in range(2):
        names = [p.name for p in registry.providers(model="gpt-4")]
        assert "GoodProvider" in names
        assert "CodeX" not in names
    raising = next(info for info in registry.plugins if info.name == "raising")
    assert (raising.providers, raising.errors) == (["CodeX"], [RAISING_REASON])
    assert ours(registry) == {("raising", "ph-raising"): RAISING_REASON}
    assert "RuntimeError: boom" in registry.errors[-1].traceback
    assert "CodeX" in [p.name for p in registry.providers()]


def test_a_working_flag_that_raises_does_not_match() -> None:
    flaky = Flaky("Flaky")
    fine = Named("Fine")
    registry = Registry([plugin_registering(flaky, fine)], entry_points=False)
    flaky.broken = True
    assert registry.providers(working=True) == [fine]
    assert registry.providers(working=False) == []
    assert registry.providers(model="gpt-3.5-turbo") == [flaky, fine]
    assert [(f.plugin, f.reason) for f in registry.errors] == [
        ("test-plugin", "Flaky.working raised RuntimeError: flaky")
    ]


def test_strict_mode_raises_a_query_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STRICT_ENV, "1")
    flaky = Flaky("Flaky")
    registry = Registry([plugin_registering(flaky)], entry_points=False)
    flaky.broken = True
    with pytest.raises(RuntimeError) as raised:
        registry.providers(working=True)
    assert str(raised.value) == "flaky"


@pytest.mark.parametrize(
    ("plugin", "reason"),
    [
        (
            "types-raise",
            "register_provider_types raised RuntimeError: types boom",
        ),
        (
            "providers-raise",
            "register_providers raised RuntimeError: providers boom",
        ),
    ],
)
def test_a_failed_hook_takes_back_everything_its_plugin_registered(
    plugin: str, reason: str
) -> None:
    good = Named("Good")
    registry = Registry([HALF_FAILED[plugin], plugin_registering(good)], entry_points=False)
    assert [(f.plugin, f.reason) for f in registry.errors] == [("half", reason)]
    assert registry.providers() == [good]
    assert registry.provider_types() == {}
    half = registry.plugins[0]
    assert (half.name, half.providers, half.provider_types, half.errors) == (
        "half",
        [],
        [],
        [reason],
    )
    assert not registry.pm.is_registered(HALF_FAILED[plugin])


def test_a_rejected_registration_keeps_the_rest_of_the_plugin() -> None:
    registry = Registry([HalfFailed(fail=None)], entry_points=False)
    [failure] = registry.errors
    assert failure.reason == "provider type '' needs a name and a callable factory"
    assert [p.name for p in registry.providers()] == ["Kept", "Second"]
    assert list(registry.provider_types()) == ["kept"]


@pytest.mark.parametrize(
    ("plugin", "reason"),
    [
        (types.SimpleNamespace(), "no hook implementations found"),
        ("async", "register_providers raised TypeError: register_providers must be a plain"),
        ("wrapper", "register_providers raised TypeError: register_providers must not be a hook"),
        ("exit", "register_providers raised SystemExit: 3"),
        ("string", "registered an instance of 'str', which is not a provider: it has no name"),
    ],
)
def test_bad_plugin_objects_are_recorded(plugin: object, reason: str) -> None:
    good = Named("Good")
    plugin = BAD_PLUGINS.get(plugin, plugin) if isinstance(plugin, str) else plugin
    registry = Registry([plugin, plugin_registering(good)], entry_points=False)
    [failure] = registry.errors
    assert failure.reason.startswith(reason)
    assert registry.providers() == [good]


def test_a_hook_may_take_a_subset_of_the_arguments() -> None:
    class NoArguments:
        called = False

        @providerhub.hookimpl
        def register_providers(self) -> None:
            NoArguments.called = True

    registry = Registry([NoArguments()], entry_points=False)
    assert NoArguments.called
    assert registry.errors == []


def test_default_registry_is_discovered_once() -> None:
    assert default_registry() is default_registry()
    assert "codelinkava" in default_registry()


def test_public_api_exports() -> None:
    assert providerhub.Registry is Registry
    assert providerhub.hookimpl.project_name == "providerhub"


class Named(AsyncGeneratorProvider):
    """A provider instance whose name and flags the test chooses."""

    def __init__(self, name: str, *, working: bool = True, gpt4: bool = False) -> None:
        self.name = name
        self.working = working
        self.supports_gpt_35_turbo = True
        self.supports_gpt_4 = gpt4


class Flaky(AsyncGeneratorProvider):
    """A provider whose `working` raises once the test sets `broken`."""

    supports_gpt_35_turbo = True
    broken = False

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def working(self) -> bool:  # type: ignore[override]
        if self.broken:
            raise RuntimeError("flaky")
        return True


class HalfFailed:
    """Registers two providers and two provider types; `fail` names the hook that then raises.

    With `fail=None` nothing raises, but one provider type is refused (it has no name).
    """

    __name__ = "half"

    def __init__(self, fail: str | None) -> None:
        self.fail = fail

    @providerhub.hookimpl
    def register_providers(self, register: Callable[[object], None]) -> None:
        register(Named("Kept"))
        if self.fail == "providers":
            raise RuntimeError("providers boom")
        register(Named("Second"))

    @providerhub.hookimpl
    def register_provider_types(
        self, register: Callable[[str, Callable[..., object]], None]
    ) -> None:
        register("kept", Named)
        if self.fail == "types":
            raise RuntimeError("types boom")
        register("", Named)


HALF_FAILED: dict[str, object] = {
    "types-raise": HalfFailed(fail="types"),
    "providers-raise": HalfFailed(fail="providers"),
}


def plugin_registering(*providers: object) -> object:
    """A plugin object whose hook registers `providers`."""

    class Plugin:
        __name__ = "test-plugin"

        @providerhub.hookimpl
        def register_providers(self, register: Callable[[object], None]) -> None:
            for provider in providers:
                register(provider)

    return Plugin()


class AsyncHook:
    @providerhub.hookimpl
    async def register_providers(self, register: Callable[[object], None]) -> None:
        register(Named("Never"))


class WrapperHook:
    @providerhub.hookimpl(wrapper=True)
    def register_providers(self, register: Callable[[object], None]) -> Iterator[None]:
        yield


class ExitHook:
    @providerhub.hookimpl
    def register_providers(self, register: Callable[[object], None]) -> None:
        raise SystemExit(3)


BAD_PLUGINS: dict[str, object] = {
    "async": AsyncHook(),
    "wrapper": WrapperHook(),
    "exit": ExitHook(),
    "string": plugin_registering("a string"),
}


# Many plugins: each plugin's own hooks found without scanning every plugin's (issue 11).


def module_plugin(name: str, source: str) -> types.ModuleType:
    """A real module object made from `source`, as an entry point's import gives one."""
    module = types.ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


MANY = """
import pluggy
import providerhub
from providerhub import AsyncGeneratorProvider

CONSTANT = 3
helper = len


class Many{index}(AsyncGeneratorProvider):
    working = True


@providerhub.hookimpl
def register_providers(register):
    register(Many{index})
    if {index} == 150:
        raise RuntimeError("plugin 150 breaks")
"""


def test_hundreds_of_module_plugins_load_in_order_with_one_rolled_back() -> None:
    plugins = [module_plugin(f"many{index}", MANY.format(index=index)) for index in range(300)]

    registry = Registry(plugins, entry_points=False)

    assert [p.name for p in registry.providers()] == [
        f"Many{index}" for index in range(300) if index != 150
    ]
    assert [(f.plugin, f.reason) for f in registry.errors] == [
        ("many150", "register_providers raised RuntimeError: plugin 150 breaks")
    ]
    assert not registry.pm.is_registered(plugins[150])
    assert registry.pm.is_registered(plugins[151])


ORDERED = """
import pluggy
import providerhub


@providerhub.hookimpl(specname="register_providers", trylast=True)
def a_last(register):
    register(ORDER["last"])


@providerhub.hookimpl(specname="register_providers", tryfirst=True)
def b_first(register):
    register(ORDER["first"])


@providerhub.hookimpl
def register_providers(register):
    register(ORDER["plain"])


@providerhub.hookimpl(optionalhook=True)
def not_a_hook_but_optional():
    pass


class register_provider_types:
    providerhub_impl = {}  # a class is never a hook implementation, marked or not


def c_unmarked(register):
    raise AssertionError("an unmarked function is not a hook")
"""


def test_a_plugins_own_implementations_run_in_pluggys_order() -> None:
    plugin = module_plugin("ordered", ORDERED)
    plugin.ORDER = {key: Named(key.title()) for key in ("last", "first", "plain")}  # type: ignore[attr-defined]
    before = plugin_registering(Named("Before"))

    registry = Registry([before, plugin], entry_points=False)

    impls = registry.pm.hook.register_providers.get_hookimpls()
    pluggy_order = [impl.function.__name__ for impl in impls if impl.plugin is plugin]
    assert pluggy_order == ["a_last", "register_providers", "b_first"]
    assert [p.name for p in registry.providers()] == ["Before", "Last", "Plain", "First"]
    assert registry.errors == []


def test_an_object_that_is_not_an_async_generator_provider_still_needs_the_metadata() -> None:
    class Bare:
        name = "Bare"
        working = True

        def create_async_generator(self, model: str, messages: object) -> None: ...

        def supports_model(self, model: str) -> bool:
            return True

    registry = Registry([plugin_registering(Bare(), Named("Good"))], entry_points=False)

    [failure] = registry.errors
    assert failure.reason == (
        "registered an instance of 'Bare', which is not a provider: it lacks the provider metadata"
    )
    assert [p.name for p in registry.providers()] == ["Good"]


def test_loading_never_asks_pluggy_to_scan_every_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """pluggy's `get_hookcallers` and `is_registered` walk every registered plugin: asked once
    per plugin, loading N plugins would cost N^2."""

    def scan(*args: object) -> None:
        raise AssertionError("a scan of every plugin while loading")

    monkeypatch.setattr(pluggy.PluginManager, "get_hookcallers", scan)
    monkeypatch.setattr(pluggy.PluginManager, "is_registered", scan)
    plugins = [module_plugin(f"scan{index}", MANY.format(index=index)) for index in range(20)]

    registry = Registry([*plugins, plugins[0]], entry_points=False)

    assert len(registry.providers()) == 20
    assert [f.reason for f in registry.errors] == [
        "the same plugin object is already loaded as plugin 'scan0'"
    ]
