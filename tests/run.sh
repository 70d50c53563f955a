#!/usr/bin/env bash
# The project's test command (README): every Rust test, then IBM's pyCSM 1.0.12
# driving the real `zgate serve` over its CSM REST API (tests/python). The Python side
# runs in its own virtual environment under target/, with the pinned packages of
# tests/python/requirements.txt (from PyPI on the first run).
set -euo pipefail
cd "$(dirname "$0")/.."

# With cargo-nextest (on this project's machines) every test is its own process and the
# test binaries run side by side, so one long test (the demo binary's real-time run)
# no longer holds up a whole binary's queue: 70 s against 190 s here. Without it, plain
# `cargo test` runs the same tests. Doc tests are `cargo test --doc` either way.
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast "$@"
  cargo test --doc "$@"
else
  cargo test "$@"
fi
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
# The debug binary `cargo test` just built. Three workers, one test file each at a time
# (`--dist loadfile`: a file's tests share its world and run in order): the tests mostly
# wait on servers, browsers and the retention test's real minute, not on the CPU.
ZGATE_BIN="$PWD/target/debug/zgate" "$venv/bin/python" -m pytest -q -p no:cacheprovider -n 3 --dist loadfile \
  -W ignore::urllib3.exceptions.InsecureRequestWarning tests/python
echo "tests/run.sh: done in ${SECONDS} s"
