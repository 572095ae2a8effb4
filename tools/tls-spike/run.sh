#!/usr/bin/env bash
# TLS heap spike (issue 17): builds tools/tls-spike/tls_heap.c against
# firmware/lib/mbedtls with mbedlink_config.h plus a variant header
# (MBEDTLS_USER_CONFIG_FILE; base-4k is the configuration before issue 17:
# TLS 1.2 only, 4 KiB records) in build/tls-spike/<variant>/ and prints the
# JSON lines of each scenario. Native (x86-64) only: pointer-sized fields
# make the STM32's figures somewhat smaller.
#   bash tools/tls-spike/run.sh [variant...]   (default: all)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
spike="$root/tools/tls-spike"
out="$root/build/tls-spike"
mkdir -p "$out"

# Credentials: a P-256 CA, a server certificate for "localhost", a client one.
if [ ! -f "$out/creds.h" ]; then
  (
    cd "$out"
    openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
    openssl req -x509 -new -key ca.key -subj /CN=spike-ca -days 30 -out ca.crt \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
    for who in srv cli; do
      openssl ecparam -name prime256v1 -genkey -noout -out $who.key 2>/dev/null
      openssl pkcs8 -topk8 -nocrypt -in $who.key -out $who.p8 2>/dev/null
      cn=localhost
      [ $who = cli ] && cn=spike-client
      openssl req -new -key $who.key -subj /CN=$cn -out $who.csr 2>/dev/null
      printf 'subjectAltName=DNS:%s\n' $cn >$who.ext
      openssl x509 -req -in $who.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
        -extfile $who.ext -out $who.crt 2>/dev/null
    done
    c() { printf '#define %s "%s"\n' "$1" "$(awk '{printf "%s\\n", $0}' "$2")"; }
    { c CA_PEM ca.crt; c SRV_CRT_PEM srv.crt; c SRV_KEY_PEM srv.p8; c CLI_CRT_PEM cli.crt; c CLI_KEY_PEM cli.p8; } >creds.h
  )
fi

variant_header() { # name -> the user config text (on top of mbedlink_config.h as committed)
  local sizes='#undef MBEDTLS_SSL_IN_CONTENT_LEN
#undef MBEDTLS_SSL_OUT_CONTENT_LEN'
  case "$1" in
    base-4k) printf '#include "%s/no_tls13_user.h"\n%s\n#define MBEDTLS_SSL_IN_CONTENT_LEN 4096\n#define MBEDTLS_SSL_OUT_CONTENT_LEN 4096\n' "$spike" "$sizes" ;;
    t13-4k) printf '%s\n#define MBEDTLS_SSL_IN_CONTENT_LEN 4096\n#define MBEDTLS_SSL_OUT_CONTENT_LEN 4096\n' "$sizes" ;;
    t13-16in-4out) echo "/* mbedlink_config.h as committed */" ;;
    t13-16-16) printf '%s\n#define MBEDTLS_SSL_IN_CONTENT_LEN 16384\n#define MBEDTLS_SSL_OUT_CONTENT_LEN 16384\n' "$sizes" ;;
    t13-16in-4out-var) echo "#define MBEDTLS_SSL_VARIABLE_BUFFER_LENGTH" ;;
    *) echo "unknown variant $1" >&2; exit 2 ;;
  esac
}

build() {
  local v=$1 dir="$out/$1"
  mkdir -p "$dir/obj"
  variant_header "$v" >"$dir/user_config.h.new"
  if ! cmp -s "$dir/user_config.h.new" "$dir/user_config.h"; then
    mv "$dir/user_config.h.new" "$dir/user_config.h"
    rm -f "$dir"/obj/*.o "$dir/tls_heap"
  fi
  local flags=(-O2 -std=c99 -I"$root/firmware/lib/mbedtls" -I"$root/firmware/lib/mbedtls/src/include" -I"$out"
    '-DMBEDTLS_CONFIG_FILE="mbedlink_config.h"' "-DMBEDTLS_USER_CONFIG_FILE=\"$dir/user_config.h\"")
  ls "$root"/firmware/lib/mbedtls/src/library/*.c | while read -r f; do
    o="$dir/obj/$(basename "${f%.c}").o"
    [ -f "$o" ] || echo "$f"
  done | xargs -r -P "$(nproc)" -I{} sh -c 'gcc "$@" -c {} -o "$0/obj/$(basename {} .c).o"' "$dir" "${flags[@]}"
  [ -f "$dir/tls_heap" ] || gcc "${flags[@]}" -D_DEFAULT_SOURCE "$spike/tls_heap.c" "$dir"/obj/*.o -o "$dir/tls_heap"
}

variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(base-4k t13-4k t13-16in-4out t13-16-16 t13-16in-4out-var)
for v in "${variants[@]}"; do
  build "$v"
  bin="$out/$v/tls_heap"
  scenarios=("12 cert" "12 cert mfl" "12 mutual" "12 psk" "12 cert resume")
  case $v in base-*) ;; *) scenarios+=("13 cert" "13 mutual" "13 psk" "13 psk_ephemeral" "13 cert resume") ;; esac
  for s in "${scenarios[@]}"; do
    set -- $s
    "$bin" "$1" "$2" 65536 "${@:3}" 2>/dev/null | sed "s/^{/{\"variant\":\"$v\",\"scenario\":\"$s\",/" ||
      echo "{\"variant\":\"$v\",\"scenario\":\"$s\",\"error\":\"$("$bin" "$1" "$2" 65536 "${@:3}" 2>&1 | tail -1)\"}"
  done
done
