#!/usr/bin/env bash
# Make sure Debian's Chromium (/usr/bin/chromium) exists for the GraphiQL browser test
# (tests/graphiql/test_browser.py), installing the `chromium` package when it is missing and we
# may. Playwright drives this browser; no browser is ever downloaded (`playwright install` is
# never run). Without it the browser test is skipped, except with CI=true, where this fails.
set -euo pipefail

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Chromium missing: installing Debian's chromium package" >&2
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
    [ -x "$CHROMIUM" ] && exit 0
  fi
fi
if [ "${CI:-}" = "true" ]; then
  echo "Chromium ($CHROMIUM) not found and could not be installed" >&2
  exit 1
fi
echo "warning: Chromium ($CHROMIUM) not found; the GraphiQL browser test will be skipped" >&2
