#!/usr/bin/env bash
# Checks that our C (firmware/src, firmware/test: *.c, *.h) follows
# .clang-format; the files protocol/generate.ts writes are left alone.
#   bash tools/clang-format.sh         list unformatted files, exit 1 if any
#   bash tools/clang-format.sh --fix   rewrite them in place
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
fix=0
case "${1:-}" in
  --fix) fix=1 ;;
  "") ;;
  *) echo "usage: $0 [--fix]" >&2; exit 2 ;;
esac
command -v clang-format >/dev/null || { echo "clang-format: not installed (apt-get install clang-format)" >&2; exit 2; }
mapfile -t files < <(find firmware/src firmware/test -type f \( -name '*.c' -o -name '*.h' \) \
  ! -path firmware/src/core/protocol_ids.h ! -path firmware/test/golden_frames.h \
  ! -path firmware/src/dispatch/ml_op_table.c ! -path firmware/src/ops/ml_ops.h | sort)
bad=()
for f in "${files[@]}"; do
  if [ "$fix" = 1 ]; then
    clang-format -i --style=file "$f"
  elif ! clang-format --style=file --dry-run -Werror "$f" >/dev/null 2>&1; then
    bad+=("$f")
  fi
done
if [ ${#bad[@]} -gt 0 ]; then
  echo "clang-format: these files are not formatted (fix: bash tools/clang-format.sh --fix):" >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
