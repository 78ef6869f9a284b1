"""Startup: `providerhub providers` with many extra plugin distributions installed.

Writes N real plugin distributions (package + dist-info with entry_points.txt, each registering
one provider) into a temporary directory, puts it on PYTHONPATH (before any inherited one, so
`PYTHONPATH=/checkout/core` measures another commit's code), and times the console script
`providerhub providers` as a whole process (wall clock, median of R runs after a warm-up),
alternating with `providerhub providers` without the extra plugins, so both face the same
machine. It also times a bare `python -c pass`, and importing the plugin modules alone (no
discovery, no registry: the floor of any listing that imports them), then shows that listing
does not import aiohttp (a sys.modules check and the `-X importtime` total), and lists the
slowest imports.

Bytecode is cached as in a pip install (children get PYTHONPYCACHEPREFIX in the temporary
directory, never PYTHONDONTWRITEBYTECODE); one extra line measures the cold, uncached case.

    .venv/bin/python bench/bench_startup.py [--plugins 500] [--runs 15]

Targets: with N extra plugins at most 1.5x the median without them (issue 11: loading stays
linear and small), and with at most 50 under 0.15 s wall median (issue 2); the exit status is 1
if one is missed (or if listing imported aiohttp).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import verdicts

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from plugin_dists import write_dist  # type: ignore[import-not-found,unused-ignore]

TARGET = 0.15
RATIO = 1.5
SCRIPT = str(Path(sys.executable).parent / "providerhub")
PLUGIN = """
import providerhub


class Bench{index:03d}(providerhub.AsyncGeneratorProvider):
    url = "http://127.0.0.1/bench/{index}"
    working = {working}
    supports_gpt_35_turbo = True

    async def create_async_generator(self, model, messages, **kwargs):
        yield "bench"


@providerhub.hookimpl
def register_providers(register):
    register(Bench{index:03d})
"""
CHECK = """
import sys
from providerhub.cli import main
code = main(["providers"])
sys.stderr.write(f"exit={code} aiohttp_imported={'aiohttp' in sys.modules}\\n")
"""


def write_plugins(site: Path, count: int) -> None:
    for index in range(count):
        module = f"phbench_{index:03d}"
        write_dist(
            site,
            f"phbench-{index:03d}",
            version="1.0",
            entry_points={f"bench{index:03d}": module},
            files={f"{module}.py": PLUGIN.format(index=index, working=index % 2 == 0)},
        )


def wall(*runs_of: tuple[list[str], dict[str, str]], runs: int) -> list[list[float]]:
    """Wall-clock seconds of each (command, env) as a whole process, `runs` times after one
    warm-up, the commands alternating."""
    times: list[list[float]] = [[] for _ in runs_of]
    for attempt in range(runs + 1):
        for samples, (command, env) in zip(times, runs_of, strict=True):
            start = time.perf_counter()
            subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
            if attempt:
                samples.append(time.perf_counter() - start)
    return times


def env_with(site: Path | None, pycache: Path | None) -> dict[str, str]:
    """The child environment: plugins from `site`, bytecode cached under `pycache` (or never)."""
    dropped = ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    inherited = os.environ.get("PYTHONPATH")
    paths = [str(site)] if site is not None else []
    if inherited:
        paths.append(inherited)
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    if pycache is None:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def importtime(env: dict[str, str]) -> tuple[float, list[tuple[int, str]]]:
    """Total import seconds of the listing path and its modules by cumulative microseconds."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", CHECK],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    rows = []
    for line in result.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if match:
            rows.append((int(match[1]), len(match[2]), match[3]))
    if "aiohttp_imported=False" not in result.stderr:
        raise SystemExit(f"listing imported aiohttp:\n{result.stderr[-2000:]}")
    if any(name == "aiohttp" or name.startswith("aiohttp.") for _, _, name in rows):
        raise SystemExit("aiohttp appears in -X importtime output")
    top_level = sum(cumulative for cumulative, depth, _ in rows if depth == 1)
    slowest = sorted(((cumulative, name) for cumulative, _, name in rows), reverse=True)
    return top_level / 1e6, slowest[:12]


def report(label: str, times: list[float]) -> float:
    median = statistics.median(times)
    print(
        f"  {label:<44} median {median * 1000:6.1f} ms  (min {min(times) * 1000:.1f}, "
        f"max {max(times) * 1000:.1f})"
    )
    return median


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugins", type=int, default=500)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="providerhub-bench-") as tmp:
        site, pycache = Path(tmp) / "site", Path(tmp) / "pycache"
        write_plugins(site, args.plugins)
        env = env_with(site, pycache)
        listed = subprocess.run(
            [SCRIPT, "providers", "--json"], env=env, check=True, capture_output=True, text=True
        )
        count = listed.stdout.count('"name": "Bench')
        if count != args.plugins:
            raise SystemExit(f"expected {args.plugins} bench providers, listed {count}")

        print(f"providerhub providers, {args.runs} runs each (wall clock, whole process):")
        [floor] = wall(([sys.executable, "-c", "pass"], env), runs=args.runs)
        report("python -c pass (interpreter floor)", floor)
        bare, loaded = wall(
            ([SCRIPT, "providers"], env_with(None, pycache)),
            ([SCRIPT, "providers"], env),
            runs=args.runs,
        )
        none = report("providerhub providers, no extra plugins", bare)
        median = report(f"providerhub providers, {args.plugins} extra plugins", loaded)
        [cold] = wall(([SCRIPT, "providers"], env_with(site, None)), runs=args.runs)
        report("  same, no bytecode cache (cold)", cold)
        modules = ", ".join(f"phbench_{index:03d}" for index in range(args.plugins))
        alone, imported = wall(
            ([sys.executable, "-c", "import providerhub"], env),
            ([sys.executable, "-c", f"import providerhub, {modules}"], env),
            runs=args.runs,
        )
        floor_added = report(f"import providerhub, {args.plugins} plugin modules", imported)
        floor_added -= report("import providerhub", alone)
        print(
            f"  importing the plugin modules alone adds {floor_added * 1000:.1f} ms: a listing "
            f"that imports them is at least {(none + floor_added) / none:.2f}x no extra plugins"
        )
        checks = [
            (
                f"{args.plugins} extra plugins <= {RATIO}x no extra plugins",
                f"{median / none:.2f}x (+{(median - none) * 1000:.1f} ms)",
                median <= RATIO * none,
            )
        ]
        if args.plugins <= 50:
            checks.append(
                (
                    f"target < {TARGET * 1000:.0f} ms with {args.plugins} extra plugins",
                    f"median {median * 1000:.1f} ms",
                    median < TARGET,
                )
            )
        status = verdicts(checks)

        total, slowest = importtime(env)
        print("\naiohttp imported while listing: no (sys.modules and -X importtime agree)")
        print(f"-X importtime, all top-level imports of the listing path: {total * 1000:.1f} ms")
        print("slowest imports (cumulative):")
        for micros, name in slowest:
            print(f"  {micros / 1000:6.1f} ms  {name}")
    return status


if __name__ == "__main__":
    sys.exit(main())
