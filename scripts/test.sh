#!/usr/bin/env bash
# The whole test suite: builds every plugin (shipped and test-only) for wasm32-wasip2, then runs
# the host's unit tests and the end-to-end tests (real host, real plugins, stand-in trackers).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build-plugins.sh
# default-members = the native crates (host, tests); plugins are tested through the host.
cargo test "$@"
