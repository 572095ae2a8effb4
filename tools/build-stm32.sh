#!/usr/bin/env bash
# Cross-builds the STM32F405 firmware (build/stm32/mbedlink-stm32f405.elf,
# .map next to it) with arm-none-eabi-gcc: same core sources, Mbed TLS
# configuration and flags as the native build, read from
# firmware/sources.json. Configures once; afterwards only rebuilds what
# changed (a no-op run takes about a second). Boot it in QEMU with
#   qemu-system-arm -M netduinoplus2 -nographic -monitor none -serial pty \
#     -kernel build/stm32/mbedlink-stm32f405.elf \
#     -device loader,addr=0x2001FFE0,data=0x<16 hex>,data-len=8 (x4, +8 each)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build/stm32"
mkdir -p "$root/build"
# One build at a time per build dir (parallel test runners and helpers share it).
exec 9>"$build.lock"
flock 9
command -v arm-none-eabi-gcc >/dev/null || {
  echo "arm-none-eabi-gcc: not installed (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)" >&2
  exit 2
}
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root/firmware" -B "$build" \
    -DCMAKE_TOOLCHAIN_FILE="$root/firmware/cmake/arm-none-eabi.cmake" \
    -DML_TARGET=stm32f405 -DCMAKE_BUILD_TYPE=MinSizeRel >/dev/null
fi
cmake --build "$build" --parallel "$(nproc 2>/dev/null || echo 2)"
