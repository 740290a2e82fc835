"""Feasibility data for the demo (issue 10): R1-format addition traces for SFT and a prompt/answer set for GRPO.

Usage: python3 make_data.py OUT_DIR [N_SFT]. Deterministic (seeds 11 and 7). The product's own generator is
src/Silos/DeepSeekRL.Demo (DemoTaskGenerator, DemoTraces); this script only reproduces the measurements in the
issue-10 note with the existing commands (run.sh).
"""
import json
import random
import sys

NAMES = ["ones", "tens", "hundreds", "thousands"]


def trace(a, b):
    da, db = str(a)[::-1], str(b)[::-1]
    steps, carry = [], 0
    for i in range(max(len(da), len(db))):
        x = int(da[i]) if i < len(da) else 0
        y = int(db[i]) if i < len(db) else 0
        s = x + y + carry
        steps.append(f"{NAMES[i]}: {x} + {y}" + (f" + {carry}" if carry else "") + f" = {s}, write {s % 10}" + (" carry 1" if s >= 10 else ""))
        carry = s // 10
    if carry:
        steps.append(f"{NAMES[len(steps)]}: write 1")
    return "\n".join(steps)


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 8000
    r = random.Random(11)
    with open(f"{out}/sft.jsonl", "w") as f, open(f"{out}/corpus.txt", "w") as c:
        for _ in range(n):
            a, b = r.randint(10, 999), r.randint(10, 999)
            q = f"What is {a} + {b}?"
            completion = f"<think>\n{trace(a, b)}\n</think>\nThe answer is \\boxed{{{a + b}}}."
            f.write(json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": completion}]}) + "\n")
            c.write((q + " " + completion).replace("\n", " ") + "\n")
    r = random.Random(7)
    with open(f"{out}/rl.jsonl", "w") as f:
        for _ in range(400):
            a, b = r.randint(10, 999), r.randint(10, 999)
            f.write(json.dumps({"prompt": f"What is {a} + {b}?", "answer": str(a + b)}) + "\n")


if __name__ == "__main__":
    main()
