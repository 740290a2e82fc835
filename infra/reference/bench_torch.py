#!/usr/bin/python3
"""PyTorch timing baseline for `deepseekrl bench model`: the DeepSeek-V3 forward pass written batched from
../shared/reference/deepseek-v3.md the way the DeepSeek reference inference code is organised (absorbed or naive MLA
cache, MoE looping over experts on gathered tokens), on the same config.json + model.safetensors (F32/BF16).
It times; it is not the golden oracle (that is infra/reference/deepseek_v3.py).

Usage (Debian torch; OpenBLAS threads off so torch's own pool owns the cores):
  OPENBLAS_NUM_THREADS=1 /usr/bin/python3 infra/reference/bench_torch.py --model DIR --json OUT [--threads 2]
Writes a flat JSON object with the same metric names as the C# benchmark (without the torch_ prefix).
"""

import argparse
import json
import math
import resource
import struct
import time

import numpy as np
import torch


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    buf = memoryview(data)[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        if e["dtype"] == "F32":
            arr = np.frombuffer(buf[b:end], dtype="<f4").copy()
        elif e["dtype"] == "BF16":
            arr = (np.frombuffer(buf[b:end], dtype="<u2").astype(np.uint32) << 16).view(np.float32).copy()
        else:
            raise ValueError(f"{name}: dtype {e['dtype']} not supported by the timing script")
        out[name] = torch.from_numpy(arr.reshape(e["shape"]))
    return out


class Model:
    def __init__(self, model_dir):
        with open(f"{model_dir}/config.json") as f:
            c = json.load(f)
        self.c = c
        self.w = read_safetensors(f"{model_dir}/model.safetensors")
        self.D, self.H = c["hidden_size"], c["num_attention_heads"]
        self.dn, self.dr, self.dv = c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"]
        self.rkv, self.rq = c["kv_lora_rank"], c.get("q_lora_rank")
        self.L, self.Ld = c["num_hidden_layers"], c.get("first_k_dense_replace", 0)
        self.E, self.K = c["n_routed_experts"], c["num_experts_per_tok"]
        self.G, self.Gk = c.get("n_group", 1), c.get("topk_group", 1)
        self.R = c.get("routed_scaling_factor", 2.5)
        self.eps = c.get("rms_norm_eps", 1e-6)
        dqk = self.dn + self.dr
        self.scale = dqk ** -0.5
        freqs = 1.0 / (c.get("rope_theta", 10000.0) ** (torch.arange(0, self.dr, 2, dtype=torch.float64) / self.dr))
        ys = c.get("rope_scaling")
        if ys:  # YaRN (§4.4, §4.5)
            s, orig = ys["factor"], ys["original_max_position_embeddings"]

            def corr(n):
                return self.dr * math.log(orig / (n * 2 * math.pi)) / (2 * math.log(c.get("rope_theta", 10000.0)))

            low = max(math.floor(corr(ys.get("beta_fast", 32))), 0)
            high = min(math.ceil(corr(ys.get("beta_slow", 1))), self.dr - 1)
            if low == high:
                high += 0.001
            ramp = torch.clamp((torch.arange(self.dr // 2, dtype=torch.float64) - low) / (high - low), 0, 1)
            freqs = freqs / s * ramp + freqs * (1 - ramp)
            if ys.get("mscale_all_dim"):
                m = 0.1 * ys["mscale_all_dim"] * math.log(s) + 1.0
                self.scale *= m * m
        pos = torch.arange(c.get("max_position_embeddings", 4096), dtype=torch.float64)
        self.freqs_cis = torch.polar(torch.ones(len(pos), self.dr // 2, dtype=torch.float64), torch.outer(pos, freqs)).to(torch.complex64)
        # Per-layer views (W_kvb as [H, d_n + d_v, r_kv] for absorb).
        self.wkv_b = {}
        for l in range(self.L):
            self.wkv_b[l] = self.w[f"model.layers.{l}.self_attn.kv_b_proj.weight"].view(self.H, self.dn + self.dv, self.rkv)

    def W(self, name):
        return self.w[name]

    def rms(self, x, name):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.w[name]

    def rope(self, x, start):
        # Interleaved pairs (§4.2). x: [B, T, h, d_r]
        T = x.shape[1]
        xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
        fc = self.freqs_cis[start:start + T].view(1, T, 1, -1)
        return torch.view_as_real(xc * fc).flatten(3)

    def new_cache(self, B, S, mode):
        caches = []
        for _ in range(self.L):
            if mode == "absorb":
                caches.append((torch.zeros(B, S, self.rkv), torch.zeros(B, S, self.dr)))
            else:
                caches.append((torch.zeros(B, S, self.H, self.dn + self.dr), torch.zeros(B, S, self.H, self.dv)))
        return caches

    def attention(self, l, x, start, mask, cache, mode):
        p = f"model.layers.{l}.self_attn."
        B, T, _ = x.shape
        end = start + T
        if self.rq:
            q = torch.nn.functional.linear(self.rms(torch.nn.functional.linear(x, self.W(p + "q_a_proj.weight")), p + "q_a_layernorm.weight"), self.W(p + "q_b_proj.weight"))
        else:
            q = torch.nn.functional.linear(x, self.W(p + "q_proj.weight"))
        q = q.view(B, T, self.H, self.dn + self.dr)
        q_nope, q_pe = torch.split(q, [self.dn, self.dr], dim=-1)
        q_pe = self.rope(q_pe, start)
        kv = torch.nn.functional.linear(x, self.W(p + "kv_a_proj_with_mqa.weight"))
        kv, k_pe = torch.split(kv, [self.rkv, self.dr], dim=-1)
        k_pe = self.rope(k_pe.unsqueeze(2), start)
        kv = self.rms(kv, p + "kv_a_layernorm.weight")
        if mode == "naive":
            kvb = torch.nn.functional.linear(kv, self.W(p + "kv_b_proj.weight")).view(B, T, self.H, self.dn + self.dv)
            k_nope, v = torch.split(kvb, [self.dn, self.dv], dim=-1)
            k = torch.cat([k_nope, k_pe.expand(-1, -1, self.H, -1)], dim=-1)
            if cache is None:  # training: the whole sequence at once, no cache
                kk, vv = k, v
            else:
                kc, vc = cache[l]
                kc[:B, start:end] = k
                vc[:B, start:end] = v
                kk, vv = kc[:B, :end], vc[:B, :end]
            qf = torch.cat([q_nope, q_pe], dim=-1)
            scores = torch.einsum("bshd,bthd->bsht", qf, kk) * self.scale
            if mask is not None:
                scores = scores + mask.unsqueeze(1)
            scores = scores.softmax(dim=-1)
            o = torch.einsum("bsht,bthd->bshd", scores, vv)
        else:
            wkv_b = self.wkv_b[l]
            q_nope = torch.einsum("bshd,hdc->bshc", q_nope, wkv_b[:, :self.dn])
            kc, pc = cache[l]
            kc[:B, start:end] = kv
            pc[:B, start:end] = k_pe.squeeze(2)
            scores = (torch.einsum("bshc,btc->bsht", q_nope, kc[:B, :end]) + torch.einsum("bshr,btr->bsht", q_pe, pc[:B, :end])) * self.scale
            if mask is not None:
                scores = scores + mask.unsqueeze(1)
            scores = scores.softmax(dim=-1)
            o = torch.einsum("bsht,btc->bshc", scores, kc[:B, :end])
            o = torch.einsum("bshc,hdc->bshd", o, wkv_b[:, -self.dv:])
        return torch.nn.functional.linear(o.flatten(2), self.W(p + "o_proj.weight"))

    def mlp(self, p, x):
        return torch.nn.functional.linear(torch.nn.functional.silu(torch.nn.functional.linear(x, self.W(p + "gate_proj.weight"))) * torch.nn.functional.linear(x, self.W(p + "up_proj.weight")), self.W(p + "down_proj.weight"))

    def moe(self, l, x):
        p = f"model.layers.{l}.mlp."
        shape = x.shape
        x = x.view(-1, self.D)
        s = torch.nn.functional.linear(x, self.W(p + "gate.weight")).sigmoid()
        sb = s + self.W(p + "gate.e_score_correction_bias")
        if self.G > 1:
            g = sb.view(x.size(0), self.G, -1).topk(2, dim=-1)[0].sum(dim=-1)
            keep = g.topk(self.Gk, dim=-1)[1]
            gmask = torch.ones(x.size(0), self.G, dtype=torch.bool).scatter_(1, keep, False)
            sb = sb.masked_fill(gmask.unsqueeze(-1).expand(-1, -1, self.E // self.G).flatten(1), float("-inf"))
        idx = sb.topk(self.K, dim=-1)[1]
        wts = s.gather(1, idx)
        wts = wts / wts.sum(dim=-1, keepdim=True) * self.R
        y = torch.zeros_like(x)
        counts = torch.bincount(idx.flatten(), minlength=self.E).tolist()
        for e in range(self.E):
            if counts[e] == 0:
                continue
            rows, top = torch.where(idx == e)
            y[rows] += self.mlp(f"{p}experts.{e}.", x[rows]) * wts[rows, top, None]
        if f"{p}shared_experts.gate_proj.weight" in self.w:
            y = y + self.mlp(p + "shared_experts.", x)
        return y.view(shape)

    def forward(self, tokens, start, cache, mode):
        B, T = tokens.shape
        h = torch.nn.functional.embedding(tokens, self.W("model.embed_tokens.weight"))
        mask = None
        if T > 1:
            mask = torch.full((T, start + T), float("-inf")).triu_(start + 1)
        for l in range(self.L):
            p = f"model.layers.{l}."
            h = h + self.attention(l, self.rms(h, p + "input_layernorm.weight"), start, mask, cache, mode)
            xf = self.rms(h, p + "post_attention_layernorm.weight")
            h = h + (self.moe(l, xf) if l >= self.Ld else self.mlp(p + "mlp.", xf))
        z = self.rms(h[:, -1], "model.norm.weight")
        return torch.nn.functional.linear(z, self.W("lm_head.weight"))


    def block(self, l, h, mask):
        p = f"model.layers.{l}."
        h = h + self.attention(l, self.rms(h, p + "input_layernorm.weight"), 0, mask, None, "naive")
        xf = self.rms(h, p + "post_attention_layernorm.weight")
        return h + (self.moe(l, xf) if l >= self.Ld else self.mlp(p + "mlp.", xf))

    def train_loss(self, tokens, mtp_weight):
        """The C# trainer's loss (TrainingModel.Forward, no mask): mean next-token cross-entropy over B·(T−1) rows
        + mtp_weight × the MTP cross-entropy (row i predicts t_{i+2}, §10) over B·(T−2) rows."""
        B, T = tokens.shape
        F = torch.nn.functional
        h = F.embedding(tokens, self.W("model.embed_tokens.weight"))
        mask = torch.full((T, T), float("-inf")).triu_(1)
        for l in range(self.L):
            h = self.block(l, h, mask)
        h0 = self.rms(h, "model.norm.weight")
        logits = F.linear(h0, self.W("lm_head.weight"))
        V = logits.shape[-1]
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1))
        if mtp_weight and self.c.get("num_nextn_predict_layers", 0):
            p = f"model.layers.{self.L}."
            e = self.rms(F.embedding(tokens[:, 1:], self.W("model.embed_tokens.weight")), p + "enorm.weight")
            x = F.linear(torch.cat([e, self.rms(h0[:, :-1], p + "hnorm.weight")], dim=-1), self.W(p + "eh_proj.weight"))
            x = self.block(self.L, x, mask[:T - 1, :T - 1])
            ml = F.linear(self.rms(x, p + "shared_head.norm.weight"), self.W("lm_head.weight"))
            loss = loss + mtp_weight * F.cross_entropy(ml[:, :-1].reshape(-1, V), tokens[:, 2:].reshape(-1))
        return loss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--generate", type=int, default=128)
    ap.add_argument("--train-warmup", type=int, default=2)
    ap.add_argument("--train-steps", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    m = Model(a.model)
    V = m.c["vocab_size"]
    out = {}

    def median(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2

    with torch.inference_mode():
        for B, T in ((1, 512), (16, 128)):
            rates = []
            for r in range(a.runs + 1):
                tokens = torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(r))
                cache = m.new_cache(B, T, "absorb")
                t0 = time.perf_counter()
                m.forward(tokens, 0, cache, "absorb")
                if r > 0:  # run 0 is warm-up
                    rates.append(B * T / (time.perf_counter() - t0))
            out[f"prefill_tok_per_s_b{B}x{T}"] = median(rates)
        for mode, name in (("absorb", "absorbed"), ("naive", "naive")):
            for B in (1, 16):
                rates = []
                for r in range(a.runs + 1):
                    tokens = torch.randint(0, V, (B, a.prompt), generator=torch.Generator().manual_seed(100 + r))
                    cache = m.new_cache(B, a.prompt + a.generate, mode)
                    logits = m.forward(tokens, 0, cache, mode)
                    t0 = time.perf_counter()
                    for i in range(a.generate):
                        nxt = logits.argmax(dim=-1, keepdim=True)
                        logits = m.forward(nxt, a.prompt + i, cache, mode)
                    if r > 0:
                        rates.append(B * a.generate / (time.perf_counter() - t0))
                out[f"decode_tok_per_s_b{B}_{name}"] = median(rates)
    # Training step: forward (main + 0.3 × MTP loss), backward, AdamW; the routing biases are not gradient-trained.
    params = [t for n, t in m.w.items() if not n.endswith("e_score_correction_bias")]
    for t in params:
        t.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.1)
    B, T = 16, 128
    rates = []
    for r in range(a.train_warmup + a.train_steps):
        tokens = torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(200 + r))
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        loss = m.train_loss(tokens, 0.3)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)  # as AdamWOptions.MaxGradNorm
        opt.step()
        if r >= a.train_warmup:
            rates.append(B * T / (time.perf_counter() - t0))
    out[f"train_tok_per_s_b{B}x{T}"] = median(rates)
    out["train_loss"] = float(loss)
    out["kv_bytes_per_token_absorbed"] = 4 * m.L * (m.rkv + m.dr)
    out["kv_bytes_per_token_naive"] = 4 * m.L * m.H * (m.dn + m.dr + m.dv)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    out["threads"] = torch.get_num_threads()
    with open(a.json, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
