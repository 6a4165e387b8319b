#!/usr/bin/env bash
# Make sure PostgreSQL server binaries (initdb, pg_ctl) exist for the test suite, installing
# Debian's package when they are missing and we may. The tests start and stop their own server.
set -euo pipefail

found() {
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && return 0
  command -v initdb >/dev/null 2>&1 && return 0
  [ -n "${PG_BIN:-}" ] && [ -x "$PG_BIN/initdb" ] && return 0
  return 1
}

if found; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "PostgreSQL server binaries missing: installing Debian's postgresql package" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  found && exit 0
fi
if [ "${CI:-}" = "true" ]; then
  echo "PostgreSQL server binaries not found and could not be installed" >&2
  exit 1
fi
echo "warning: PostgreSQL not found; the PostgreSQL half of the suite will be skipped" >&2
