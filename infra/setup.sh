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
