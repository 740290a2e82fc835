#!/usr/bin/env bash
# Greedy completions of a demo model on its held-out additions, through the CLI only (tokenizer encode, model
# generate, tokenizer decode), as prompt / completion / right-or-wrong JSON lines: the held-out completions the demo's
# evaluations score but do not store, for reading (docs/demo.md quotes repairs from them).
#   bash infra/demo-heldout.sh DEMO_DIR MODEL OUT.jsonl      (MODEL: sft, rl-final, distilled, ... under DEMO_DIR)
set -euo pipefail
dir=$1 model=$2 out=$3
here=$(cd "$(dirname "$0")/.." && pwd)
cli=${DEEPSEEKRL_CLI:-"$here/deepseekrl"}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
py=/usr/bin/python3
$py - "$dir/eval.jsonl" "$tmp/text.jsonl" <<'PY'
import json, sys
with open(sys.argv[2], "w", encoding="utf-8") as out:
    for line in open(sys.argv[1], encoding="utf-8"):
        row = json.loads(line)
        # DeepSeek-R1's chat template with the generation prompt, as the demo's campaigns render it (template r1).
        out.write(json.dumps({"text": "<｜begin▁of▁sentence｜><｜User｜>" + row["prompt"] + "<｜Assistant｜><think>\n"}, ensure_ascii=False) + "\n")
PY
$cli tokenizer encode --tokenizer "$dir/tokenizer.json" --input "$tmp/text.jsonl" --out "$tmp/ids.jsonl" > /dev/null
mapfile -t prompts < <($py -c 'import json,sys; [print(",".join(map(str, json.loads(l)["ids"]))) for l in open(sys.argv[1])]' "$tmp/ids.jsonl")
args=()
for p in "${prompts[@]}"; do args+=(--prompt "$p"); done
$cli model generate --model "$dir/$model" "${args[@]}" --max-tokens 160 --temperature 0 > "$tmp/generated.txt"
$py - "$tmp/generated.txt" "$tmp/out-ids.jsonl" <<'PY'
import json, sys
with open(sys.argv[2], "w") as out:
    for line in open(sys.argv[1]):
        if "] finish=" in line and " tokens=" in line:
            ids = [int(t) for t in line.split(" tokens=", 1)[1].strip().split(",") if t]
            # A completion that stopped on the end-of-sequence token ends with it; the text is what came before.
            out.write(json.dumps({"ids": ids[:-1] if "finish=StopToken" in line else ids}) + "\n")
PY
$cli tokenizer decode --tokenizer "$dir/tokenizer.json" --input "$tmp/out-ids.jsonl" --out "$tmp/decoded.jsonl" > /dev/null
$py - "$dir/eval.jsonl" "$tmp/decoded.jsonl" "$out" <<'PY'
import json, re, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
texts = [json.loads(l)["text"] for l in open(sys.argv[2], encoding="utf-8")]
with open(sys.argv[3], "w", encoding="utf-8") as out:
    for row, text in zip(rows, texts):
        boxed = re.findall(r"\\boxed\{([^}]*)\}", text)
        out.write(json.dumps({"prompt": row["prompt"], "answer": row["answer"], "completion": text,
                              "right": bool(boxed) and boxed[-1].strip() == row["answer"]}, ensure_ascii=False) + "\n")
PY
echo "$out: $(wc -l < "$out") completions, $(grep -c '"right": true' "$out" || true) right"
# What the checks compare: whether the first check quotes the guess (the think block's first line), whether its verdict
# states its comparison, and how many repairs (a first check comparing two different numbers, a later one comparing
# equal numbers, a right answer) checked the guess itself.
$py - "$out" <<'PY'
import json, re, sys
n = checks = quotes = no_to_equal = yes_to_different = repairs = quoted_repairs = guesses_right = 0
for line in open(sys.argv[1], encoding="utf-8"):
    row = json.loads(line)
    n += 1
    lines = [l.strip() for l in row["completion"].split("</think>")[0].strip().split("\n")]
    guess = lines[0] if lines else ""
    guesses_right += guess == row["answer"]
    found = [re.match(r"check: (\S+) vs (\S+) (yes|no)$", l) for l in lines if l.startswith("check:")]
    found = [m for m in found if m]
    if not found:
        continue
    checks += 1
    left, right, verdict = found[0].groups()
    quotes += left == guess
    no_to_equal += left == right and verdict == "no"
    yes_to_different += left != right and verdict == "yes"
    if left != right and any(m.group(1) == m.group(2) for m in found[1:]) and row["right"]:
        repairs += 1
        quoted_repairs += left == guess
print(f"guesses right {guesses_right}; completions that check {checks}: first check quotes the guess {quotes}, "
      f"says no to equal numbers {no_to_equal}, yes to different ones {yes_to_different}; repairs {repairs}, "
      f"of which checked the guess {quoted_repairs}")
PY
