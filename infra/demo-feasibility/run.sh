#!/usr/bin/env bash
# Demo feasibility (issue 10): character-vocabulary tokenizer, tiny DeepSeek-V3 model, SFT on addition traces, then a
# GRPO campaign with held-out greedy evaluation. Usage: bash infra/demo-feasibility/run.sh [OUT_DIR] [LR]
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-/tmp/demo-feasibility}"
lr="${2:-1e-5}"
mkdir -p "$out"
python3 "$here/infra/demo-feasibility/make_data.py" "$out"
cd "$here"
./deepseekrl tokenizer train --input "$out/corpus.txt" --vocab-size 300 --min-frequency 1000000 --out "$out/tokenizer.json" \
  --special-token '<｜begin▁of▁sentence｜>' --special-token '<｜end▁of▁sentence｜>' --special-token '<｜User｜>' --special-token '<｜Assistant｜>'
sed 's/"vocab_size": 640/"vocab_size": 300/' examples/models/quick.json > "$out/config.json"
rm -rf "$out/base" "$out/sft"
./deepseekrl model init --config "$out/config.json" --seed 1 --out "$out/base"
cp "$out/tokenizer.json" "$out/base/tokenizer.json"
./deepseekrl model train-sft --model "$out/base" --data "$out/sft.jsonl" --out "$out/sft" --epochs 2 --batch-size 32 --lr 3e-3
cat > "$out/spec.json" <<JSON
{
  "name": "demo-feasibility",
  "policy": { "native": { "model": "$out/sft" } },
  "dataset": { "path": "$out/rl.jsonl", "prompt_field": "prompt", "answer_field": "answer", "template": "r1", "eval_fraction": 0.25 },
  "rewards": { "rules": [ { "rule": "accuracy", "weight": 1.0 }, { "rule": "format_r1", "weight": 0.5 } ] },
  "algorithm": { "variant": "grpo", "group_size": 8, "prompts_per_step": 8, "learning_rate": $lr, "beta": 0.0, "loss_aggregation": "dapo",
                 "advantage_normalization": "group", "max_new_tokens": 160, "temperature": 1.0, "steps": 20 },
  "evaluation": { "every_steps": 10, "mode": "greedy", "k": 1, "set": "eval_split" },
  "checkpoint_every_steps": 5,
  "seed": 1
}
JSON
./deepseekrl campaign run "$out/spec.json"
