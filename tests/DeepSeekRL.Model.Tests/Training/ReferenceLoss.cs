using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Layers;
using DeepSeekRL.Model.Weights;

namespace DeepSeekRL.Model.Tests.Training;

/// <summary>
/// The naive training loss in double (loops straight from the reference document §2-§10, no BLAS): masked mean
/// next-token cross-entropy + W × MTP cross-entropy, with the top-K expert choice recorded so finite differences can
/// assert routing stayed frozen. Combine weights are computed in double from the sigmoid scores (§7.4).
/// </summary>
internal sealed class ReferenceLoss(ModelWeights w)
{
    private readonly DeepSeekV3Config _c = w.Config;
    private readonly Rope _rope = new(w.Config, w.Config.MaxPositionEmbeddings);
    private readonly List<(double[] Scores, int[] Experts)> _tokenRouting = [];
    private double _alpha, _balance;

    /// <summary>The experts chosen in the last call, in call order (one entry per MoE token).</summary>
    public List<int> Selections { get; } = [];

    /// <summary>The experts chosen in the last call per layer, sequences in batch order (TrainingModel's row order).</summary>
    public SortedDictionary<int, List<int>> ByLayer { get; } = [];

    public double Loss(int[] tokens, int batch, float[]? mask, double mtpWeight, double balanceAlpha = 0)
    {
        _alpha = balanceAlpha;
        _balance = 0;
        Selections.Clear();
        ByLayer.Clear();
        var t = tokens.Length / batch;
        mask ??= Enumerable.Repeat(1f, tokens.Length).ToArray();
        double main = 0, mainCount = 0, mtp = 0, mtpCount = 0;
        for (var b = 0; b < batch; b++)
        {
            var seq = tokens[(b * t)..((b + 1) * t)];
            var h = Embed(seq);
            for (var l = 0; l < _c.NumHiddenLayers; l++)
            {
                h = Block(l, h);
            }

            var z = h.Select(r => RmsNorm(r, W("model.norm.weight"))).ToArray();
            for (var i = 0; i + 1 < t; i++)
            {
                var m = mask[b * t + i + 1];
                main += m * CrossEntropy(Linear("lm_head.weight", z[i]), seq[i + 1]);
                mainCount += m;
            }

            if (mtpWeight != 0)
            {
                var p = $"model.layers.{_c.NumHiddenLayers}.";
                var e = Embed(seq[1..]);
                var x = new double[t - 1][];
                for (var i = 0; i < t - 1; i++)
                {
                    var cat = RmsNorm(e[i], W(p + "enorm.weight")).Concat(RmsNorm(z[i], W(p + "hnorm.weight"))).ToArray();
                    x[i] = Linear(p + "eh_proj.weight", cat);
                }

                x = Block(_c.NumHiddenLayers, x);
                for (var i = 0; i + 2 < t; i++)
                {
                    var m = mask[b * t + i + 2];
                    mtp += m * CrossEntropy(Linear("lm_head.weight", RmsNorm(x[i], W(p + "shared_head.norm.weight"))), seq[i + 2]);
                    mtpCount += m;
                }
            }
        }

        var loss = (mainCount > 0 ? main / mainCount : 0) + _balance / batch;
        return mtpWeight != 0 && mtpCount > 0 ? loss + mtpWeight * mtp / mtpCount : loss;
    }

    private static double CrossEntropy(double[] logits, int target)
    {
        var max = logits.Max();
        return Math.Log(logits.Sum(z => Math.Exp(z - max))) + max - logits[target];
    }

    private double[][] Embed(int[] tokens)
    {
        var d = _c.HiddenSize;
        var table = W("model.embed_tokens.weight");
        return tokens.Select(t => Enumerable.Range(0, d).Select(j => (double)table[t * d + j]).ToArray()).ToArray();
    }

    private double[][] Block(int l, double[][] h)
    {
        var p = $"model.layers.{l}.";
        var t = h.Length;
        var xn = h.Select(r => RmsNorm(r, W(p + "input_layernorm.weight"))).ToArray();
        var o = Attention(p, xn);
        var h1 = new double[t][];
        for (var i = 0; i < t; i++)
        {
            h1[i] = Add(h[i], Linear(p + "self_attn.o_proj.weight", o[i]));
        }

        var xf = h1.Select(r => RmsNorm(r, W(p + "post_attention_layernorm.weight"))).ToArray();
        var h2 = new double[t][];
        _tokenRouting.Clear();
        for (var i = 0; i < t; i++)
        {
            h2[i] = Add(h1[i], _c.IsMoeLayer(l) ? Moe(l, p, xf[i]) : Mlp(p + "mlp.", xf[i]));
        }

        if (_alpha != 0 && _c.IsMoeLayer(l) && l < _c.NumHiddenLayers)
        {
            // §9.2: L_Bal = α Σ_i f_i P_i, f_i = E/(K·T) #(t: i chosen), P_i = (1/T) Σ_t s_{i,t} / Σ_j s_{j,t}.
            int e = _c.NRoutedExperts, k = _c.NumExpertsPerTok;
            for (var i = 0; i < e; i++)
            {
                var f = _tokenRouting.Count(r => r.Experts.Contains(i)) * (double)e / (k * t);
                var pi = _tokenRouting.Sum(r => r.Scores[i] / r.Scores.Sum()) / t;
                _balance += _alpha * f * pi;
            }
        }

        return h2;
    }

    private double[][] Attention(string p, double[][] x)
    {
        int t = x.Length, nh = _c.NumAttentionHeads, dn = _c.QkNopeHeadDim, dr = _c.QkRopeHeadDim, dv = _c.VHeadDim, rkv = _c.KvLoraRank, dqk = dn + dr;
        var q = new double[t][];
        var k = new double[t][];
        var v = new double[t][];
        for (var i = 0; i < t; i++)
        {
            q[i] = _c.UsesQLora
                ? Linear(p + "self_attn.q_b_proj.weight", RmsNorm(Linear(p + "self_attn.q_a_proj.weight", x[i]), W(p + "self_attn.q_a_layernorm.weight")))
                : Linear(p + "self_attn.q_proj.weight", x[i]);
            var a = Linear(p + "self_attn.kv_a_proj_with_mqa.weight", x[i]);
            var c = RmsNorm(a[..rkv], W(p + "self_attn.kv_a_layernorm.weight"));
            var kpe = Rotate(a[rkv..], i);
            var kvb = Linear(p + "self_attn.kv_b_proj.weight", c);
            k[i] = new double[nh * dqk];
            v[i] = new double[nh * dv];
            for (var h = 0; h < nh; h++)
            {
                Array.Copy(kvb, h * (dn + dv), k[i], h * dqk, dn);
                Array.Copy(kpe, 0, k[i], h * dqk + dn, dr);
                Array.Copy(kvb, h * (dn + dv) + dn, v[i], h * dv, dv);
                var qpe = Rotate(q[i][(h * dqk + dn)..(h * dqk + dqk)], i);
                Array.Copy(qpe, 0, q[i], h * dqk + dn, dr);
            }
        }

        var o = new double[t][];
        for (var i = 0; i < t; i++)
        {
            o[i] = new double[nh * dv];
            for (var h = 0; h < nh; h++)
            {
                var s = new double[i + 1];
                for (var j = 0; j <= i; j++)
                {
                    double dot = 0;
                    for (var m = 0; m < dqk; m++)
                    {
                        dot += q[i][h * dqk + m] * k[j][h * dqk + m];
                    }

                    s[j] = _rope.SoftmaxScale * dot;
                }

                var max = s.Max();
                var e = s.Select(z => Math.Exp(z - max)).ToArray();
                var sum = e.Sum();
                for (var j = 0; j <= i; j++)
                {
                    for (var m = 0; m < dv; m++)
                    {
                        o[i][h * dv + m] += e[j] / sum * v[j][h * dv + m];
                    }
                }
            }
        }

        return o;
    }

    private double[] Moe(int layer, string p, double[] x)
    {
        var k = _c.NumExpertsPerTok;
        var logits = Linear(p + "mlp.gate.weight", x);
        var experts = new int[k];
        var unused = new float[k];
        MoeRouter.Route(logits.Select(z => (float)z).ToArray(), W(p + "mlp.gate.e_score_correction_bias"), _c.NGroup, _c.TopkGroup, (float)_c.RoutedScalingFactor, _c.NormTopkProb, experts, unused);
        Selections.AddRange(experts);
        if (!ByLayer.TryGetValue(layer, out var list))
        {
            ByLayer[layer] = list = [];
        }

        list.AddRange(experts);
        _tokenRouting.Add((logits.Select(z => 1 / (1 + Math.Exp(-z))).ToArray(), experts));

        // w_e = R s_e / Σ_S s (§7.4) in double.
        var s = experts.Select(e => 1 / (1 + Math.Exp(-logits[e]))).ToArray();
        var scale = _c.NormTopkProb ? _c.RoutedScalingFactor / s.Sum() : _c.RoutedScalingFactor;
        var y = _c.NSharedExperts > 0 ? Mlp(p + "mlp.shared_experts.", x) : new double[x.Length];
        for (var n = 0; n < k; n++)
        {
            var ye = Mlp($"{p}mlp.experts.{experts[n]}.", x);
            for (var j = 0; j < y.Length; j++)
            {
                y[j] += scale * s[n] * ye[j];
            }
        }

        return y;
    }

    private double[] Mlp(string p, double[] x)
    {
        var g = Linear(p + "gate_proj.weight", x);
        var u = Linear(p + "up_proj.weight", x);
        var hid = g.Select((a, i) => a / (1 + Math.Exp(-a)) * u[i]).ToArray();
        return Linear(p + "down_proj.weight", hid);
    }

    private double[] Rotate(double[] x, int position)
    {
        var y = (double[])x.Clone();
        var half = x.Length / 2;
        for (var i = 0; i < half; i++)
        {
            // The engine's table carries YaRN's attention factor in cos and sin (§4.5); use the same numbers.
            double c = _rope.Cos[position * half + i], s = _rope.Sin[position * half + i];
            var (a, b) = _c.RopeInterleave ? (2 * i, 2 * i + 1) : (i, i + half);
            y[a] = x[a] * c - x[b] * s;
            y[b] = x[a] * s + x[b] * c;
        }

        return y;
    }

    private double[] Linear(string name, double[] x)
    {
        ReadOnlySpan<float> weight = w.Get(name);
        var n = weight.Length / x.Length;
        var y = new double[n];
        for (var i = 0; i < n; i++)
        {
            double s = 0;
            for (var j = 0; j < x.Length; j++)
            {
                s += weight[i * x.Length + j] * x[j];
            }

            y[i] = s;
        }

        return y;
    }

    private double[] RmsNorm(double[] x, float[] weight)
    {
        var r = 1 / Math.Sqrt(x.Sum(v => v * v) / x.Length + _c.RmsNormEps);
        return x.Select((v, i) => v * r * weight[i]).ToArray();
    }

    private static double[] Add(double[] a, double[] b) => a.Select((v, i) => v + b[i]).ToArray();

    private float[] W(string name) => w.Get(name).ToArray();
}
