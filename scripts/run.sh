#!/usr/bin/env bash
# Builds the shipped plugins and the host, then serves the API and the admin page on an
# embedded redb file in ./data (override with INTEGRATION_DATA_DIR / --data-dir).
# The first start prints an admin token once; keep it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build-plugins.sh >/dev/null
exec cargo run --quiet -p integration-host -- serve "$@"
