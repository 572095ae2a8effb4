#!/usr/bin/env bash
# The one idempotent bootstrap behind `npm start` and `npm test`: installs
# whatever is missing (Debian packages, npm packages, the pinned C sources,
# the native firmware build) and does nothing else. With everything in place
# it costs about a second. Without root it prints the command to run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
say() { printf 'bootstrap: %s\n' "$*" >&2; }

# 1. Debian packages: command -> package that provides it, for every program
# that a test, tool, bench, launcher or script here spawns (test/bootstrap.test.ts
# reads the sources and fails on one missing here; bash, node/npm and the
# coreutils basics of every Debian are its short allowlist). The STM32/QEMU
# and fuzzing ones are optional: without them the native target still works,
# and `npm start` falls back to it (`npm test` reports the QEMU run as failed).
declare -A need=(
  [cmake]=cmake [ctest]=cmake [make]=make [cc]=gcc [c++]=g++ [curl]=curl [tar]=tar [bzip2]=bzip2 [xz]=xz-utils
  [sha256sum]=coreutils [clang-format]=clang-format [openssl]=openssl [setpriv]=util-linux [flock]=util-linux
  [socat]=socat [valgrind]=valgrind
  # the third-party DTLS peers of test/integration/dtls-*.test.ts: GnuTLS, and
  # libcoap, whose programs come in one build per TLS library; Mbed TLS's
  # ssl_server2 and ssl_client2 are built by tools/build-mbedtls-programs.sh
  [gnutls-serv]=gnutls-bin [gnutls-cli]=gnutls-bin [coap-server-openssl]=libcoap3-bin [coap-client-openssl]=libcoap3-bin
  [coap-server-gnutls]=libcoap3-bin [coap-client-gnutls]=libcoap3-bin
)
declare -A want=(
  [arm-none-eabi-gcc]=gcc-arm-none-eabi [arm-none-eabi-size]=binutils-arm-none-eabi [arm-none-eabi-nm]=binutils-arm-none-eabi
  [qemu-system-arm]=qemu-system-arm [clang]=clang
)
missing=()
optional=()
for cmd in "${!need[@]}"; do command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}"); done
for cmd in "${!want[@]}"; do command -v "$cmd" >/dev/null 2>&1 || optional+=("${want[$cmd]}"); done
# debian-archive-keyring signs the temporary deb-src list used by the fetch;
# newlib (the STM32 image's C library) has no command to look for.
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
# test/integration/x509-crt.test.ts parses every certificate of Debian's CA bundle.
[ -f /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
[ -f /usr/lib/arm-none-eabi/newlib/libc_nano.a ] || optional+=(libnewlib-arm-none-eabi)
# libFuzzer's runtime for `npm run fuzz` (tools/fuzz.sh), a separate package.
compgen -G '/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a' >/dev/null || optional+=(libclang-rt-14-dev)
all=("${missing[@]}" "${optional[@]}")
if [ ${#all[@]} -gt 0 ]; then
  mapfile -t all < <(printf '%s\n' "${all[@]}" | sort -u)
  cmd="apt-get update && apt-get install -y --no-install-recommends ${all[*]}"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian packages: ${all[*]}"
    DEBIAN_FRONTEND=noninteractive bash -c "$cmd" >&2
    optional=()
  elif [ ${#missing[@]} -gt 0 ]; then
    say "missing Debian packages: ${all[*]}"
    say "run: sudo bash -c '$cmd'"
    exit 1
  else
    say "the STM32/QEMU target and fuzzing need: ${all[*]} (the native target works without them)"
    say "run: sudo bash -c '$cmd'"
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
scripts=(build-native)
command -v arm-none-eabi-gcc >/dev/null && [ -f /usr/lib/arm-none-eabi/newlib/libc_nano.a ] && scripts+=(build-stm32)
for script in "${scripts[@]}"; do
  if ! bash "tools/$script.sh" >"build/$script.log" 2>&1; then
    tail -n 40 "build/$script.log" >&2
    say "tools/$script.sh failed; full log in build/$script.log"
    exit 1
  fi
done

# 5. The SDK compiled to JavaScript with its types (dist/), rebuilt whole when
# a source is newer than the last build (a whole build takes under a second;
# rebuilding from empty drops the output of deleted sources).
if [ ! -f dist/.built ] || [ -n "$(find host/src host/cli tsconfig.json tsconfig.build.json package.json -newer dist/.built -print -quit)" ]; then
  rm -rf dist
  if ! npx --no-install tsc -p tsconfig.build.json >build/build-sdk.log 2>&1; then
    cat build/build-sdk.log >&2
    say "npm run build failed"
    exit 1
  fi
  touch dist/.built
fi
