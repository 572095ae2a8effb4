#!/usr/bin/env bash
# libFuzzer over the firmware core (firmware/fuzz/): fuzz_link feeds raw
# serial bytes (SLIP -> CRC -> dispatcher), fuzz_dispatch feeds sequences of
# CBOR requests straight into the dispatcher so mutations reach the op
# handlers. Built with clang, AddressSanitizer and UndefinedBehaviorSanitizer
# into build/fuzz; the heap must be empty after every input (leak = crash).
#
#   npm run fuzz -- [--seconds N] [--target link|dispatch] [--replay] [--merge]
#
#   --seconds N   fuzz each target N seconds (default 60), starting from the
#                 kept corpus firmware/fuzz/corpus/<target>/ and the seeds
#   --replay      only run the kept corpus once (what `npm test` does)
#   --merge       after fuzzing, minimise what was found into the kept corpus
#                 (-merge=1: only inputs that add coverage are kept)
#   --jobs N      parallel fuzzing workers per target (default 1)
#
# Findings (crash-*, leak-*, timeout-*) land in build/fuzz/findings/<target>/;
# rerun one with build/fuzz/fuzz_<target> <file>. Exits non-zero on a finding.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=60
targets=(link dispatch)
mode=fuzz
merge=0
jobs=1
while [ $# -gt 0 ]; do
  case $1 in
  --seconds) seconds=$2; shift 2 ;;
  --target) targets=("$2"); shift 2 ;;
  --replay) mode=replay; shift ;;
  --merge) merge=1; shift ;;
  --jobs) jobs=$2; shift 2 ;;
  *) echo "fuzz: unknown argument $1 (see tools/fuzz.sh)" >&2; exit 2 ;;
  esac
done

# clang and its libFuzzer runtime: optional packages of the bootstrap.
if ! command -v clang >/dev/null || ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n){(void)d;(void)n;return 0;}' |
  clang -x c -fsanitize=fuzzer,address,undefined -o /dev/null - >/dev/null 2>&1; then
  echo "fuzz: clang with libFuzzer is missing; install it with:" >&2
  echo "  sudo apt-get install -y --no-install-recommends clang libclang-rt-14-dev" >&2
  exit 1
fi

build="$root/build/fuzz"
mkdir -p "$root/build"
exec 9>"$build.lock"
flock 9
flags="-g -O2 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
CC=clang cmake -S "$root/firmware" -B "$build" -DML_TARGET=native -DML_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS="$flags" >"$build.log" 2>&1 || {
  cat "$build.log" >&2
  exit 1
}
fuzzers=()
for t in "${targets[@]}"; do fuzzers+=("fuzz_$t"); done
cmake --build "$build" --parallel "$(nproc 2>/dev/null || echo 2)" --target "${fuzzers[@]}" >"$build.log" 2>&1 || {
  tail -n 40 "$build.log" >&2
  echo "fuzz: build failed; full log in $build.log" >&2
  exit 1
}
flock -u 9

# Seeds (one valid request per op, the golden frames) are generated from
# protocol/ids.json and golden.json so new ops are fuzzed from the start.
seeds="$build/seeds"
rm -rf "$seeds"
node --import tsx firmware/fuzz/seeds.ts "$seeds"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for t in "${targets[@]}"; do
  exe="$build/fuzz_$t"
  kept="$root/firmware/fuzz/corpus/$t"
  mkdir -p "$kept"
  if [ "$mode" = replay ]; then
    # Every kept input and seed once, no mutation: a regression run.
    files=("$kept"/* "$seeds/$t"/*)
    echo "fuzz: replaying ${#files[@]} inputs through fuzz_$t"
    if ! "$exe" -runs=0 "$kept" "$seeds/$t" 2>"$build/replay-$t.log"; then
      tail -n 60 "$build/replay-$t.log" >&2
      echo "fuzz: fuzz_$t failed on the kept corpus; log in build/fuzz/replay-$t.log" >&2
      status=1
    else
      grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)' "$build/replay-$t.log" | tail -n 1 || true
    fi
    continue
  fi
  findings="$build/findings/$t"
  work="$build/work/$t"
  mkdir -p "$findings" "$work"
  echo "fuzz: fuzz_$t for ${seconds}s (corpus: $kept + seeds; findings: $findings)"
  # link inputs may exceed the native MTU (16448) to reach the oversize drop
  max_len=8192
  [ "$t" = link ] && max_len=17408
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$max_len" -print_final_stats=1
    -artifact_prefix="$findings/" -dict="$root/firmware/fuzz/cbor.dict")
  if [ "$jobs" -gt 1 ]; then args+=(-fork="$jobs"); fi
  if ! "$exe" "${args[@]}" "$work" "$kept" "$seeds/$t" 2>"$build/fuzz-$t.log"; then
    status=1
    echo "fuzz: fuzz_$t found a problem:" >&2
    grep -E 'ERROR|SUMMARY|fuzz: |Test unit written' "$build/fuzz-$t.log" | head -n 20 >&2
  fi
  grep -E '^#[0-9]+[[:space:]]+DONE|^stat::(number_of_executed_units|average_exec_per_sec)' "$build/fuzz-$t.log" | sort -u | sed "s/^/fuzz_$t: /" || true
  if [ "$merge" = 1 ]; then
    # Minimise: start from the seeds, add only inputs (kept or new) that add
    # coverage beyond them, and keep those (the seeds are regenerated anyway).
    merged="$build/merged-$t"
    rm -rf "$merged" && cp -r "$seeds/$t" "$merged"
    "$exe" -merge=1 -use_counters=0 "$merged" "$kept" "$work" >"$build/merge-$t.log" 2>&1
    rm -f "$kept"/*
    for f in "$merged"/*; do
      [ -f "$seeds/$t/$(basename "$f")" ] || cp "$f" "$kept/"
    done
    echo "fuzz: kept corpus for fuzz_$t: $(find "$kept" -type f | wc -l) files"
  fi
done
exit $status
