#!/usr/bin/env bash
# Runs before `npm pack` / `npm publish`, after the bootstrap (which rebuilds
# dist/ when a source changed and builds both firmware images): the tarball
# must hold the files package.json's "files" lists. Fails, naming what is
# missing, rather than ship without them. It deletes nothing: tests run the
# built CLI from dist/ while another test packs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
for f in build/stm32/mbedlink-stm32f405.elf build/stm32/mbedlink-stm32f405.bin build/native/mbedlink-native dist/src/index.js dist/src/index.d.ts; do
  [ -f "$f" ] || {
    echo "prepack: $f is missing; the bootstrap builds it (bash tools/bootstrap.sh)" >&2
    exit 1
  }
done
# The shipped simulator is the prebuilt linux-x64 one: refuse another kind.
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *)
    echo "prepack: the tarball ships a prebuilt linux-x64 native simulator; pack on linux-x64" >&2
    exit 1
    ;;
esac
