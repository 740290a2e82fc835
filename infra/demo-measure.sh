#!/usr/bin/env bash
# Measures the demo (issues 10, 19, 22): runs `demo [--quick] --seed S` under /usr/bin/time -v for each seed and prints the
# wall clock, the peak RSS and the report's figures per seed
# and their mean and spread (min..max). Usage: bash infra/demo-measure.sh quick|full OUT_DIR [SEEDS...]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
preset="${1:?quick or full}"
out="${2:?output directory}"
shift 2
seeds=("${@:-1 2 3}")
[[ $# -eq 0 ]] && seeds=(1 2 3)
mkdir -p "$out"
flag=""
[[ "$preset" == quick ]] && flag="--quick"
# shellcheck source=infra/prerequisites.sh
source "$here/infra/prerequisites.sh"
openblas_coretype
for s in "${seeds[@]}"; do
  start=$(date +%s.%N)
  /usr/bin/time -v -o "$out/time-$s.txt" "$here/deepseekrl" demo $flag --seed "$s" --dir "$out/run-$s" --api-port 0 \
    --report "$out/report-$s.json" > "$out/log-$s.txt" 2>&1
  end=$(date +%s.%N)
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$out/time-$s.txt")
  echo "seed $s: wall clock $(echo "$end - $start" | bc) s, peak RSS ${rss} MB (/usr/bin/time -v)" | tee -a "$out/wall.txt"
done
python3 - "$out" "${seeds[@]}" <<'PY'
import json, sys, statistics
out, seeds = sys.argv[1], sys.argv[2:]
reports = [json.load(open(f"{out}/report-{s}.json")) for s in seeds]
keys = ["accuracy_base", "accuracy_sft", "accuracy_rl_final", "accuracy_distilled", "reasoning_fraction_sft", "reasoning_fraction_rl",
        "accuracy_when_reasoning_sft", "accuracy_when_reasoning_rl", "samples_generated", "samples_accepted", "seconds_total",
        "peak_rss_mb", "verify_fraction_sft", "verify_fraction_rl", "repair_fraction_sft", "repair_fraction_rl",
        "accuracy_when_verifying_sft", "accuracy_when_verifying_rl", "accuracy_without_verifying_sft", "accuracy_without_verifying_rl",
        "accuracy_first_attempt_sft", "accuracy_first_attempt_rl"]
for k in keys:
    xs = [r[k] for r in reports]
    nums = [x for x in xs if x is not None]
    mean = statistics.mean(nums) if nums else None
    print(f"{k:30} " + "  ".join("null" if x is None else f"{x:.3f}" for x in xs) + (f"   mean {mean:.3f}  range {min(nums):.3f}..{max(nums):.3f}" if nums else ""))
ck = ["accuracy_base", "accuracy_sft", "accuracy_rl_final", "accuracy_distilled", "reasoning_fraction_sft", "reasoning_fraction_rl",
      "accuracy_when_reasoning_sft", "accuracy_when_reasoning_rl", "response_length_mean_sft", "response_length_mean_rl"]
for k in ck:
    xs = [(r.get("countdown") or {}).get(k) for r in reports]
    nums = [x for x in xs if x is not None]
    mean = statistics.mean(nums) if nums else None
    print(f"{'countdown.' + k:30} " + "  ".join("null" if x is None else f"{x:.3f}" for x in xs) + (f"   mean {mean:.3f}  range {min(nums):.3f}..{max(nums):.3f}" if nums else ""))
cgain = [r["countdown"]["accuracy_rl_final"] - r["countdown"]["accuracy_sft"] for r in reports if r.get("countdown")]
if cgain:
    print(f"{'countdown.rl_gain_points':30} " + "  ".join(f"{100*g:+.1f}" for g in cgain) + f"   mean {100*statistics.mean(cgain):+.1f}")
for k in ["gain", "first_attempts_better", "verifies_and_repairs", "reasons_more_often"]:
    xs = [(r.get("gain_split") or {}).get(k) for r in reports]
    print(f"{'gain_split.' + k + '_points':30} " + "  ".join("null" if x is None else f"{100*x:+.1f}" for x in xs))
gain = [r["accuracy_rl_final"] - r["accuracy_sft"] for r in reports]
print(f"{'rl_gain_points':30} " + "  ".join(f"{100*g:+.1f}" for g in gain) + f"   mean {100*statistics.mean(gain):+.1f}")
for s, r in zip(seeds, reports):
    print(f"seed {s} rl_evals: " + ", ".join(f"{e['step']}: {e['accuracy']}" for e in r["rl_evals"]))
    print(f"seed {s} seconds_per_stage: " + ", ".join(f"{k} {v:.1f}" for k, v in r["seconds_per_stage"].items()))
    print(f"seed {s} peak_rss_mb_through_stage: " + ", ".join(f"{k} {v:.0f}" for k, v in (r.get("peak_rss_mb_through_stage") or {}).items() if v is not None))
PY
