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
check "lint+format (biome)" npx --no-install biome check .
check "typecheck (tsc strict)" npx --no-install tsc -p .
check "format (clang-format)" bash tools/clang-format.sh

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

echo "== TypeScript tests (vitest)"
npx --no-install vitest run --reporter=default --reporter=json --outputFile.json="$results/vitest.json"
if [ -f "$results/vitest.json" ]; then
  read -r v_passed v_failed < <(node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    // a test file that fails to load has no assertion results but still fails
    const brokenFiles = r.testResults.filter((f) => f.status === "failed" && f.assertionResults.length === 0).length;
    console.log(r.numPassedTests, r.numFailedTests + brokenFiles);
  ' "$results/vitest.json")
  passed=$((passed + v_passed))
  failed=$((failed + v_failed))
  [ "$v_passed" -gt 0 ] || { echo "FAILED: vitest ran no test"; failed=$((failed + 1)); }
else
  echo "FAILED: vitest wrote no report"
  failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
