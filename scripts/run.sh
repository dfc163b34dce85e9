#!/usr/bin/env bash
# Builds the shipped plugins and the host, then serves the API and the admin page on an
# embedded redb file in ./data (override with INTEGRATION_DATA_DIR / --data-dir).
# The first start prints an admin token once; keep it.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "building the plugins (wasm32-wasip2; the first build takes a few minutes)..." >&2
./scripts/build-plugins.sh >/dev/null
echo "building and starting the host..." >&2
exec cargo run -p integration-host -- serve "$@"
