#!/usr/bin/env bash
# The project's test command (README): every Rust test, then IBM's pyCSM 1.0.12
# driving the real `zgate serve` over its CSM REST API (tests/python). The Python side
# runs in its own virtual environment under target/, with the pinned packages of
# tests/python/requirements.txt (from PyPI on the first run).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test "$@"

venv=target/pycsm-venv
if [ ! -x "$venv/bin/python" ] || ! cmp -s tests/python/requirements.txt "$venv/requirements.txt"; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/python/requirements.txt
  cp tests/python/requirements.txt "$venv/requirements.txt"
fi
# The debug binary `cargo test` just built.
ZGATE_BIN="$PWD/target/debug/zgate" "$venv/bin/python" -m pytest -q -p no:cacheprovider \
  -W ignore::urllib3.exceptions.InsecureRequestWarning tests/python
