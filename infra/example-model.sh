#!/usr/bin/env bash
# Rebuilds examples/models/quick-sft, the small trained model that examples/quick-native.json starts from: the quick
# demo's cold-start SFT checkpoint (seed 1), stored as BF16, with the demo's tokenizer; and examples/data/additions.jsonl,
# the demo's seeded RL additions. Usage: bash infra/example-model.sh [WORK_DIR]  (about 5 minutes on 2 cores)
set -euo pipefail
home="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${1:-$home/.data/example-model}"
out="$home/examples/models/quick-sft"

# Stop the quick demo once its SFT stage is done: everything after it is not needed here.
rm -rf "$work"
"$home/deepseekrl" demo --quick --seed 1 --dir "$work" --api-port 0 > "$work.log" 2>&1 &
demo=$!
until grep -q '"sft"' "$work/state.json" 2>/dev/null && grep -q 'sft done' "$work.log"; do
  kill -0 "$demo" 2>/dev/null || { echo "example-model: the demo stopped early; see $work.log" >&2; exit 1; }
  sleep 2
done
kill -INT "$demo"; wait "$demo" || true

mkdir -p "$out"
cp "$work/sft/config.json" "$work/tokenizer.json" "$out/"
# F32 -> BF16 (round to nearest even), the same rounding as the engine's own BF16 writer.
python3 - "$work/sft/model.safetensors" "$out/model.safetensors" <<'PY'
import json, struct, sys
src, dst = sys.argv[1], sys.argv[2]
data = open(src, "rb").read()
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
body = data[8 + n:]
meta = header.pop("__metadata__", None)
out_header, chunks, offset = {}, [], 0
for name in sorted(header):
    t = header[name]
    raw = body[t["data_offsets"][0]:t["data_offsets"][1]]
    assert t["dtype"] == "F32", (name, t["dtype"])
    words = struct.unpack(f"<{len(raw) // 4}I", raw)
    def bf16(w):
        if (w & 0x7F800000) == 0x7F800000:  # Inf stays Inf, NaN stays a (quiet) NaN
            return (w >> 16) | (0x40 if w & 0x7FFFFF else 0)
        return ((w + 0x7FFF + ((w >> 16) & 1)) >> 16) & 0xFFFF
    halves = [bf16(w) for w in words]
    packed = struct.pack(f"<{len(halves)}H", *halves)
    out_header[name] = {"dtype": "BF16", "shape": t["shape"], "data_offsets": [offset, offset + len(packed)]}
    chunks.append(packed)
    offset += len(packed)
if meta is not None:
    out_header["__metadata__"] = meta
text = json.dumps(out_header, separators=(",", ":")).encode()
text += b" " * (-len(text) % 8)
with open(dst, "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))
PY

# The RL additions the demo generated (seed 1), without the Countdown rows.
grep '"kind":"arithmetic"' "$work/rl.jsonl" | head -n 1000 > "$home/examples/data/additions.jsonl"
echo "example-model: wrote $out and examples/data/additions.jsonl"
