#!/usr/bin/env bash
# The project's test command (README): every Rust test, then IBM's pyCSM 1.0.12
# driving the real `zgate serve` over its CSM REST API (tests/python). The Python side
# runs in its own virtual environment under target/, with the pinned packages of
# tests/python/requirements.txt (from PyPI on the first run).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test "$@"
echo "tests/run.sh: cargo test took ${SECONDS} s"

# The web console's browser tests drive Debian's Chromium through ChromeDriver.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  sudo_=""
  if [ "$(id -u)" != 0 ]; then sudo_=sudo; fi
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -q chromium chromium-driver >/dev/null \
    || { $sudo_ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -q chromium chromium-driver >/dev/null; }
fi

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
echo "tests/run.sh: done in ${SECONDS} s"
