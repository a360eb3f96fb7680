#!/usr/bin/env bash
# What tests/test_browser.py needs on a fresh Debian machine (run as root): Debian's Chromium and
# the Playwright client in the virtual environment given as $1 (created if missing). Never `playwright install`: the
# test drives /usr/bin/chromium. Safe to run again.
set -euo pipefail
venv="${1:?usage: .ci/install_browser.sh VENV}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"  # created here if missing; a later `python3 -m venv` keeps it
if [ ! -x /usr/bin/chromium ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
"$venv"/bin/pip install -q playwright
