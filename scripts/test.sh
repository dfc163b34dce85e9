#!/usr/bin/env bash
# The whole test suite: installs what the browser tests need when it is missing, builds every
# plugin (shipped and test-only) for wasm32-wasip2, then runs the host's unit tests and the
# end-to-end tests (real host, real plugins, stand-in trackers, headless Chromium) on redb, the
# API contract (scripts/api-contract.sh), and every suite on the TestApp harness again on
# PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

# Headless Chromium and its driver for the admin-page tests (Debian packages).
if ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium and chromium-driver (Debian packages) for the browser tests" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "the browser tests need Chromium and chromedriver; install them first:" >&2
    echo "  sudo apt-get install -y chromium chromium-driver" >&2
    exit 1
  fi
fi

# axe-core (npm) for the browser tests' accessibility checks, kept in target/axe; the tests
# inject it into the page under test and fail, saying what to run, when it is missing.
AXE_VERSION=4.14.1
if [ ! -f target/axe/node_modules/axe-core/axe.min.js ]; then
  if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing npm (Debian package) to fetch axe-core for the browser tests" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq npm >/dev/null
  fi
  if command -v npm >/dev/null 2>&1; then
    echo "installing axe-core $AXE_VERSION (npm) into target/axe for the accessibility checks" >&2
    mkdir -p target/axe
    npm install --prefix target/axe --no-save --no-audit --no-fund --silent "axe-core@$AXE_VERSION" ||
      echo "could not install axe-core: the accessibility checks of the browser tests will fail" >&2
  else
    echo "the browser tests' accessibility checks need axe-core; install npm, then run:" >&2
    echo "  npm install --prefix target/axe axe-core@$AXE_VERSION" >&2
  fi
fi

# PostgreSQL server binaries (Debian's postgresql package): the tests start their own server
# (initdb + pg_ctl in a temporary directory), nothing needs to be running.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ -z "${INTEGRATION_PG_BIN:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing postgresql (Debian package) for the PostgreSQL tests" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
  else
    echo "the PostgreSQL tests need the server binaries (initdb, pg_ctl); install them first:" >&2
    echo "  sudo apt-get install -y postgresql   (or set INTEGRATION_PG_BIN to their directory)" >&2
    exit 1
  fi
fi

echo "building the plugins (wasm32-wasip2)..." >&2
./scripts/build-plugins.sh
# default-members = the native crates (host, tests); plugins are tested through the host.
cargo test "$@"
# The API contract against the real binary: schemathesis, and a client generated from the
# served OpenAPI document (both from PyPI, in target/api-venv).
./scripts/api-contract.sh
# Every suite on the TestApp harness again, on PostgreSQL (one fresh database per test); the
# provider suites without it (github, gitlab, ...) and plugin_ops never open a store.
echo "the TestApp suites again on PostgreSQL..." >&2
INTEGRATION_TEST_ENGINE=postgres cargo test -p integration-tests \
  --test api --test links --test transfer --test secrets --test ops --test comments \
  --test webhooks --test limits --test network --test custom --test jira \
  --test browser --test browser_webhooks "$@"
