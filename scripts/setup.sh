#!/usr/bin/env bash
# Create .venv (if needed) and install providerhub, its plugins, the plugin template and the dev
# tools into it.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
    -e '.[dev]' -e plugins/codelinkava -e plugins/openai -e plugins/anthropic \
    -e examples/plugin-template
