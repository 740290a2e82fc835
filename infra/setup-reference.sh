#!/usr/bin/env bash
# Installs what the reference scripts need (not the product, not the tests): Debian's python3 with python3-torch 1.13
# (CPU), used by infra/reference/*.py to make golden data and by `bench model` to measure PyTorch in the same run.
set -euo pipefail
missing=()
for p in python3 python3-torch python3-numpy; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "setup-reference: installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup-reference: error: run: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi
/usr/bin/python3 -c 'import torch; print("setup-reference: torch", torch.__version__)'
