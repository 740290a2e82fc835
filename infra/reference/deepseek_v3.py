#!/usr/bin/python3
"""PyTorch reference of the DeepSeek-V3 forward pass, written from ../shared/reference/deepseek-v3.md (section numbers
below refer to it). It is the oracle for the C# engine's golden tests: plain, per-token-readable tensor code in fp32
(or fp64), no performance work, no training. It reads an HF model directory (config.json + model.safetensors or a
sharded index) with its own safetensors reader (no extra packages) and writes logits as safetensors.

Usage:
  /usr/bin/python3 infra/reference/deepseek_v3.py --model DIR --tokens 1,2,3 --out FILE.safetensors \
      [--decode naive|absorb] [--fp64] [--check]
  /usr/bin/python3 infra/reference/deepseek_v3.py --self-test

Output tensors (F32): "logits" [T, V] (row i predicts token i+1) and, when the config has an MTP module,
"mtp_logits" [T-1, V] (row i predicts token i+2 from the main model's final-norm output at i and the embedding of
token i+1, §10). A one-line JSON report (routing statistics, max differences of --check) goes to stdout.
"""

import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch

# ----------------------------------------------------------------------------------------------------------------------
# safetensors (§14): 8-byte LE header length, JSON header, byte buffer. Strict enough for our own files.

_DTYPES = {"F32": (np.float32, 4), "F16": (np.float16, 2), "F64": (np.float64, 8), "BF16": (None, 2),
           "F8_E4M3": (None, 1), "I64": (np.int64, 8), "I32": (np.int32, 4), "U8": (np.uint8, 1)}


def _fp8_e4m3_table():
    """float8 e4m3fn: bias 7, subnormals (m/8)*2^-6, no infinities, S.1111.111 = NaN, max 448 (§14.2)."""
    table = np.zeros(256, dtype=np.float64)
    for b in range(256):
        sign = -1.0 if b & 0x80 else 1.0
        e, m = (b >> 3) & 0xF, b & 0x7
        if e == 0xF and m == 0x7:
            table[b] = float("nan")
        elif e == 0:
            table[b] = sign * (m / 8.0) * 2.0 ** -6
        else:
            table[b] = sign * (1.0 + m / 8.0) * 2.0 ** (e - 7)
    return table


_FP8 = _fp8_e4m3_table()


def read_safetensors(path):
    """Returns {name: (dtype_string, float64 numpy array)}; checks bounds and tiling of the buffer."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: too short")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError(f"{path}: header length {n} exceeds the file")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    buffer = memoryview(data)[8 + n:]
    out, spans = {}, []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = entry["dtype"]
        begin, end = entry["data_offsets"]
        shape = [int(d) for d in entry["shape"]]
        if dtype not in _DTYPES:
            raise ValueError(f"{path}: tensor '{name}': dtype {dtype} not supported")
        count = int(np.prod(shape)) if shape else 1
        if not (0 <= begin <= end <= len(buffer)) or end - begin != count * _DTYPES[dtype][1]:
            raise ValueError(f"{path}: tensor '{name}': bad data_offsets")
        spans.append((begin, end))
        raw = buffer[begin:end]
        if dtype == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32).astype(np.float64)
        elif dtype == "F8_E4M3":
            arr = _FP8[np.frombuffer(raw, dtype=np.uint8)]
        else:
            arr = np.frombuffer(raw, dtype=np.dtype(_DTYPES[dtype][0]).newbyteorder("<")).astype(np.float64)
        out[name] = (dtype, arr.reshape(shape))
    cursor = 0
    for begin, end in sorted(spans):
        if begin != cursor:
            raise ValueError(f"{path}: tensors do not tile the buffer")
        cursor = end
    if cursor != len(buffer):
        raise ValueError(f"{path}: buffer length mismatch")
    return out


def write_safetensors(path, tensors):
    """Writes {name: numpy float array} as F32, header padded with spaces to 8 bytes, names sorted."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name], dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + arr.nbytes]}
        blobs.append(arr.tobytes())
        offset += arr.nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def load_weights(model_dir):
    """All tensors of the model directory as float64 numpy arrays, FP8 blocks dequantised (§14.3)."""
    index = os.path.join(model_dir, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
    raw = {}
    for file in files:
        raw.update(read_safetensors(os.path.join(model_dir, file)))
    weights = {}
    for name, (dtype, arr) in raw.items():
        if name.endswith("_scale_inv"):
            continue
        if dtype == "F8_E4M3":
            scale = raw[name + "_scale_inv"][1]
            rows, cols = arr.shape
            full = np.kron(scale, np.ones((128, 128)))[:rows, :cols]  # S[i // 128, j // 128], partial edge blocks
            arr = arr * full
        weights[name] = arr
    return weights


# ----------------------------------------------------------------------------------------------------------------------
# Config (§12) with the defaults of HF DeepseekV3Config.

class Config:
    def __init__(self, path):
        c = json.load(open(path))
        self.V = c["vocab_size"]
        self.D = c["hidden_size"]
        self.I = c["intermediate_size"]
        self.Im = c["moe_intermediate_size"]
        self.L = c["num_hidden_layers"]
        self.H = c["num_attention_heads"]
        self.Ns = c.get("n_shared_experts", 1) or 0
        self.E = c["n_routed_experts"]
        self.R = c.get("routed_scaling_factor", 2.5)
        self.r_kv = c["kv_lora_rank"]
        self.r_q = c.get("q_lora_rank") or 0  # null or 0: plain q_proj
        self.d_r = c["qk_rope_head_dim"]
        self.d_v = c["v_head_dim"]
        self.d_n = c["qk_nope_head_dim"]
        self.d_qk = self.d_n + self.d_r
        self.G = c.get("n_group", 1) or 1
        self.Gk = c.get("topk_group", 1) or 1
        self.K = c["num_experts_per_tok"]
        self.Ld = c.get("first_k_dense_replace", 0)
        self.norm_topk = c.get("norm_topk_prob", True)
        self.eps = c.get("rms_norm_eps", 1e-6)
        self.theta = c.get("rope_theta", 10000.0)
        self.interleave = c.get("rope_interleave", True)
        self.mtp = c.get("num_nextn_predict_layers", 0) or 0
        self.yarn = c.get("rope_scaling")
        if self.yarn is not None and (self.yarn.get("type") or self.yarn.get("rope_type")) != "yarn":
            raise ValueError("only rope_scaling type yarn is supported")


# ----------------------------------------------------------------------------------------------------------------------
# RoPE and YaRN (§4).

def yarn_mscale(s, m):
    return 1.0 if s <= 1 else 0.1 * m * math.log(s) + 1.0


def rope_frequencies(cfg):
    """f_i = θ^(-2i/d_r), i < d_r/2, with the YaRN correction (§4.4) when rope_scaling is set (HF semantics: always,
    whatever max_position_embeddings is). Returns (frequencies float64 [d_r/2], cos/sin factor, softmax scale τ)."""
    d_r = cfg.d_r
    i = np.arange(d_r // 2, dtype=np.float64)
    f = cfg.theta ** (-2.0 * i / d_r)
    tau = cfg.d_qk ** -0.5
    factor = 1.0
    if cfg.yarn is not None:
        y = cfg.yarn
        s = float(y["factor"])
        l_orig = float(y["original_max_position_embeddings"])
        beta_fast, beta_slow = float(y.get("beta_fast", 32)), float(y.get("beta_slow", 1))

        def corr(n_rot):
            return d_r * math.log(l_orig / (2 * math.pi * n_rot)) / (2 * math.log(cfg.theta))

        low = max(math.floor(corr(beta_fast)), 0)
        high = min(math.ceil(corr(beta_slow)), d_r - 1)
        if low == high:
            high += 0.001
        ramp = np.clip((i - low) / (high - low), 0.0, 1.0)
        keep = 1.0 - ramp
        f = f * keep + (f / s) * (1.0 - keep)
        # Softmax scale (§4.5): τ·m² with m from mscale_all_dim (HF; 0 or absent = no change).
        mscale, mscale_all = y.get("mscale"), y.get("mscale_all_dim")
        if mscale_all:
            tau *= yarn_mscale(s, mscale_all) ** 2
        # HF's attention_factor multiplies cos and sin: mscale(s, mscale)/mscale(s, mscale_all_dim), or
        # mscale(s, 1) when either is 0/absent. It is 1 whenever mscale == mscale_all_dim (V3 and our golden data).
        if mscale and mscale_all:
            factor = yarn_mscale(s, mscale) / yarn_mscale(s, mscale_all)
        else:
            factor = yarn_mscale(s, 1.0)
    return f, factor, tau


def apply_rope(x, positions, cfg, cache):
    """Rotates the last dim (d_r) of x [..., T, d_r] (T matches positions). rope_interleave: pairs (2i, 2i+1) (§4.2);
    otherwise rotate-half pairs (j, j + d_r/2) on the stored layout (§4.3)."""
    f, factor, _ = cache
    ang = torch.tensor(np.outer(np.asarray(positions, dtype=np.float64), f), dtype=x.dtype)  # [T, d_r/2]
    cos, sin = torch.cos(ang) * factor, torch.sin(ang) * factor
    if cfg.interleave:
        a, b = x[..., 0::2], x[..., 1::2]
        out = torch.empty_like(x)
        out[..., 0::2] = a * cos - b * sin
        out[..., 1::2] = a * sin + b * cos
    else:
        h = cfg.d_r // 2
        a, b = x[..., :h], x[..., h:]
        out = torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)
    return out


# ----------------------------------------------------------------------------------------------------------------------
# The model (§2-§8, §10).

def rms_norm(x, w, eps):
    """y = w ⊙ x · (mean x² + eps)^(-1/2) (§3)."""
    return w * (x * torch.rsqrt((x * x).mean(dim=-1, keepdim=True) + eps))


def silu(a):
    return a * torch.sigmoid(a)


class Model:
    def __init__(self, model_dir, dtype=torch.float32):
        self.cfg = Config(os.path.join(model_dir, "config.json"))
        self.dtype = dtype
        self.W = {k: torch.tensor(v, dtype=dtype) for k, v in load_weights(model_dir).items()}
        self.rope = rope_frequencies(self.cfg)
        self.tau = self.rope[2]
        self.routing = []  # per (layer, call): statistics of §7.3

    def w(self, name):
        return self.W[name]

    # --- MLA (§5) ------------------------------------------------------------------------------------------------

    def mla_project(self, p, x, positions):
        """x [T, D] → q_nope [H, T, d_n], q_pe [H, T, d_r] (rotated), c_hat [T, r_kv] (normalised), k_pe [T, d_r]
        (rotated, shared by all heads)."""
        cfg = self.cfg
        T = x.shape[0]
        if cfg.r_q:
            c_q = rms_norm(x @ self.w(p + "self_attn.q_a_proj.weight").T, self.w(p + "self_attn.q_a_layernorm.weight"), cfg.eps)
            q = c_q @ self.w(p + "self_attn.q_b_proj.weight").T  # [T, H*d_qk]
        else:
            q = x @ self.w(p + "self_attn.q_proj.weight").T
        q = q.view(T, cfg.H, cfg.d_qk).transpose(0, 1)  # [H, T, d_qk], head-major rows (§5.1)
        q_nope, q_pe = q[..., :cfg.d_n], apply_rope(q[..., cfg.d_n:], positions, cfg, self.rope)
        a = x @ self.w(p + "self_attn.kv_a_proj_with_mqa.weight").T  # [T, r_kv + d_r]
        c_hat = rms_norm(a[:, :cfg.r_kv], self.w(p + "self_attn.kv_a_layernorm.weight"), cfg.eps)
        k_pe = apply_rope(a[:, cfg.r_kv:], positions, cfg, self.rope)  # not normalised
        return q_nope, q_pe, c_hat, k_pe

    def kv_b_split(self, p):
        """W_kvb viewed as [H, d_n + d_v, r_kv]: U [H, d_n, r_kv] (k_nope rows), Wv [H, d_v, r_kv] (v rows)."""
        cfg = self.cfg
        wkvb = self.w(p + "self_attn.kv_b_proj.weight").view(cfg.H, cfg.d_n + cfg.d_v, cfg.r_kv)
        return wkvb[:, :cfg.d_n], wkvb[:, cfg.d_n:]

    def mla(self, p, x):
        """Full causal attention over x [T, D] at positions 0..T-1, naive form (§5.2)."""
        cfg = self.cfg
        T = x.shape[0]
        q_nope, q_pe, c_hat, k_pe = self.mla_project(p, x, range(T))
        U, Wv = self.kv_b_split(p)
        k_nope = torch.einsum("hnr,tr->htn", U, c_hat)  # [H, T, d_n]
        v = torch.einsum("hvr,tr->htv", Wv, c_hat)  # [H, T, d_v]
        s = self.tau * (q_nope @ k_nope.transpose(1, 2) + q_pe @ k_pe.T)  # [H, T, T]
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        s = s.masked_fill(mask, float("-inf"))
        o = torch.softmax(s, dim=-1) @ v  # [H, T, d_v]
        return o.transpose(0, 1).reshape(T, cfg.H * cfg.d_v) @ self.w(p + "self_attn.o_proj.weight").T

    def mla_step(self, p, x, pos, cache, mode):
        """One token x [1, D] at position pos; cache is a dict that grows by one row per call (§5.3)."""
        cfg = self.cfg
        q_nope, q_pe, c_hat, k_pe = self.mla_project(p, x, [pos])  # [H,1,d_n], [H,1,d_r], [1,r_kv], [1,d_r]
        U, Wv = self.kv_b_split(p)
        if mode == "naive":
            # Cache full per-head K [S, H, d_qk] and V [S, H, d_v].
            k_nope = torch.einsum("hnr,tr->thn", U, c_hat)
            k = torch.cat([k_nope, k_pe.unsqueeze(1).expand(1, cfg.H, cfg.d_r)], dim=-1)
            v = torch.einsum("hvr,tr->thv", Wv, c_hat)
            cache["k"] = k if "k" not in cache else torch.cat([cache["k"], k])
            cache["v"] = v if "v" not in cache else torch.cat([cache["v"], v])
            q = torch.cat([q_nope, q_pe], dim=-1)  # [H, 1, d_qk]
            s = self.tau * torch.einsum("hqd,shd->hqs", q, cache["k"])  # [H, 1, S]
            o = torch.einsum("hqs,shv->hqv", torch.softmax(s, dim=-1), cache["v"])  # [H, 1, d_v]
        else:
            # Cache only ĉ [S, r_kv] and rotated k_pe [S, d_r]; absorb U into the query, W_v into the output.
            cache["c"] = c_hat if "c" not in cache else torch.cat([cache["c"], c_hat])
            cache["pe"] = k_pe if "pe" not in cache else torch.cat([cache["pe"], k_pe])
            q_abs = torch.einsum("hqn,hnr->hqr", q_nope, U)  # q̃_h = U_hᵀ q_nope_h, [H, 1, r_kv]
            s = self.tau * (q_abs @ cache["c"].T + q_pe @ cache["pe"].T)  # [H, 1, S]
            o_lat = torch.softmax(s, dim=-1) @ cache["c"]  # [H, 1, r_kv]
            o = torch.einsum("hqr,hvr->hqv", o_lat, Wv)  # [H, 1, d_v]
        return o.transpose(0, 1).reshape(1, cfg.H * cfg.d_v) @ self.w(p + "self_attn.o_proj.weight").T

    # --- FFN and MoE (§6, §7) ------------------------------------------------------------------------------------

    def mlp(self, p, x):
        """SwiGLU: W_2(silu(W_1 x) ⊙ W_3 x) with gate_proj = W_1, up_proj = W_3, down_proj = W_2 (§6)."""
        return (silu(x @ self.w(p + "gate_proj.weight").T) * (x @ self.w(p + "up_proj.weight").T)) @ self.w(p + "down_proj.weight").T

    def route(self, s_biased):
        """Group-limited top-K (§7.3) over biased scores [T, E] → selected expert ids [T, K] and the groups kept."""
        cfg = self.cfg
        T = s_biased.shape[0]
        masked = s_biased
        keep = None
        if cfg.G > 1:
            grouped = s_biased.view(T, cfg.G, cfg.E // cfg.G)
            group_score = grouped.topk(2, dim=-1).values.sum(dim=-1)  # [T, G]: sum of the top-2 biased scores
            keep = group_score.topk(cfg.Gk, dim=-1).indices  # [T, Gk]
            group_mask = torch.ones(T, cfg.G, dtype=torch.bool)
            group_mask.scatter_(1, keep, False)  # True = discarded group
            expert_mask = group_mask.unsqueeze(-1).expand(T, cfg.G, cfg.E // cfg.G).reshape(T, cfg.E)
            masked = s_biased.masked_fill(expert_mask, float("-inf"))  # −∞, not HF's 0.0 (§7.3 AMBIGUITY)
        return masked.topk(cfg.K, dim=-1).indices, masked, keep

    def moe(self, p, x, layer):
        cfg = self.cfg
        T = x.shape[0]
        s = torch.sigmoid(x @ self.w(p + "mlp.gate.weight").T)  # [T, E] (§7.1)
        bias = self.w(p + "mlp.gate.e_score_correction_bias")
        idx, masked, keep = self.route(s + bias)  # the bias is for selection only (§7.2)
        w = s.gather(1, idx)  # [T, K], unbiased
        if cfg.norm_topk:
            w = w / w.sum(dim=-1, keepdim=True)
        w = w * cfg.R  # (§7.4)
        self.record_routing(layer, s, bias, idx, masked, keep)
        y = torch.zeros_like(x)
        for e in range(cfg.E):
            rows, slot = (idx == e).nonzero(as_tuple=True)  # tokens routed to e, gathered (one matmul per expert)
            if rows.numel():
                y[rows] += w[rows, slot].unsqueeze(-1) * self.mlp(f"{p}mlp.experts.{e}.", x[rows])
        if cfg.Ns:
            y = y + self.mlp(p + "mlp.shared_experts.", x)
        return y

    def record_routing(self, layer, s, bias, idx, masked, keep):
        """Statistics that show the golden data exercises routing: tokens whose unrestricted top-K would have used a
        discarded group, tokens whose selection the bias changed, and the smallest decision margins."""
        cfg = self.cfg
        biased = s + bias
        free = biased.topk(cfg.K, dim=-1).indices
        chosen = torch.sort(idx, dim=-1).values
        group_changed = int((torch.sort(free, dim=-1).values != chosen).any(dim=-1).sum())
        no_bias, _, _ = self.route(s)
        bias_changed = int((torch.sort(no_bias, dim=-1).values != chosen).any(dim=-1).sum())
        top = masked.topk(min(cfg.K + 1, cfg.E), dim=-1).values
        expert_margin = float((top[:, cfg.K - 1] - top[:, cfg.K]).min()) if cfg.K < cfg.E else float("inf")
        group_margin = float("inf")
        if cfg.G > 1 and cfg.Gk < cfg.G:
            gs = biased.view(-1, cfg.G, cfg.E // cfg.G).topk(2, dim=-1).values.sum(dim=-1).sort(dim=-1, descending=True).values
            group_margin = float((gs[:, cfg.Gk - 1] - gs[:, cfg.Gk]).min())
        self.routing.append({"layer": layer, "tokens": int(s.shape[0]),
                             "discarded_groups": int(s.shape[0]) * (cfg.G - cfg.Gk) if cfg.G > 1 else 0,
                             "tokens_changed_by_group_limit": group_changed, "tokens_changed_by_bias": bias_changed,
                             "min_expert_margin": expert_margin, "min_group_margin": group_margin})

    def ffn(self, layer, x):
        p = f"model.layers.{layer}."
        return self.mlp(p + "mlp.", x) if layer < self.cfg.Ld else self.moe(p, x, layer)

    # --- Blocks, model, MTP (§8, §10) ------------------------------------------------------------------------------

    def block(self, layer, h):
        p = f"model.layers.{layer}."
        h = h + self.mla(p, rms_norm(h, self.w(p + "input_layernorm.weight"), self.cfg.eps))
        return h + self.ffn(layer, rms_norm(h, self.w(p + "post_attention_layernorm.weight"), self.cfg.eps))

    def block_step(self, layer, h, pos, cache, mode):
        p = f"model.layers.{layer}."
        h = h + self.mla_step(p, rms_norm(h, self.w(p + "input_layernorm.weight"), self.cfg.eps), pos, cache, mode)
        return h + self.ffn(layer, rms_norm(h, self.w(p + "post_attention_layernorm.weight"), self.cfg.eps))

    def head(self, z):
        return z @ self.w("lm_head.weight").T

    def mtp_input(self, tokens, h0):
        """h' = eh_proj [enorm(Emb(t_{i+1})); hnorm(h⁰_i)] for i < T-1, embedding first (§10.3)."""
        cfg = self.cfg
        p = f"model.layers.{cfg.L}."
        e = rms_norm(self.w("model.embed_tokens.weight")[torch.tensor(tokens[1:])], self.w(p + "enorm.weight"), cfg.eps)
        hh = rms_norm(h0[:-1], self.w(p + "hnorm.weight"), cfg.eps)
        return torch.cat([e, hh], dim=-1) @ self.w(p + "eh_proj.weight").T

    def mtp_output(self, h):
        p = f"model.layers.{self.cfg.L}."
        return self.head(rms_norm(h, self.w(p + "shared_head.norm.weight"), self.cfg.eps))

    def forward(self, tokens):
        """Prefill over the whole sequence: logits [T, V], mtp_logits [T-1, V] or None."""
        cfg = self.cfg
        h = self.w("model.embed_tokens.weight")[torch.tensor(tokens)]  # [T, D], no scaling (§2)
        for layer in range(cfg.L):
            h = self.block(layer, h)
        h0 = rms_norm(h, self.w("model.norm.weight"), cfg.eps)  # MTP takes the post-final-norm output (§10.3)
        logits = self.head(h0)
        if not cfg.mtp or len(tokens) < 2:
            return logits, None
        return logits, self.mtp_output(self.block(cfg.L, self.mtp_input(tokens, h0)))

    def decode(self, tokens, mode):
        """Token by token with a KV cache per layer (naive or absorbed); the MTP block has its own cache."""
        cfg = self.cfg
        caches = [dict() for _ in range(cfg.L + 1)]
        rows = []
        for pos, t in enumerate(tokens):
            h = self.w("model.embed_tokens.weight")[torch.tensor([t])]
            for layer in range(cfg.L):
                h = self.block_step(layer, h, pos, caches[layer], mode)
            rows.append(rms_norm(h, self.w("model.norm.weight"), cfg.eps))
        h0 = torch.cat(rows)
        logits = self.head(h0)
        if not cfg.mtp or len(tokens) < 2:
            return logits, None
        x = self.mtp_input(tokens, h0)
        out = [self.block_step(cfg.L, x[i:i + 1], i, caches[cfg.L], mode) for i in range(len(tokens) - 1)]
        return logits, self.mtp_output(torch.cat(out))


def self_test():
    """Checks the reference against the numbers the reference document states (§4.3-4.5, §14.2, §17)."""
    from types import SimpleNamespace
    v3 = SimpleNamespace(d_r=64, d_qk=192, theta=10000.0, interleave=True,
                         yarn={"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
                               "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0})
    f, factor, tau = rope_frequencies(v3)
    base = 10000.0 ** (-2.0 * np.arange(32) / 64)
    ratio = base / f
    assert abs(tau - 0.1352338) < 1e-6, tau
    assert factor == 1.0
    assert np.allclose(ratio[:11], 1.0) and np.allclose(ratio[23:], 40.0), ratio
    assert abs(ratio[16] - 1.818) < 1e-3 and abs(ratio[22] - 10.0) < 1e-9, ratio
    # Interleaved RoPE equals HF rotate-half after the evens-then-odds permutation (§4.3).
    torch.manual_seed(0)
    d_r = 16
    cfg = SimpleNamespace(d_r=d_r, d_qk=48, theta=10000.0, interleave=True, yarn=None)
    cache = rope_frequencies(cfg)
    x = torch.randn(5, d_r, dtype=torch.float64)
    perm = list(range(0, d_r, 2)) + list(range(1, d_r, 2))
    inter = apply_rope(x, range(5), cfg, cache)
    cfg.interleave = False
    half = apply_rope(x[:, perm], range(5), cfg, cache)
    assert torch.allclose(inter[:, perm], half, atol=1e-14)
    assert not torch.allclose(apply_rope(x, range(5), cfg, cache), inter, atol=1e-3)
    # float8 e4m3fn (§14.2).
    assert _FP8[0x7E] == 448 and _FP8[0x01] == 2.0 ** -9 and _FP8[0x38] == 1.0 and np.isnan(_FP8[0xFF])
    assert np.nanmax(_FP8) == 448 and np.isnan(_FP8).sum() == 2
    print("self-test passed: YaRN V3 numbers (low 10, high 23, tau 0.1352338), interleaved == permuted rotate-half, fp8 table")


def training_loss(model, sequences, mtp_weight):
    """The training loss of TrainingModel (C#): mean next-token cross-entropy over the B·(T−1) positions, plus
    W × the MTP cross-entropy (position i predicts t_{i+2}, reference §10.2) averaged over its B·(T−2) positions."""
    main, main_n, mtp, mtp_n = 0, 0, 0, 0
    for tokens in sequences:
        logits, mtp_logits = model.forward(tokens)
        target = torch.tensor(tokens)
        main = main + torch.nn.functional.cross_entropy(logits[:-1], target[1:], reduction="sum")
        main_n += len(tokens) - 1
        if mtp_weight != 0 and len(tokens) > 2:
            mtp = mtp + torch.nn.functional.cross_entropy(mtp_logits[:-1], target[2:], reduction="sum")
            mtp_n += len(tokens) - 2
    main = main / main_n
    mtp = mtp / mtp_n if mtp_n else torch.zeros((), dtype=model.dtype)
    return main + mtp_weight * mtp, main, mtp


def grads_main(args):
    """--grads: loss and every parameter's gradient by autograd, for sequences 'a,b,c;d,e,f' (equal lengths)."""
    sequences = [[int(t) for t in s.split(",") if t.strip()] for s in args.tokens.split(";") if s.strip()]
    model = Model(args.model, torch.float64 if args.fp64 else torch.float32)
    if model.cfg.mtp == 0 and args.mtp_weight != 0:
        sys.exit("--mtp-weight: the model has no MTP module")
    for t in model.W.values():
        t.requires_grad_(True)
    loss, main, mtp = training_loss(model, sequences, args.mtp_weight)
    loss.backward()
    out = {"loss": np.array([float(loss)], dtype=np.float32), "main_loss": np.array([float(main)], dtype=np.float32),
           "mtp_loss": np.array([float(mtp)], dtype=np.float32)}
    for name, t in model.W.items():
        out[name] = (t.grad if t.grad is not None else torch.zeros_like(t)).detach().float().numpy()
    write_safetensors(args.out, out)
    moe = model.routing
    print(json.dumps({"loss": float(loss), "main_loss": float(main), "mtp_loss": float(mtp), "sequences": len(sequences),
                      "min_expert_margin": min([r["min_expert_margin"] for r in moe], default=float("inf")),
                      "min_group_margin": min([r["min_group_margin"] for r in moe], default=float("inf"))}))


def main():
    if "--self-test" in sys.argv:
        self_test()
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model directory (config.json + safetensors)")
    parser.add_argument("--tokens", required=True, help="comma-separated token ids")
    parser.add_argument("--out", required=True, help="output safetensors file")
    parser.add_argument("--decode", choices=["naive", "absorb"], help="token-by-token decode instead of prefill")
    parser.add_argument("--fp64", action="store_true", help="compute in float64 (output still F32)")
    parser.add_argument("--check", action="store_true", help="also run both decode paths and fp64; report max differences")
    parser.add_argument("--grads", action="store_true", help="write loss and every parameter's gradient (autograd); --tokens may hold ';'-separated sequences")
    parser.add_argument("--mtp-weight", type=float, default=0.0, help="with --grads: W, the weight of the MTP loss")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("REFERENCE_THREADS", "2")))
    if args.grads:
        grads_main(args)
        return

    tokens = [int(t) for t in args.tokens.split(",") if t.strip()]
    model = Model(args.model, torch.float64 if args.fp64 else torch.float32)
    if not tokens or min(tokens) < 0 or max(tokens) >= model.cfg.V:
        sys.exit(f"--tokens: ids must lie in [0, {model.cfg.V})")
    with torch.no_grad():
        logits, mtp = model.forward(tokens) if args.decode is None else model.decode(tokens, args.decode)
        routing = list(model.routing)
        report = {"tokens": len(tokens), "max_abs_logit": float(logits.abs().max()),
                  "logit_std": float(logits.std()) if logits.numel() > 1 else 0.0, "tau": model.tau}
        if mtp is not None:
            report["max_abs_mtp_logit"] = float(mtp.abs().max())
        if args.check:
            def diff(a, b):
                return 0.0 if a is None else float((a.double() - b.double()).abs().max())
            for mode in ("naive", "absorb"):
                l2, m2 = model.decode(tokens, mode)
                report[f"max_diff_decode_{mode}"] = max(diff(logits, l2), diff(mtp, m2) if mtp is not None else 0.0)
            other = Model(args.model, torch.float32 if args.fp64 else torch.float64)
            l3, m3 = other.forward(tokens)
            report["max_diff_fp32_fp64"] = max(diff(logits, l3), diff(mtp, m3) if mtp is not None else 0.0)
    out = {"logits": logits.numpy()}
    if mtp is not None:
        out["mtp_logits"] = mtp.numpy()
    write_safetensors(args.out, out)
    moe = [r for r in routing]
    report["moe_calls"] = len(moe)
    report["discarded_groups"] = sum(r["discarded_groups"] for r in moe)
    report["tokens_changed_by_group_limit"] = sum(r["tokens_changed_by_group_limit"] for r in moe)
    report["tokens_changed_by_bias"] = sum(r["tokens_changed_by_bias"] for r in moe)
    report["min_expert_margin"] = min([r["min_expert_margin"] for r in moe], default=float("inf"))
    report["min_group_margin"] = min([r["min_group_margin"] for r in moe], default=float("inf"))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
