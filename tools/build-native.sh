#!/usr/bin/env bash
# Builds the native firmware (build/native/mbedlink-native) and the C tests
# with CMake; only the simulator with MBEDLINK_BUILD_TARGET=mbedlink-native
# (an installed package's first-use build). Configures once; afterwards only
# rebuilds what changed (a no-op run takes about a second). Run the tests with
#   ctest --test-dir build/native --output-on-failure
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build/native"
mkdir -p "$root/build"
# One build at a time per build dir (parallel test runners and helpers share it).
exec 9>"$build.lock"
flock 9
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root/firmware" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" --parallel "$(nproc 2>/dev/null || echo 2)" ${MBEDLINK_BUILD_TARGET:+--target "$MBEDLINK_BUILD_TARGET"}
