#!/usr/bin/env bash
# Regenerates the golden gradients under tests/DeepSeekRL.Model.Tests/Data/golden-grads/ (tiny config):
#   1. `./deepseekrl model init` makes the F32 weights of the tiny golden case (seed 21, std 0.25, bias std 0.3);
#   2. the PyTorch reference (infra/reference/deepseek_v3.py --grads, fp64 autograd) computes the training loss
#      (mean next-token CE + W x MTP CE) and every parameter's gradient for a committed token batch;
#   3. only a subset is committed (the full tiny gradients are ~11 MB): per tensor its L2 norm and 64 elements sampled
#      with a fixed seed (all elements when fewer), as grads.safetensors ('NAME' values, 'NAME:index', 'NAME:norm'),
#      plus golden.json (seed, std, tokens, mtp weight, losses, routing margins). The C# test re-creates the weights
#      with ModelInit.
# Needs the Debian python3-torch (infra/setup-reference.sh); run from anywhere.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
py=/usr/bin/python3
out="$root/tests/DeepSeekRL.Model.Tests/Data/golden-grads/tiny"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export OPENBLAS_NUM_THREADS=1
seed=21 std=0.25 bias=0.3 mtp=0.3
tokens="5,17,300,2000,1,9,44,1023,7,7,8,100;1500,3,999,42,2047,0,1,64,128,256,512,1024"

cd "$root"
./deepseekrl model init --config examples/models/tiny.json --seed "$seed" --std "$std" --bias-std "$bias" --dtype f32 --out "$work/model" >/dev/null
"$py" infra/reference/deepseek_v3.py --model "$work/model" --tokens "$tokens" --mtp-weight "$mtp" --grads --fp64 --out "$work/full.safetensors" >"$work/report.json"
rm -rf "$out"
mkdir -p "$out"
cp "$work/model/config.json" "$out/config.json"
"$py" - "$work/full.safetensors" "$work/report.json" "$out" "$seed" "$std" "$bias" "$mtp" "$tokens" <<'PY'
import json, sys
import numpy as np
sys.path.insert(0, "infra/reference")
from deepseek_v3 import read_safetensors, write_safetensors
full, report, out, seed, std, bias, mtp, tokens = sys.argv[1:]
report = json.load(open(report))
assert report["min_expert_margin"] > 1e-4 and report["min_group_margin"] > 1e-4, f"routing margin too small: {report}"
grads = {k: (v[1] if isinstance(v, tuple) else v) for k, v in read_safetensors(full).items()}
rng = np.random.RandomState(1234)
sub = {}
for name in sorted(grads):
    g = np.asarray(grads[name], dtype=np.float64).ravel()
    if name in ("loss", "main_loss", "mtp_loss"):
        sub[name] = g.astype(np.float32)
        continue
    idx = np.arange(g.size) if g.size <= 64 else np.sort(rng.choice(g.size, 64, replace=False))
    sub[name] = g[idx].astype(np.float32)
    sub[name + ":index"] = idx.astype(np.float32)  # exact: every tiny tensor has < 2^24 elements
    sub[name + ":norm"] = np.array([np.linalg.norm(g)], dtype=np.float32)
write_safetensors(out + "/grads.safetensors", sub)
golden = {"name": "tiny", "seed": int(seed), "std": float(std), "bias_std": float(bias), "mtp_weight": float(mtp),
          "sequences": [[int(t) for t in s.split(",")] for s in tokens.split(";")], "samples_per_tensor": 64,
          "sample_seed": 1234, "loss": report["loss"], "main_loss": report["main_loss"], "mtp_loss": report["mtp_loss"],
          "min_expert_margin": report["min_expert_margin"], "min_group_margin": report["min_group_margin"],
          "tolerance": {"relative_to_max_abs_sampled": 1e-3, "norm_relative": 1e-3}}
json.dump(golden, open(out + "/golden.json", "w"), indent=2)
print(f"tiny: loss {report['loss']:.6f}, {sum(1 for k in sub if k.endswith(':norm'))} tensors, margins {report['min_expert_margin']:.2e} {report['min_group_margin']:.2e}")
PY
du -sh "$out"
