#!/usr/bin/env bash
# Install (when missing) Debian's headless-capable Chromium for the browser tests
# (tests/e2e/test_report_browser.py opens the campaign report in it; tests/e2e/test_prefect_ui.py
# drives it with Playwright through the Prefect UI). No browser download: the distribution's
# package only.
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "chromium is missing and installing it needs root: sudo apt-get install chromium" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
/usr/bin/chromium --version
