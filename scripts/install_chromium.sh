#!/usr/bin/env bash
# Debian's Chromium for the browser tests (tests/web/test_browser.py drives it with Playwright); idempotent.
# Playwright's own `playwright install` downloads a browser build from outside the package registries: not used.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
/usr/bin/chromium --version
