#!/usr/bin/env bash
# `npm run docs`: the SDK's API reference, generated from its types by TypeDoc
# into build/docs/api (HTML; open build/docs/api/index.html). Never committed.
# TypeDoc needs TypeScript <= 6.0 and the project uses TypeScript 7, so the
# docs have their own pinned toolchain in tools/docs (package.json +
# package-lock.json, exact versions), installed here with `npm ci` when its
# lock changed. Not part of the bootstrap or of `npm test`.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
say() { printf 'docs: %s\n' "$*" >&2; }

# The SDK's own dependencies (their types: serialport, cbor-x, @types/node).
if [ ! -d node_modules/@types/node ]; then
  say "the project's npm packages are missing: run npm ci (or npm run bootstrap) first"
  exit 1
fi

lock_sha=$(sha256sum tools/docs/package-lock.json | cut -d' ' -f1)
stamp=tools/docs/node_modules/.mbedlink-lock-sha256
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sha" ]; then
  say "installing the docs toolchain (npm ci --prefix tools/docs)"
  npm ci --prefix tools/docs --no-audit --no-fund >&2
  echo "$lock_sha" >"$stamp"
fi

rm -rf build/docs/api
tools/docs/node_modules/.bin/typedoc --options tools/docs/typedoc.json "$@"
say "wrote build/docs/api/index.html"
