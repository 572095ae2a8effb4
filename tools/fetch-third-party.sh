#!/usr/bin/env bash
# Fetches the pinned third-party C sources listed in tools/third-party.lock
# and unpacks each into its git-ignored folder under firmware/lib/.
# Source order: the upstream release tarball, else Debian's source package of
# the same version (apt-get source against a temporary deb-src list kept in
# firmware/lib/.fetch/; the machine's apt configuration is not touched).
# Every tarball must match the pinned SHA-256, whichever source it came from.
# Idempotent: a folder whose stamp names the pinned hash is left alone.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# MBEDLINK_FETCH_CACHE: another folder of already fetched tarballs to use (and fill).
cache="${MBEDLINK_FETCH_CACHE:-$root/firmware/lib/.fetch}"
debian_suite=${MBEDLINK_DEBIAN_SUITE:-trixie}
mkdir -p "$cache"

apt_opts=()
apt_ready=0
prepare_apt() {
  [ "$apt_ready" = 1 ] && return 0
  local d="$cache/apt"
  mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/etc"
  cat >"$d/etc/sources.list" <<LIST
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $debian_suite main
LIST
  apt_opts=(-o "Dir::Etc::SourceList=$d/etc/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache" -o "APT::Sandbox::User=root")
  apt-get "${apt_opts[@]}" update -qq >"$cache/apt-update.log" 2>&1 || {
    echo "fetch: apt-get update on the temporary deb-src list failed; see $cache/apt-update.log" >&2
    return 1
  }
  apt_ready=1
}

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

while read -r name version sha url debpkg debfile dest; do
  case "$name" in '' | \#*) continue ;; esac
  target="$root/$dest"
  if [ -f "$target/.mbedlink-sha256" ] && [ "$(cat "$target/.mbedlink-sha256")" = "$sha" ]; then
    continue
  fi
  tarball="$cache/$debfile"
  if ! sha_ok "$tarball" "$sha"; then
    rm -f "$tarball"
    echo "fetch: $name $version from upstream"
    if curl -fsSL --connect-timeout 5 --max-time 120 -o "$tarball.part" "$url" 2>/dev/null && sha_ok "$tarball.part" "$sha"; then
      mv "$tarball.part" "$tarball"
    else
      rm -f "$tarball.part"
      echo "fetch: upstream unreachable or hash differs; using Debian source package $debpkg"
      prepare_apt
      (cd "$cache" && apt-get "${apt_opts[@]}" source --download-only --tar-only -qq "$debpkg" >"$cache/apt-source-$name.log" 2>&1) || true
      if ! sha_ok "$tarball" "$sha"; then
        echo "fetch: could not get $name $version with SHA-256 $sha (see $cache/apt-source-$name.log)" >&2
        exit 1
      fi
    fi
  fi
  rm -rf "$target.tmp" && mkdir -p "$target.tmp"
  tar -xf "$tarball" -C "$target.tmp" --strip-components=1
  rm -rf "$target" && mv "$target.tmp" "$target"
  echo "$sha" >"$target/.mbedlink-sha256"
  echo "fetch: $name $version ready in $dest"
done <"$root/tools/third-party.lock"
