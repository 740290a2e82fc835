#!/usr/bin/env bash
# Regenerates the golden logits under tests/DeepSeekRL.Model.Tests/Data/golden/ (see the README there):
#   1. `./deepseekrl model init` makes F32 weights for each config (seed, std, bias std below) in a temporary directory;
#   2. the PyTorch reference (infra/reference/deepseek_v3.py, fp64) computes logits and MTP logits for a few token
#      sequences, checks naive and absorbed decode against the prefill, and reports routing statistics;
#   3. config.json, golden.json (seed, std, tokens, checksums, statistics) and one small safetensors file per sequence
#      are written. The weights themselves are not committed: the C# tests re-create them with ModelInit.
# Needs the Debian python3-torch (infra/setup-reference.sh); run from anywhere.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
py=/usr/bin/python3
out="$root/tests/DeepSeekRL.Model.Tests/Data/golden"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export OPENBLAS_NUM_THREADS=1

# Config variants derived from examples/models/*.json.
variant() { # name base-config python-edit-expression
  "$py" - "$root/examples/models/$2" "$work/$1.json" "$3" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
exec(sys.argv[3])
json.dump(c, open(sys.argv[2], "w"), indent=2)
EOF
}
variant micro micro.json "pass"
variant tiny tiny.json "pass"
# YaRN on (factor 4 over an original context of 64: pair 0 kept, pairs 1-2 blended, pairs 3-7 divided by 4; softmax
# scale × (0.1 ln 4 + 1)²), with mscale = mscale_all_dim = 1 so that HF's cos/sin attention_factor is 1.
variant tiny-yarn tiny.json 'c["rope_scaling"] = {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64, "beta_fast": 32.0, "beta_slow": 1.0, "mscale": 1.0, "mscale_all_dim": 1.0}; c["max_position_embeddings"] = 256'
# Plain q_proj (q_lora_rank null), HF rotate-half RoPE layout (rope_interleave false), no shared expert.
variant micro-qproj micro.json 'c["q_lora_rank"] = None; c["rope_interleave"] = False; c["n_shared_experts"] = 0'

# name seed std bias_std sequences (;-separated)
cases=(
  "micro 11 0.3 0.3 3,17,60,1,42,42,8,33,9,0,63,25,14,50,7,2;5,6,7,8,9;63,0"
  "micro-qproj 12 0.3 0.3 10,20,30,40,50,60,1,2,3,4,5,6;61,62,63;7,8"
  "tiny 21 0.25 0.3 5,17,300,2000,1,9,44,1023,7,7,8,100;1500,3,999,42,2047;0,1"
  "tiny-yarn 22 0.25 0.3 12,345,678,901,234,567,890,123,456,789,1011,1213;2000,1000,500,250,125;64,2"
)

cd "$root"
"$py" infra/reference/deepseek_v3.py --self-test
for case in "${cases[@]}"; do
  read -r name seed std bias sequences <<<"$case"
  model="$work/model-$name"
  ./deepseekrl model init --config "$work/$name.json" --seed "$seed" --std "$std" --bias-std "$bias" --dtype f32 --out "$model" >/dev/null
  dest="$out/$name"
  rm -rf "$dest"
  mkdir -p "$dest"
  cp "$model/config.json" "$dest/config.json"
  reports="$work/$name.reports"
  : >"$reports"
  k=0
  IFS=';' read -r -a seqs <<<"$sequences"
  for tokens in "${seqs[@]}"; do
    "$py" infra/reference/deepseek_v3.py --model "$model" --tokens "$tokens" --out "$dest/seq$k.safetensors" --fp64 --check >>"$reports"
    k=$((k + 1))
  done
  "$py" - "$name" "$seed" "$std" "$bias" "$sequences" "$reports" "$model/model.safetensors" "$dest/golden.json" <<'EOF'
import hashlib, json, sys
name, seed, std, bias, sequences, reports, weights, dest = sys.argv[1:]
reports = [json.loads(line) for line in open(reports) if line.strip()]
seqs = [[int(t) for t in s.split(",")] for s in sequences.split(";")]
for r in reports:
    bound = 1e-4 * r["max_abs_logit"]
    for key in ("max_diff_decode_naive", "max_diff_decode_absorb", "max_diff_fp32_fp64"):
        assert r[key] < bound, f"{name}: {key} = {r[key]} exceeds {bound}"
    # A decision within 1e-4 of a tie could flip between float32 implementations: choose other tokens or seeds.
    assert r["min_expert_margin"] > 1e-4 and r["min_group_margin"] > 1e-4, f"{name}: routing margin too small: {r}"
golden = {
    "name": name, "seed": int(seed), "std": float(std), "bias_std": float(bias), "dtype": "F32",
    "weights_sha256": hashlib.sha256(open(weights, "rb").read()).hexdigest(),
    "tolerance": {"relative_to_max_abs_logit": 1e-4},
    "sequences": [{"file": f"seq{k}.safetensors", "tokens": s, "max_abs_logit": r["max_abs_logit"],
                   "max_abs_mtp_logit": r.get("max_abs_mtp_logit"), "logit_std": r["logit_std"],
                   "routing": {key: r[key] for key in ("moe_calls", "discarded_groups", "tokens_changed_by_group_limit",
                                                       "tokens_changed_by_bias", "min_expert_margin", "min_group_margin")},
                   "reference_checks": {key: r[key] for key in ("max_diff_decode_naive", "max_diff_decode_absorb", "max_diff_fp32_fp64")}}
                  for k, (s, r) in enumerate(zip(seqs, reports))],
    "softmax_scale": reports[0]["tau"],
}
json.dump(golden, open(dest, "w"), indent=2)
changed = sum(r["tokens_changed_by_group_limit"] for r in reports)
bias_changed = sum(r["tokens_changed_by_bias"] for r in reports)
print(f"{name}: {len(seqs)} sequences, max |logit| {max(r['max_abs_logit'] for r in reports):.2f}, "
      f"(token, MoE layer) pairs whose selection the group limit changed: {changed}, the bias changed: {bias_changed}, "
      f"min margins expert {min(r['min_expert_margin'] for r in reports):.2e} group {min(r['min_group_margin'] for r in reports):.2e}, "
      f"worst decode diff {max(max(r['max_diff_decode_naive'], r['max_diff_decode_absorb']) for r in reports):.1e}")
EOF
done
du -sh "$out"
