#!/usr/bin/env bash
# Runs every test of DeepSeekRL on a fresh or warm machine: set-up, build, the embedded PostgreSQL, then each test
# project. The last line is "N passed, M failed, K skipped" over all projects; the exit code is non-zero if any test
# failed, a test runner crashed, or no test ran.
set -uo pipefail
home="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$home"
# shellcheck source=infra/prerequisites.sh
source "$home/infra/prerequisites.sh"
openblas_coretype
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 OPENBLAS_THREAD_TIMEOUT="${OPENBLAS_THREAD_TIMEOUT:-4}"

started=$(date +%s)
bash infra/setup.sh || { echo "0 passed, 1 failed (set-up failed)"; exit 1; }
./deepseekrl db start >/dev/null || { echo "0 passed, 1 failed (embedded PostgreSQL did not start)"; exit 1; }

results="$home/artifacts/test-results"
rm -rf "$results"
mkdir -p "$results"
passed=0 failed=0 skipped=0 crashed=0
for project in tests/*/*.Tests.csproj; do
  name="$(basename "$project" .csproj)"
  exe="$home/artifacts/bin/$name/release/$name"
  echo "== $name"
  "$exe" -noColor -noLogo -xml "$results/$name.xml" 2>&1 | grep -E '\[FAIL\]|^\s{6,}|Total:' | grep -vE '^\s+at |Stack Trace:|End of stack trace'
  code=${PIPESTATUS[0]}
  if [[ -f "$results/$name.xml" ]] && grep -q '<assembly ' "$results/$name.xml"; then
    attr() { grep -o "<assembly [^>]*" "$results/$name.xml" | grep -o " $1=\"[0-9]*\"" | head -1 | grep -o '[0-9]*'; }
    p=$(attr passed); f=$(attr failed); s=$(attr skipped); e=$(attr errors)
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0} + ${e:-0})); skipped=$((skipped + ${s:-0}))
    if [[ $code -ne 0 && ${f:-0} -eq 0 && ${e:-0} -eq 0 ]]; then crashed=$((crashed + 1)); echo "   $name exited with code $code"; fi
  else
    crashed=$((crashed + 1))
    echo "   $name crashed (exit code $code) without writing results"
  fi
done

echo "tests took $(( $(date +%s) - started )) s"
failed=$((failed + crashed))
if ((skipped)); then echo "$passed passed, $failed failed, $skipped skipped"; else echo "$passed passed, $failed failed"; fi
((failed == 0 && passed > 0))
