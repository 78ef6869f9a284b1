#!/usr/bin/env bash
# Set up, then run the whole check: ruff (lint + format), mypy --strict, the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy core plugins/codelinkava/providerhub_codelinkava plugins/openai/providerhub_openai \
    plugins/anthropic/providerhub_anthropic
.venv/bin/python -m pytest "$@"
