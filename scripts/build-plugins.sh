#!/usr/bin/env bash
# Builds every provider plugin (and the misbehaving test plugins) as wasm32-wasip2 components
# and copies them to target/plugins/ (shipped) and target/test-plugins/ (tests only).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2 >/dev/null 2>&1 || rustup target add wasm32-wasip2

shipped=()
for dir in plugins/*/; do
  name=$(basename "$dir")
  [ "$name" = sdk ] && continue
  [ -f "$dir/Cargo.toml" ] || continue
  shipped+=("$name")
done
test_only=()
for dir in tests/plugins/*/; do
  [ -f "$dir/Cargo.toml" ] && test_only+=("$(basename "$dir")")
done

args=()
for p in "${shipped[@]}" "${test_only[@]}"; do args+=(-p "plugin-$p"); done
cargo build --release --target wasm32-wasip2 "${args[@]}"

mkdir -p target/plugins target/test-plugins
for p in "${shipped[@]}"; do
  cp "target/wasm32-wasip2/release/plugin_${p//-/_}.wasm" "target/plugins/$p.wasm"
done
for p in "${test_only[@]}"; do
  cp "target/wasm32-wasip2/release/plugin_${p//-/_}.wasm" "target/test-plugins/$p.wasm"
done
ls -l target/plugins target/test-plugins | awk 'NF>5 {print $5, $9}'
