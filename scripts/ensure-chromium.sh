#!/usr/bin/env bash
# Make sure Debian's Chromium (/usr/bin/chromium) and a Korean font (Debian's fonts-noto-cjk)
# exist for the GraphiQL browser test (tests/graphiql/test_browser.py), installing the packages
# that are missing when we may (as root, with apt-get). Playwright drives this browser; no
# browser is ever downloaded (`playwright install` is never run). Without Chromium the browser
# test is skipped; without the font, Korean renders as boxes and the test's Korean check fails.
# With CI=true, anything missing that could not be installed fails here.
set -euo pipefail

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

has_korean_font() {
  if command -v fc-list >/dev/null 2>&1; then
    fc-list ':lang=ko' family | grep -q 'CJK'
  else
    dpkg-query -W -f='${Status}' fonts-noto-cjk 2>/dev/null | grep -q 'ok installed'
  fi
}

missing() {
  [ -x "$CHROMIUM" ] || echo chromium
  has_korean_font || echo fonts-noto-cjk
}

packages="$(missing)"
if [ -z "$packages" ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Missing for the GraphiQL browser test: installing Debian's" $packages >&2
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086  # one word per package
  if apt-get update -qq && apt-get install -y -qq --no-install-recommends $packages >/dev/null; then
    packages="$(missing)"
    [ -z "$packages" ] && exit 0
  fi
fi
if [ "${CI:-}" = "true" ]; then
  echo "Not found and could not be installed:" $packages "(Chromium: $CHROMIUM)" >&2
  exit 1
fi
echo "warning: not found:" $packages "(Chromium: $CHROMIUM); the GraphiQL browser test" \
  "is skipped without Chromium and fails its Korean check without fonts-noto-cjk" >&2
