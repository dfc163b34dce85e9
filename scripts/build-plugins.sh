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

# --- Plugin operations: refused test plugins, the vendor template, the Python example. ---
# Test plugins whose directory holds KEEP-OUT are built for other contract versions (one the
# host must refuse, one it must accept): keep them out of target/test-plugins/, where every
# plugin must load and behave, in target/contract-plugins/.
mkdir -p target/contract-plugins target/example-plugins
for dir in tests/plugins/*/; do
  name=$(basename "$dir")
  if [ -f "$dir/KEEP-OUT" ] && [ -f "target/test-plugins/$name.wasm" ]; then
    mv "target/test-plugins/$name.wasm" "target/contract-plugins/$name.wasm"
  fi
done

# The vendor template (docs/plugin-template, a workspace of its own) must keep building with
# the SDK; its output is checked by the plugin-ops tests.
cargo build --release --target wasm32-wasip2 --manifest-path docs/plugin-template/Cargo.toml \
  --target-dir target
cp target/wasm32-wasip2/release/my_tracker_plugin.wasm target/example-plugins/acme-tracker.wasm

# The Redmine provider written in Python (examples/redmine-py), componentized with
# componentize-py from a venv under target/ (installed here on first use). It is ~18 MB, over
# the host's default 16 MiB plugin limit, so it goes to target/example-plugins/, not
# target/plugins/. A machine without python3 or PyPI skips it (its test then says why).
PY_VENV=target/py-venv
COMPONENTIZE_PY_VERSION=0.25.1
redmine_out=target/example-plugins/redmine-py.wasm
if [ ! -x "$PY_VENV/bin/componentize-py" ] && command -v python3 >/dev/null; then
  python3 -m venv "$PY_VENV" \
    && "$PY_VENV/bin/pip" install --quiet "componentize-py==$COMPONENTIZE_PY_VERSION" \
    || echo "warning: could not install componentize-py; skipping examples/redmine-py" >&2
fi
if [ -x "$PY_VENV/bin/componentize-py" ]; then
  if [ ! -f "$redmine_out" ] \
    || [ -n "$(find examples/redmine-py plugins/sdk/wit/provider/v1.0 -type f -newer "$redmine_out")" ]; then
    "$PY_VENV/bin/componentize-py" -d plugins/sdk/wit/provider/v1.0 -w provider componentize app \
      -p examples/redmine-py -o "$redmine_out.tmp" >/dev/null
    mv "$redmine_out.tmp" "$redmine_out"
  fi
else
  echo "warning: componentize-py is not available; examples/redmine-py not built" >&2
fi

# The same Redmine provider in JavaScript (examples/redmine-js), componentized with
# componentize-js installed by npm into target/js-tools (on first use). Two builds: the one to
# run (the `http` and `fetch-event` WASI features disabled, ~12 MB), and the default build,
# which imports wasi:http and which the host must refuse naming the fix. A machine without
# node and npm skips them (their tests then say why).
JS_TOOLS=target/js-tools
COMPONENTIZE_JS_VERSION=0.23.0
componentize_js=$JS_TOOLS/node_modules/.bin/componentize-js
if [ ! -x "$componentize_js" ] && command -v npm >/dev/null; then
  mkdir -p "$JS_TOOLS"
  npm install --prefix "$JS_TOOLS" --no-audit --no-fund --loglevel=error \
    "@bytecodealliance/componentize-js@$COMPONENTIZE_JS_VERSION" >/dev/null \
    || echo "warning: could not install componentize-js; skipping examples/redmine-js" >&2
fi
if [ -x "$componentize_js" ]; then
  for build in redmine-js redmine-js-wasi-http; do
    out=target/example-plugins/$build.wasm
    flags=(--disable http --disable fetch-event)
    [ "$build" = redmine-js-wasi-http ] && flags=()
    if [ ! -f "$out" ] || [ -n "$(find examples/redmine-js plugins/sdk/wit/provider/v1.0 -type f -newer "$out")" ]; then
      "$componentize_js" examples/redmine-js/app.js --wit plugins/sdk/wit/provider/v1.0 --world-name provider \
        "${flags[@]}" -o "$out.tmp" >/dev/null
      mv "$out.tmp" "$out"
    fi
  done
else
  echo "warning: componentize-js is not available; examples/redmine-js not built" >&2
fi
ls -l target/contract-plugins target/example-plugins | awk 'NF>5 {print $5, $9}'
