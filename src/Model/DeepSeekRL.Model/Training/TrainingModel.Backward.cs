using System.Numerics.Tensors;
using DeepSeekRL.Model.Kernels;

namespace DeepSeekRL.Model.Training;

// The backward pass of TrainingModel (reference §3, §5.5, §6, §7.6, §10): each layer's backward mirrors its forward,
// reads the forward's cache and accumulates (+=) into the gradient block. Matrix products go to BLAS:
// dX = dY·W and dW += dYᵀ·X.

/// <content>Backward.</content>
public sealed unsafe partial class TrainingModel
{
    /// <summary>Back-propagates the loss of the last <see cref="Forward"/>, accumulating into <paramref name="grads"/>.</summary>
    /// <param name="grads">The gradients (same layout as the weights); not cleared here.</param>
    public void Backward(Gradients grads)
    {
        ArgumentNullException.ThrowIfNull(grads);
        if (_blocks.Length != _c.NumHiddenLayers || _tokens.Length == 0)
        {
            throw new InvalidOperationException("Backward needs a Forward first");
        }

        BackwardFrom(grads, CrossEntropyBackward(_probs, _b * _t, _t, 1, _mainCount, 1f), includeMtp: true);
    }

    /// <summary>
    /// Back-propagates a gradient given on the main logits of the last <see cref="Forward"/> (for example of a policy
    /// loss built from <see cref="Logits"/>), accumulating into <paramref name="grads"/>. The forward's own loss is
    /// ignored; with <paramref name="includeMtp"/> the MTP loss (weight W of the forward) is added.
    /// </summary>
    /// <param name="grads">The gradients; not cleared here.</param>
    /// <param name="dLogits">(B·T, V) dLoss/dlogits.</param>
    /// <param name="includeMtp">Whether to add W × the MTP loss's gradient.</param>
    public void BackwardFromLogits(Gradients grads, ReadOnlySpan<float> dLogits, bool includeMtp = false)
    {
        ArgumentNullException.ThrowIfNull(grads);
        if (dLogits.Length != _b * _t * _v || _tokens.Length == 0)
        {
            throw new ArgumentException($"dLogits must be (B·T, V) = {_b * _t * _v} values of the last Forward", nameof(dLogits));
        }

        var copy = AllocUncleared(dLogits.Length);
        dLogits.CopyTo(copy);
        BackwardFrom(grads, copy, includeMtp);
    }

    private void BackwardFrom(Gradients grads, float[] dlogits, bool includeMtp)
    {
        int b = _b, t = _t, n = b * t;
        fixed (float* g = grads.Data)
        {
            // dz (N, D) from the head; the MTP module adds its share through hnorm.
            var dz = AllocUncleared(n * _d);
            LinearBackward(dz, dlogits, _z, _head, g, n, _d, _v, overwrite: true);

            if (includeMtp && _mtp is { } m && _mtpWeight != 0)
            {
                MtpBackward(m, g, dz);
            }

            var dh = Alloc(n * _d);
            RmsBackward(_hL, _d, _finalNorm, _d, _rFinal, dz, _d, dh, _d, g, n);
            for (var l = _c.NumHiddenLayers - 1; l >= 0; l--)
            {
                dh = BlockBackward(_layers[l], _blocks[l], dh, g);
            }

            EmbeddingBackward(_tokens, dh, g);
        }
    }

    /// <summary>dlogits = scale·mask·(softmax − onehot) on rows that have a target at +<paramref name="ahead"/> (softmax kept by the forward).</summary>
    private float[] CrossEntropyBackward(float[] probs, int n, int t, int ahead, double count, float weight)
    {
        var rowsPerSeq = n / _b;
        var dl = AllocUncleared(n * _v); // every row written below: a gradient, or zeros where there is no target
        if (count <= 0)
        {
            dl.AsSpan(0, n * _v).Clear();
            return dl;
        }

        var scale = (float)(weight / count);
        var mask = _mask;
        var tokens = _tokens;
        ForRows(n, (first, end) =>
        {
            for (var r = first; r < end; r++)
            {
                int bi = r / rowsPerSeq, i = r % rowsPerSeq;
                var row = dl.AsSpan(r * _v, _v);
                if (i + ahead >= t || mask[bi * t + i + ahead] == 0)
                {
                    row.Clear();
                    continue;
                }

                var w = mask[bi * t + i + ahead];
                probs.AsSpan(r * _v, _v).CopyTo(row);
                row[tokens[bi * t + i + ahead]] -= 1f;
                TensorPrimitives.Multiply(row, scale * w, row);
            }
        });

        return dl;
    }

    /// <summary>MTP backward (reference §10): head, shared_head.norm, block, eh_proj, enorm → embedding, hnorm → dz.</summary>
    private void MtpBackward(MtpCache m, float* g, float[] dz)
    {
        int t = _t, tm = t - 1, n = _b * tm;
        var lo = _layers[_c.NumHiddenLayers];
        var dlogits = CrossEntropyBackward(m.Probs, n, t, 2, m.Count, _mtpWeight);
        var dZ = AllocUncleared(n * _d);
        LinearBackward(dZ, dlogits, m.Z, _head, g, n, _d, _v, overwrite: true);
        var dOut = Alloc(n * _d);
        RmsBackward(m.Out, _d, lo.SharedHeadNorm, _d, m.ROut, dZ, _d, dOut, _d, g, n);
        var dX = BlockBackward(lo, m.Block, dOut, g);
        var dCat = AllocUncleared(n * 2 * _d);
        LinearBackward(dCat, dX, m.Cat, lo.EhProj, g, n, 2 * _d, _d, overwrite: true);
        var dEmb = Alloc(n * _d);
        var dHid = Alloc(n * _d);
        RmsBackward(m.Emb, _d, lo.ENorm, _d, m.REmb, dCat, 2 * _d, dEmb, _d, g, n);
        RmsBackward(m.Hid, _d, lo.HNorm, _d, m.RHid, dCat.AsSpan(_d), 2 * _d, dHid, _d, g, n);
        var next = new int[n];
        for (var bi = 0; bi < _b; bi++)
        {
            for (var i = 0; i < tm; i++)
            {
                next[bi * tm + i] = _tokens[bi * t + i + 1];
                TensorPrimitives.Add(dz.AsSpan((bi * t + i) * _d, _d), dHid.AsSpan((bi * tm + i) * _d, _d), dz.AsSpan((bi * t + i) * _d, _d));
            }
        }

        EmbeddingBackward(next, dEmb, g);
    }

    /// <summary>dE[token] += dh (reference §2).</summary>
    private void EmbeddingBackward(int[] tokens, float[] dh, float* g)
    {
        for (var i = 0; i < tokens.Length; i++)
        {
            var row = new Span<float>(g + _embed + (long)tokens[i] * _d, _d);
            TensorPrimitives.Add(row, dh.AsSpan(i * _d, _d), row);
        }
    }

    /// <summary>Backward of one block: returns dh_in (N, D) from dh_out (N, D).</summary>
    private float[] BlockBackward(LayerOffsets lo, BlockCache c, float[] dOut, float* g)
    {
        var n = c.N;
        var mark = _live.Count;

        // out = h1 + FFN(ffn_norm(h1)): dh1 = dout + ffn_norm_backward(FFN_backward(dout)).
        var dxf = Alloc(n * _d);
        if (lo.IsMoe)
        {
            MoeBackward(lo, c, dOut, dxf, g);
        }
        else
        {
            MlpBackward(c.Xf, lo.DenseGateUp, lo.DenseDown, _inter, n, c.Gu, c.Hid, dOut, dxf, g);
        }

        var dh1 = AllocUncleared(n * _d);
        dOut.AsSpan(0, n * _d).CopyTo(dh1);
        RmsBackward(c.H1, _d, lo.FfnNorm, _d, c.RF, dxf, _d, dh1, _d, g, n);

        // h1 = h + MLA(attn_norm(h)).
        var dxn = Alloc(n * _d);
        AttentionBackward(lo, c, dh1, dxn, g);
        var dh = dh1; // the residual passes dh1 through; attn_norm adds its part
        RmsBackward(c.HIn, _d, lo.AttnNorm, _d, c.RA, dxn, _d, dh, _d, g, n);

        // This block's scratch and the gradient it was given are dead: the block below reuses them, so a backward
        // holds one block's scratch at a time (the forward's activations stay, for another backward of the same step).
        Release(mark, _live.Count, keep: dh);
        Release(dOut);

        return dh;
    }

    /// <summary>MLA backward, naive form (reference §5.5). du (N, D) → dxn (N, D) +=.</summary>
    private void AttentionBackward(LayerOffsets lo, BlockCache c, float[] du, float[] dxn, float* g)
    {
        int n = c.N, t = c.T, hq = _h * _dqk, hv = _h * _dv, wa = _rkv + _dr, dnv = _dn + _dv;
        var tau = _rope.SoftmaxScale;

        // u = o W_oᵀ.
        var dO = AllocUncleared(n * hv);
        LinearBackward(dO, du, c.O, lo.Wo, g, n, hv, _d, overwrite: true);

        // Every (sequence, head) pair writes its own block of dQ, dK and dV once: together they cover them.
        var dQ = AllocUncleared(n * hq);
        var dK = AllocUncleared(n * hq);
        var dV = AllocUncleared(n * hv);
        var dS = AllocUncleared(c.B * _h * t * t); // (B, H, T, T): one scratch per (sequence, head), so pairs run in parallel; every row written
        ForEachSequenceHead(c.B, (bi, h) =>
        {
            float* q = Ptr(c.Q), k = Ptr(c.K), v = Ptr(c.V), pdo = Ptr(dO), pdq = Ptr(dQ), pdk = Ptr(dK), pdv = Ptr(dV);
            var p = Ptr(c.P) + (long)(bi * _h + h) * t * t;
            var ds = Ptr(dS) + (long)(bi * _h + h) * t * t;
            long qo = (long)bi * t * hq + h * _dqk, vo = (long)bi * t * hv + h * _dv;

            // dV_h = Pᵀ dO_h; dP = dO_h V_hᵀ; dS = P ⊙ (dP − rowsum(dP ⊙ P)); dQ_h = τ dS K_h; dK_h = τ dSᵀ Q_h.
            Blas.GemmTN(t, _dv, t, p, t, pdo + vo, hv, pdv + vo, hv);
            Blas.GemmNT(t, t, _dv, pdo + vo, hv, v + vo, hv, ds, t);
            for (var i = 0; i < t; i++)
            {
                var pr = new ReadOnlySpan<float>(p + (long)i * t, i + 1);
                var dr = new Span<float>(ds + (long)i * t, t);
                var dot = TensorPrimitives.Dot(pr, dr[..(i + 1)]);
                for (var j = 0; j <= i; j++)
                {
                    dr[j] = pr[j] * (dr[j] - dot);
                }

                dr[(i + 1)..].Clear();
            }

            Blas.GemmNN(t, _dqk, t, ds, t, k + qo, hq, pdq + qo, hq, alpha: tau);
            Blas.GemmTN(t, _dqk, t, ds, t, q + qo, hq, pdk + qo, hq, alpha: tau);
        });

        // K_h = [k_nope_h | k_pe], V_h from kvb: gather dkvb (N, H·(d_n+d_v)) and dk_pe summed over heads (shared by
        // all heads); RoPE backward on dk_pe and dq_pe.
        var dKvb = AllocUncleared(n * _h * dnv); // every head's nope and value part copied below
        var dKva = Alloc(n * wa);
        for (var r = 0; r < n; r++)
        {
            var pos = r % t;
            var dkpe = dKva.AsSpan(r * wa + _rkv, _dr);
            for (var h = 0; h < _h; h++)
            {
                dK.AsSpan(r * hq + h * _dqk, _dn).CopyTo(dKvb.AsSpan(r * _h * dnv + h * dnv, _dn));
                dV.AsSpan(r * hv + h * _dv, _dv).CopyTo(dKvb.AsSpan(r * _h * dnv + h * dnv + _dn, _dv));
                TensorPrimitives.Add(dkpe, dK.AsSpan(r * hq + h * _dqk + _dn, _dr), dkpe);
                RopeBackward(dQ.AsSpan(r * hq + h * _dqk + _dn, _dr), pos);
            }

            RopeBackward(dkpe, pos);
        }

        // kvb = ĉ W_kvbᵀ; ĉ = RMSNorm_kv(c_kv); a = x W_kvaᵀ.
        var dChat = AllocUncleared(n * _rkv);
        LinearBackward(dChat, dKvb, c.Chat, lo.Wkvb, g, n, _rkv, _h * dnv, overwrite: true);
        RmsBackward(c.Kva, wa, lo.KvNorm, _rkv, c.RKv, dChat, _rkv, dKva, wa, g, n);
        LinearBackward(dxn, dKva, c.Xn, lo.Wkva, g, n, _d, wa);

        if (_rq > 0)
        {
            var dCq = AllocUncleared(n * _rq);
            LinearBackward(dCq, dQ, c.Cq, lo.Wqb, g, n, _rq, hq, overwrite: true);
            var dQa = Alloc(n * _rq);
            RmsBackward(c.Qa, _rq, lo.QNorm, _rq, c.RQ, dCq, _rq, dQa, _rq, g, n);
            LinearBackward(dxn, dQa, c.Xn, lo.Wqa, g, n, _d, _rq);
        }
        else
        {
            LinearBackward(dxn, dQ, c.Xn, lo.Wq, g, n, _d, hq);
        }
    }

    /// <summary>
    /// MoE backward (reference §7.6): experts and the shared expert as SwiGLUs (each routed one scaled by w_e), the
    /// gate through w_e = R s_e / Σ_S s (selection constant, bias without gradient). dy (N, D) → dxf (N, D) +=.
    /// </summary>
    private void MoeBackward(LayerOffsets lo, BlockCache c, float[] dy, float[] dxf, float* g)
    {
        var n = c.N;
        if (_shared > 0)
        {
            MlpBackward(c.Xf, lo.SharedGateUp, lo.SharedDown, _shared, n, c.Gu, c.Hid, dy, dxf, g);
        }

        // dw_a = dy_row · Y_a; dY_a = w_a dy_row (by assignment).
        var dw = AllocUncleared(n * _k); // Rows is a permutation of the N·K assignments: every entry written
        var dYe = AllocUncleared(n * _k * _d);
        for (var a = 0; a < n * _k; a++)
        {
            var src = c.Rows[a];
            var dyRow = dy.AsSpan(src / _k * _d, _d);
            dw[src] = TensorPrimitives.Dot(dyRow, c.EY.AsSpan(a * _d, _d));
            TensorPrimitives.Multiply(dyRow, c.W[src], dYe.AsSpan(a * _d, _d));
        }

        var dHid = AllocUncleared(n * _k * _im); // the experts' rows cover all N·K assignments
        var dGu = AllocUncleared(n * _k * 2 * _im);
        var dXg = AllocUncleared(n * _k * _d);
        var grads = (nint)g;
        ForEachExpert(e =>
        {
            int s0 = c.Start[e], ne = c.Start[e + 1] - s0;
            if (ne == 0)
            {
                return;
            }

            var gw = (float*)grads;
            var gu = lo.Experts + (long)e * 3 * _im * _d;
            var down = gu + 2L * _im * _d;
            fixed (float* pdy = dYe, pdh = dHid, pdg = dGu, pdx = dXg, hid = c.EHid, x = c.Xg)
            {
                // Y = Hid W_downᵀ; Hid = silu(G) ⊙ U; GU = X W_guᵀ. Each expert writes its own rows and its own weights' gradient.
                Blas.GemmTN(_d, _im, ne, pdy + (long)s0 * _d, _d, hid + (long)s0 * _im, _im, gw + down, _im, beta: 1);
                Blas.GemmNN(ne, _im, _d, pdy + (long)s0 * _d, _d, _w + down, _im, pdh + (long)s0 * _im, _im);
                SwiGluBackward(c.EGu.AsSpan(s0 * 2 * _im, ne * 2 * _im), dHid.AsSpan(s0 * _im, ne * _im), dGu.AsSpan(s0 * 2 * _im, ne * 2 * _im), _im, ne);
                Blas.GemmTN(2 * _im, _d, ne, pdg + (long)s0 * 2 * _im, 2 * _im, x + (long)s0 * _d, _d, gw + gu, _d, beta: 1);
                Blas.GemmNN(ne, _d, 2 * _im, pdg + (long)s0 * 2 * _im, 2 * _im, _w + gu, _d, pdx + (long)s0 * _d, _d);
            }
        });

        for (var a = 0; a < n * _k; a++)
        {
            var row = dxf.AsSpan(c.Rows[a] / _k * _d, _d);
            TensorPrimitives.Add(row, dXg.AsSpan(a * _d, _d), row);
        }

        // Gate: w_m = R s_m / Σ_S s ⇒ ds_m = (R/Σ)(dw_m − Σ_k dw_k w_k / R); dl_m = ds_m s_m (1 − s_m) (§7.6).
        var dl = Alloc(n * _e);
        var scale = (float)_c.RoutedScalingFactor;
        for (var r = 0; r < n; r++)
        {
            float acc = 0;
            for (var j = 0; j < _k; j++)
            {
                acc += dw[r * _k + j] * c.W[r * _k + j];
            }

            for (var j = 0; j < _k; j++)
            {
                var a = r * _k + j;
                var ds = _c.NormTopkProb ? scale / c.Sum[r] * (dw[a] - acc / scale) : scale * dw[a];
                dl[r * _e + c.Sel[a]] += ds * c.S[a] * (1 - c.S[a]);
            }
        }

        if (c.Balance)
        {
            BalanceBackward(c, dl);
        }

        LinearBackward(dxf, dl, c.Xf, lo.Gate, g, n, _d, _e);
    }

    /// <summary>
    /// Balance loss backward (reference §9.3), over ALL experts: with g_i = α f_i / (T·B) (the mean over sequences),
    /// ds_{m,t} = (g_m − Σ_i g_i s'_{i,t}) / Z_t and dl_{m,t} += ds_{m,t} s_{m,t} (1 − s_{m,t}). dl (N, E).
    /// </summary>
    private void BalanceBackward(BlockCache c, float[] dl)
    {
        int t = c.T;
        Span<double> s = stackalloc double[_e];
        for (var bi = 0; bi < c.B; bi++)
        {
            var f = c.F.AsSpan(bi * _e, _e);
            var gScale = (double)_balanceAlpha / (t * c.B);
            for (var i = 0; i < t; i++)
            {
                var r = bi * t + i;
                double z = 0, gs = 0;
                for (var e = 0; e < _e; e++)
                {
                    s[e] = 1 / (1 + Math.Exp(-c.Logits[r * _e + e]));
                    z += s[e];
                }

                for (var e = 0; e < _e; e++)
                {
                    gs += gScale * f[e] * s[e] / z;
                }

                for (var e = 0; e < _e; e++)
                {
                    var ds = (gScale * f[e] - gs) / z;
                    dl[r * _e + e] += (float)(ds * s[e] * (1 - s[e]));
                }
            }
        }
    }

    /// <summary>SwiGLU backward: y = (silu(G) ⊙ U) W_dᵀ with GU = x W_guᵀ. dy (n, D) → dx (n, D) +=.</summary>
    private void MlpBackward(float[] x, int gateUp, int down, int width, int n, float[] gu, float[] hid, float[] dy, float[] dx, float* g)
    {
        var dHid = AllocUncleared(n * width);
        LinearBackward(dHid, dy, hid, down, g, n, width, _d, overwrite: true);
        var dGu = AllocUncleared(n * 2 * width);
        SwiGluBackward(gu, dHid, dGu, width, n);
        LinearBackward(dx, dGu, x, gateUp, g, n, _d, 2 * width);
    }

    /// <summary>h = silu(a) ⊙ u: du = dh silu(a), da = dh u σ(a)(1 + a(1 − σ(a))). Rows [a | u] (n, 2·width).</summary>
    private static void SwiGluBackward(ReadOnlySpan<float> gu, ReadOnlySpan<float> dh, Span<float> dgu, int width, int n)
    {
        Span<float> sig = width <= 2048 ? stackalloc float[width] : new float[width];
        Span<float> tmp = width <= 2048 ? stackalloc float[width] : new float[width];
        for (var r = 0; r < n; r++)
        {
            var a = gu.Slice(r * 2 * width, width);
            var u = gu.Slice(r * 2 * width + width, width);
            var d = dh.Slice(r * width, width);
            var da = dgu.Slice(r * 2 * width, width);
            var du = dgu.Slice(r * 2 * width + width, width);
            TensorPrimitives.Sigmoid(a, sig);
            TensorPrimitives.Multiply(a, sig, tmp);      // silu(a)
            TensorPrimitives.Multiply(d, tmp, du);
            TensorPrimitives.Subtract(a, tmp, tmp);      // a (1 − σ)
            TensorPrimitives.Add(tmp, 1f, tmp);
            TensorPrimitives.Multiply(d, u, da);
            TensorPrimitives.Multiply(da, sig, da);
            TensorPrimitives.Multiply(da, tmp, da);
        }
    }

    /// <summary>The transpose of the RoPE rotation at position p (cos, −sin), in place (both layouts).</summary>
    private void RopeBackward(Span<float> x, int p)
    {
        var half = _rope.Half;
        var cos = _rope.Cos.AsSpan(p * half, half);
        var sin = _rope.Sin.AsSpan(p * half, half);
        for (var i = 0; i < half; i++)
        {
            var (ia, ib) = _rope.Interleaved ? (2 * i, 2 * i + 1) : (i, i + half);
            float a = x[ia], b = x[ib], c = cos[i], s = sin[i];
            x[ia] = a * c + b * s;
            x[ib] = -a * s + b * c;
        }
    }

    /// <summary>y = x Wᵀ backward: dW (out, in) += dyᵀ x; dx (n, in) += dy W, or = dy W when <paramref name="overwrite"/>.</summary>
    private void LinearBackward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, int w, float* g, int n, int inputs, int outputs, bool overwrite = false)
    {
        fixed (float* pdx = dx, pdy = dy, px = x)
        {
            Blas.GemmTN(outputs, inputs, n, pdy, outputs, px, inputs, g + w, inputs, beta: 1);
            Blas.GemmNN(n, inputs, outputs, pdy, outputs, _w + w, inputs, pdx, inputs, beta: overwrite ? 0 : 1);
        }
    }

    /// <summary>
    /// RMSNorm backward (reference §3): dw += Σ dy ⊙ x̂; dx += r (g − x̂ mean(g ⊙ x̂)) with g = dy ⊙ w, x̂ = r x.
    /// </summary>
    private void RmsBackward(ReadOnlySpan<float> x, int ldx, int w, int width, ReadOnlySpan<float> r, ReadOnlySpan<float> dy, int lddy, Span<float> dx, int lddx, float* g, int rows)
    {
        var weight = new ReadOnlySpan<float>(_w + w, width);
        var dweight = new Span<float>(g + w, width);
        Span<float> tmp = width <= 4096 ? stackalloc float[width] : new float[width];
        for (var i = 0; i < rows; i++)
        {
            var xi = x.Slice(i * ldx, width);
            var dyi = dy.Slice(i * lddy, width);
            var dxi = dx.Slice(i * lddx, width);
            var ri = r[i];

            // dw += r (dy ⊙ x); mean = r Σ (dy ⊙ w ⊙ x) / n; dx += r (dy ⊙ w) − r² mean x.
            TensorPrimitives.Multiply(dyi, xi, tmp);
            TensorPrimitives.MultiplyAdd(tmp, ri, dweight, dweight);
            var mean = ri * TensorPrimitives.Dot(tmp, weight) / width;
            TensorPrimitives.Multiply(dyi, weight, tmp);
            TensorPrimitives.MultiplyAdd(tmp, ri, dxi, dxi);
            TensorPrimitives.MultiplyAdd(xi, -ri * ri * mean, dxi, dxi);
        }
    }
}
