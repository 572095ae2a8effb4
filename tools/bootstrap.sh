#!/usr/bin/env bash
# The one idempotent bootstrap behind `npm start` and `npm test`: installs
# whatever is missing (Debian packages, npm packages, the pinned C sources,
# the native firmware build) and does nothing else. With everything in place
# it costs about a second. Without root it prints the command to run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
say() { printf 'bootstrap: %s\n' "$*" >&2; }

# 1. Debian packages: command -> package that provides it.
declare -A need=(
  [cmake]=cmake [make]=make [cc]=gcc [c++]=g++ [curl]=curl [bzip2]=bzip2 [xz]=xz-utils
  [clang-format]=clang-format [openssl]=openssl
  [arm-none-eabi-gcc]=gcc-arm-none-eabi [qemu-system-arm]=qemu-system-arm [setpriv]=util-linux
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
# debian-archive-keyring signs the temporary deb-src list used by the fetch.
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
# newlib (C library for the STM32 image) has no command to look for.
[ -f /usr/lib/arm-none-eabi/newlib/libc_nano.a ] || missing+=(libnewlib-arm-none-eabi)
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive bash -c "$cmd" >&2
  else
    say "missing Debian packages: ${missing[*]}"
    say "run: sudo bash -c '$cmd'"
    exit 1
  fi
fi

# 2. npm packages, reinstalled when package-lock.json changed.
lock_sha=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.mbedlink-lock-sha256
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sha" ]; then
  say "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund >&2
  echo "$lock_sha" >"$stamp"
fi

# 3. Pinned third-party C sources (Mbed TLS, TinyCBOR).
bash tools/fetch-third-party.sh >&2

# 4. The firmware images (incremental: a no-op when nothing changed).
# Output goes to a log, shown only when a build fails.
mkdir -p build
for script in build-native build-stm32; do
  [ -f "tools/$script.sh" ] || continue # TEMPORARY until the STM32 build lands
  if ! bash "tools/$script.sh" >"build/$script.log" 2>&1; then
    tail -n 40 "build/$script.log" >&2
    say "tools/$script.sh failed; full log in build/$script.log"
    exit 1
  fi
done
