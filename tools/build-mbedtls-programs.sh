#!/usr/bin/env bash
# Builds Mbed TLS's own test programs ssl_server2 and ssl_client2 natively
# from the pinned tree (firmware/lib/mbedtls/src, read-only here) into
# build/mbedtls-programs/programs/ssl/, with Mbed TLS's default configuration
# (which has DTLS and MBEDTLS_SSL_DTLS_CONNECTION_ID, RFC 9146). They are the
# third-party DTLS peers of the tests (test/integration/dtls-peers.ts).
# Idempotent: once built from the pinned tree (its fetch stamp recorded next
# to the programs) a run is a stamp comparison and nothing else.
# Prints the folder holding the two programs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src="$root/firmware/lib/mbedtls/src"
build="$root/build/mbedtls-programs"
bin="$build/programs/ssl"
stamp="$build/.mbedlink-built-from"
fresh() { [ -x "$bin/ssl_server2" ] && [ -x "$bin/ssl_client2" ] && [ -f "$stamp" ] && [ -f "$src/.mbedlink-sha256" ] && [ "$(cat "$stamp")" = "$(cat "$src/.mbedlink-sha256")" ]; }
if fresh; then
  echo "$bin"
  exit 0
fi
mkdir -p "$root/build"
# One build at a time (test files running in parallel call this script).
exec 9>"$build.lock"
flock 9
if ! fresh; then
  [ -f "$src/.mbedlink-sha256" ] || bash "$root/tools/fetch-third-party.sh" >&2
  rm -f "$stamp"
  if [ ! -f "$build/CMakeCache.txt" ]; then
    # Python is only an optional configuration check of Mbed TLS's: left out
    # so the build is the same with or without one on the machine.
    cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DENABLE_TESTING=OFF -DENABLE_PROGRAMS=ON -DGEN_FILES=OFF \
      -DMBEDTLS_FATAL_WARNINGS=OFF -DDISABLE_PACKAGE_CONFIG_AND_INSTALL=ON \
      -DCMAKE_DISABLE_FIND_PACKAGE_Python3=ON -DCMAKE_DISABLE_FIND_PACKAGE_PythonInterp=ON >"$build.log" 2>&1 || {
      cat "$build.log" >&2
      exit 1
    }
  fi
  cmake --build "$build" --parallel "$(nproc 2>/dev/null || echo 2)" --target ssl_server2 ssl_client2 >"$build.log" 2>&1 || {
    tail -n 40 "$build.log" >&2
    echo "build-mbedtls-programs: the build failed; full log in $build.log" >&2
    exit 1
  }
  cp "$src/.mbedlink-sha256" "$stamp"
fi
echo "$bin"
