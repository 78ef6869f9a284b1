"""Try `providerhub serve` offline: the gateway in front of two loopback fake upstreams.

It starts two FakeUpstreams on 127.0.0.1 (`flaky` always answers HTTP 500, `local` answers
"Hello from the local fake."), writes a providerhub.toml naming them (chain `default`, model
alias `fast`) to a temporary directory, runs `providerhub serve --config THAT --port PORT` and
prints the gateway's base URL with a `curl` and an openai SDK call to paste into another
terminal. Each answer comes from `local` after `flaky` failed (then cooled down), and says so
in its `x-providerhub-route` header. Ctrl-C or SIGTERM stops the gateway, then the fakes.

    python examples/serve_fakes.py [--port PORT]   # default 0: any free port
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import signal
import sys
import tempfile
from pathlib import Path

from providerhub.testing import FakeUpstream, Reply

CONFIG = """\
[providers.flaky]
use = "openai"
base_url = "{flaky}/v1"
default_model = "fake-model"

[providers.local]
use = "openai"
base_url = "{local}/v1"
default_model = "fake-model"

[chains.default]
providers = ["flaky", "local"]

[models]
fast = "default"

[server]
chain = "default"
"""
ANSWER = ("Hello ", "from ", "the local fake.")
STOPS = "(Ctrl-C stops the gateway and the fakes)"


def examples(base_url: str) -> list[str]:
    """The lines that show how to call the gateway at `base_url`."""
    body = json.dumps({"model": "fast", "messages": [{"role": "user", "content": "Hi"}]})
    curl = [
        "curl",
        "-s",
        f"{base_url}/chat/completions",
        "-H",
        "Content-Type: application/json",
        "-d",
        body,
    ]
    sdk = (
        "from openai import OpenAI; "
        f'client = OpenAI(base_url="{base_url}", api_key="unused"); '
        'print(client.chat.completions.create(model="fast", '
        'messages=[{"role": "user", "content": "Hi"}]).choices[0].message.content)'
    )
    return [
        "Try, from another terminal:",
        f"  {shlex.join(curl)}",
        f"  python -c {shlex.quote(sdk)}",
        STOPS,
    ]


async def main(port: int) -> int:
    async with (
        FakeUpstream(default=Reply.error(500, "model crashed")) as flaky,
        FakeUpstream(default=Reply.text(*ANSWER)) as local,
    ):
        with tempfile.TemporaryDirectory(prefix="providerhub-") as folder:
            config = Path(folder) / "providerhub.toml"
            config.write_text(CONFIG.format(flaky=flaky.url, local=local.url), encoding="utf-8")
            command = ["providerhub", "serve", "--config", str(config), "--port", str(port)]
            print(f"Fakes: flaky at {flaky.url} (HTTP 500), local at {local.url}")
            print(f"Gateway: {shlex.join(command)}", flush=True)
            return await serve(command[1:])


async def serve(arguments: list[str]) -> int:
    """Run the gateway (`python -m providerhub`, in a session of its own so that only this
    process gets Ctrl-C) until it exits or this process is asked to stop; its exit code."""
    gateway = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "providerhub",
        *arguments,
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    assert gateway.stdout is not None
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        line = (await gateway.stdout.readline()).decode()
        if line:  # "providerhub: serving http://127.0.0.1:PORT/v1 (...)"
            print(line, end="")
            print("\n".join(examples(line.split()[2])), flush=True)
        stopped = asyncio.ensure_future(stop.wait())
        exited = asyncio.ensure_future(gateway.wait())
        await asyncio.wait((stopped, exited), return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if gateway.returncode is None:
            gateway.send_signal(signal.SIGTERM)
        return await exited
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if gateway.returncode is None:
            gateway.kill()
            await gateway.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="the gateway's port (0: any free)")
    sys.exit(asyncio.run(main(parser.parse_args().port)))
