#!/usr/bin/env bash
# Everything `npm test` checks, in order of cost. Static checks each count as
# one test; then the firmware's C tests (ctest) and the TypeScript unit and
# integration tests (vitest). Ends with one plain line: "N passed, N failed".
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
results="$root/test-results"
rm -rf "$results" && mkdir -p "$results"
passed=0
failed=0

check() { # name, command...
  local name=$1
  shift
  echo "== $name"
  if "$@"; then
    passed=$((passed + 1))
  else
    echo "FAILED: $name"
    failed=$((failed + 1))
  fi
}

check "protocol: generated files fresh" node --import tsx protocol/generate.ts --check
check "lint+format (biome, warnings are errors)" npx --no-install biome check --error-on-warnings .
check "typecheck (tsc strict)" npx --no-install tsc -p .
check "format (clang-format)" bash tools/clang-format.sh

# libFuzzer (ASan+UBSan): the kept corpus and the seeds replayed, then 20 s
# of fuzzing per target; a crash, leak or sanitizer report fails it.
check "fuzz: kept corpus + 20 s per target (libFuzzer, ASan, UBSan)" bash tools/fuzz.sh --seconds 20

echo "== firmware C tests (ctest)"
ctest --test-dir build/native --output-on-failure -j2 2>&1 | tee "$results/ctest.log"
line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$results/ctest.log" | tail -1)
if [ -n "$line" ]; then
  c_failed=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
  c_total=$(sed -E 's/.* tests failed out of ([0-9]+).*/\1/' <<<"$line")
  passed=$((passed + c_total - c_failed))
  failed=$((failed + c_failed))
else
  echo "FAILED: ctest ran no test"
  failed=$((failed + 1))
fi

# vitest_pass LABEL ENV... -- FILES...: one vitest run, counted into the totals.
vitest_pass() {
  local label=$1
  shift
  local env=()
  while [ "$1" != "--" ]; do
    env+=("$1")
    shift
  done
  shift
  echo "== TypeScript tests: $label (vitest)"
  local report="$results/vitest-${label// /-}.json"
  env "${env[@]}" npx --no-install vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@"
  if [ ! -f "$report" ]; then
    echo "FAILED: vitest ($label) wrote no report"
    failed=$((failed + 1))
    return
  fi
  local v_passed v_failed
  read -r v_passed v_failed < <(node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    // a test file that fails to load has no assertion results but still fails
    const brokenFiles = r.testResults.filter((f) => f.status === "failed" && f.assertionResults.length === 0).length;
    console.log(r.numPassedTests, r.numFailedTests + brokenFiles);
  ' "$report")
  passed=$((passed + v_passed))
  failed=$((failed + v_failed))
  [ "$v_passed" -gt 0 ] || { echo "FAILED: vitest ($label) ran no test"; failed=$((failed + 1)); }
}

# Unit tests, and the integration suite + README examples on the native target.
vitest_pass "native" -u MBEDLINK_PORT MBEDLINK_TARGET=native --
# The same integration suite and README examples on the emulated STM32F405.
# One QEMU per test file, each busy on about one core while the slow UART
# feeds it (about 25 KB/s into the device): as many files at once as there
# are cores (vitest's default leaves one core idle), MBEDLINK_QEMU_WORKERS to change it.
if command -v qemu-system-arm >/dev/null && [ -f build/stm32/mbedlink-stm32f405.elf ]; then
  vitest_pass "qemu" -u MBEDLINK_PORT MBEDLINK_TARGET=qemu -- --maxWorkers="${MBEDLINK_QEMU_WORKERS:-$(nproc)}" \
    test/integration test/readme-examples.test.ts test/cli test/demo.test.ts
else
  echo "FAILED: the QEMU STM32 target is not available (qemu-system-arm or the image is missing; see the bootstrap's message)"
  failed=$((failed + 1))
fi
# And on a real board when one is plugged in.
if [ -n "${MBEDLINK_PORT:-}" ]; then
  vitest_pass "board" "MBEDLINK_PORT=$MBEDLINK_PORT" -- test/integration test/readme-examples.test.ts test/cli test/demo.test.ts
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
