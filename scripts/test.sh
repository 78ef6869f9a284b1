#!/usr/bin/env bash
# Set up, then run the whole check: ruff (lint + format), mypy --strict, the test suite, then
# the plugin template's own tests as a plugin author runs them (plain pytest, no pytest-asyncio).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy core plugins/codelinkava/providerhub_codelinkava plugins/openai/providerhub_openai \
    plugins/anthropic/providerhub_anthropic examples/plugin-template/providerhub_template
.venv/bin/python -m pytest "$@"
(cd examples/plugin-template && ../../.venv/bin/python -m pytest -q -p no:asyncio)
