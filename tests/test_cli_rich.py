"""`providerhub chat` with rich answers and attachments, run for real in a child process.

Tool calls and refusals printed readably, `--json` event lines, and `-a FILE` content parts.
The providers are OpenAI-compatible instances from a providerhub.toml (one with
`supports_vision = false`) and the good plugin's CodeLinkAva-style GoodProvider, all pointed at
one loopback FakeUpstream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import chat, outcomes, plugin_env, run
from config_helpers import write_config
from plugin_dists import GOOD_URL_ENV, write_good_plugin
from providerhub.config import CONFIG_ENV
from providerhub.testing import FakeUpstream, Reply, ToolCallScript

CONFIG = """
[providers.hosted]
use = "openai"
base_url = "{url}/v1"
default_model = "m"

[providers.blind]
use = "openai"
base_url = "{url}/v1"
default_model = "m"
supports_vision = false
"""

WEATHER = ToolCallScript("get_weather", '{"city": "Paris"}', id="call_1")
TIME = ToolCallScript("get_time", '{"tz": "CET"}', id="call_2")
USAGE = {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108000000003a7e9b55"
    "0000000a49444154789c636000000002000148afa4710000000049454e44ae426082"
)
PNG_URL = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg=="
)
WAV = b"RIFF$\x00\x00\x00WAVEfmt "
WAV_BASE64 = "UklGRiQAAABXQVZFZm10IA=="
PDF = b"%PDF-1.4\n%%EOF\n"
PDF_URL = "data:application/pdf;base64,JVBERi0xLjQKJSVFT0YK"


@dataclass
class Setup:
    env: dict[str, str]
    upstream: FakeUpstream
    files: Path


@pytest.fixture
async def setup(tmp_path: Path, fake_upstream: Any) -> Setup:
    upstream: FakeUpstream = await fake_upstream()
    write_good_plugin(tmp_path / "site")
    config = write_config(tmp_path, CONFIG.format(url=upstream.url))
    env = plugin_env(
        tmp_path / "site",
        **{GOOD_URL_ENV: f"{upstream.url}/api/chat", CONFIG_ENV: str(config)},
    )
    files = tmp_path / "files"
    files.mkdir()
    return Setup(env, upstream, files)


def lines(out: str) -> list[dict[str, Any]]:
    """The --json lines of stdout, each one JSON object."""
    assert out.endswith("\n")
    return [json.loads(line) for line in out.splitlines()]


async def test_tool_calls_print_after_the_text(setup: Setup) -> None:
    setup.upstream.script(
        Reply.tool_call(WEATHER, TIME, text="Let me check.", fragment=4, interleave_tool_calls=True)
    )
    code, out, err = await chat("-p", "hosted", "weather and time?", env=setup.env)
    assert (code, err) == (0, "")
    assert out == (
        "Let me check.\n"
        '[tool call call_1] get_weather({"city": "Paris"})\n'
        '[tool call call_2] get_time({"tz": "CET"})\n'
    )


async def test_tool_calls_alone_count_as_the_first_chunk_in_the_trace(setup: Setup) -> None:
    setup.upstream.script(Reply.tool_call(("get_weather", '{"city": "Paris"}')))
    code, out, err = await chat("-p", "hosted", "-v", "weather?", env=setup.env)
    assert (code, out) == (0, '[tool call call_0] get_weather({"city": "Paris"})\n')
    assert outcomes(err) == [("hosted", "served", None)]
    assert "first chunk -" not in err


async def test_a_refusal_gets_its_own_line(setup: Setup) -> None:
    setup.upstream.script(
        Reply.refusal_text("I can't help with that.", argument_fragment=5),
        Reply.refusal_text("no", chunks=("Well.",)),
    )
    code, out, err = await chat("-p", "hosted", "do it", env=setup.env)
    assert (code, out, err) == (0, "[refusal] I can't help with that.\n", "")
    code, out, err = await chat("--chain", "hosted", "do it", env=setup.env)
    assert (code, out, err) == (0, "Well.\n[refusal] no\n", "")


async def test_json_lines_carry_every_event_and_an_end_line(setup: Setup) -> None:
    setup.upstream.script(
        Reply.tool_call(
            WEATHER, TIME, text="Checking.", fragment=9, interleave_tool_calls=True, usage=USAGE
        )
    )
    code, out, err = await chat("-p", "hosted", "--json", "weather and time?", env=setup.env)
    assert (code, err) == (0, "")
    assert lines(out) == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_call", "index": 0, "id": "call_1", "name": "get_weather", "arguments": ""},
        {"type": "tool_call", "index": 1, "id": "call_2", "name": "get_time", "arguments": ""},
        {"type": "tool_call", "index": 0, "id": None, "name": None, "arguments": '{"city": '},
        {"type": "tool_call", "index": 1, "id": None, "name": None, "arguments": '{"tz": "C'},
        {"type": "tool_call", "index": 0, "id": None, "name": None, "arguments": '"Paris"}'},
        {"type": "tool_call", "index": 1, "id": None, "name": None, "arguments": 'ET"}'},
        {
            "type": "end",
            "finish_reason": "tool_calls",
            "usage": USAGE,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": '{"tz": "CET"}'},
                },
            ],
            "provider": "hosted",
        },
    ]


async def test_json_lines_of_a_refusal_logprobs_a_chain_and_a_failure(setup: Setup) -> None:
    setup.upstream.script(
        Reply.refusal_text("no"), Reply.text("Hm", logprobs=True), Reply.error(500, "down")
    )
    end = {"type": "end", "finish_reason": "stop", "usage": None, "tool_calls": []}
    code, out, err = await chat("-p", "hosted", "--json", "do it", env=setup.env)
    assert (code, err) == (0, "")
    assert lines(out) == [{"type": "refusal", "text": "no"}, {**end, "provider": "hosted"}]

    code, out, err = await chat("--chain", "hosted", "--json", "do it", env=setup.env)
    assert (code, err) == (0, "")
    token = {"token": "Hm", "logprob": -0.5, "bytes": [72, 109], "top_logprobs": []}
    assert lines(out) == [
        {"type": "text", "text": "Hm"},
        {"type": "logprobs", "data": {"content": [token]}},
        {**end, "provider": "hosted"},
    ]

    code, out, err = await chat("-p", "hosted", "--json", "again", env=setup.env)
    assert (code, out) == (4, "")
    assert err == "providerhub: error: hosted: HTTP 500: down\n"


async def test_attach_an_image(setup: Setup) -> None:
    image = setup.files / "image.png"
    image.write_bytes(PNG)
    setup.upstream.script(Reply.text("A pixel."))
    code, out, err = await chat("-p", "hosted", "-a", str(image), "What", "is this?", env=setup.env)
    assert (code, out, err) == (0, "A pixel.\n", "")
    [request] = setup.upstream.requests
    assert request.json["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": PNG_URL}},
            ],
        }
    ]


async def test_attach_audio_and_a_file_in_order(setup: Setup) -> None:
    (setup.files / "voice.WAV").write_bytes(WAV)
    (setup.files / "report.pdf").write_bytes(PDF)
    setup.upstream.script(Reply.text("Got both."))
    code, out, err = await chat(
        "-p",
        "hosted",
        "--system",
        "Be brief.",
        "--attach",
        str(setup.files / "voice.WAV"),
        "-a",
        str(setup.files / "report.pdf"),
        env=setup.env,
        stdin="Summarise.\n",
    )
    assert (code, out, err) == (0, "Got both.\n", "")
    assert setup.upstream.requests[0].json["messages"] == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Summarise."},
                {"type": "input_audio", "input_audio": {"data": WAV_BASE64, "format": "wav"}},
                {"type": "file", "file": {"filename": "report.pdf", "file_data": PDF_URL}},
            ],
        },
    ]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("missing.png", "No such file or directory"),
        ("folder", "Is a directory"),
        ("huge.bin", "larger than 20 MiB"),
    ],
)
async def test_an_unattachable_file_is_a_usage_error_before_any_request(
    setup: Setup, name: str, reason: str
) -> None:
    (setup.files / "folder").mkdir()
    with (setup.files / "huge.bin").open("wb") as huge:
        huge.truncate(20 * 1024 * 1024 + 1)
    (setup.files / "ok.png").write_bytes(PNG)
    path = str(setup.files / name)
    code, out, err = await chat(
        "-p", "hosted", "-a", str(setup.files / "ok.png"), "-a", path, "hi", env=setup.env
    )
    assert (code, out) == (2, "")
    assert err == f"providerhub: error: cannot attach {path!r}: {reason}\n"
    assert setup.upstream.requests == []


async def test_a_provider_that_cannot_take_the_part_refuses_before_any_request(
    setup: Setup,
) -> None:
    image = setup.files / "image.png"
    image.write_bytes(PNG)
    (setup.files / "notes.txt").write_text("notes")
    cases = [
        (("-p", "blind", "-a", str(image)), "provider 'blind' does not support vision"),
        (("--chain", "blind", "-a", str(image)), "provider 'chain(blind)' does not support vision"),
        (
            ("-p", "GoodProvider", "-a", str(setup.files / "notes.txt")),
            "provider 'GoodProvider' does not support files",
        ),
    ]
    for args, message in cases:
        code, out, err = await chat(*args, "-v", "look", env=setup.env)
        assert (code, out) == (3, ""), args
        assert err == f"providerhub: error: {message}, which the request uses\n", args
    assert setup.upstream.requests == []


def test_help_documents_the_output_formats() -> None:
    result = run("chat", "--help")
    assert result.returncode == 0
    for text in ("[tool call ID] NAME(ARGUMENTS)", '{"type": "end"', "-a FILE", "20 MiB"):
        assert text in result.stdout
