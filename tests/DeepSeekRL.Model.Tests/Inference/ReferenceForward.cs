using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Layers;
using DeepSeekRL.Model.Weights;

namespace DeepSeekRL.Model.Tests.Inference;

/// <summary>
/// The naive reference forward pass in double: loops straight from the reference document (§2-§8, §10), full causal
/// attention with per-head K and V, no cache, no BLAS. It validates the fast engine.
/// </summary>
internal sealed class ReferenceForward(ModelWeights w)
{
    private readonly DeepSeekV3Config _c = w.Config;
    private readonly Rope _rope = new(w.Config, w.Config.MaxPositionEmbeddings);

    /// <summary>Logits (T, V) and the final-norm hidden states (T, D).</summary>
    public (double[][] Logits, double[][] Hidden) Main(int[] tokens)
    {
        var h = Embed(tokens);
        for (var l = 0; l < _c.NumHiddenLayers; l++)
        {
            h = Block(l, h);
        }

        var z = h.Select(r => RmsNorm(r, W("model.norm.weight"))).ToArray();
        return (z.Select(r => Linear("lm_head.weight", r)).ToArray(), z);
    }

    /// <summary>MTP logits: row i takes (hidden_i, Emb(next_i)) and predicts the token after next_i.</summary>
    public double[][] Mtp(double[][] hidden, int[] nextTokens)
    {
        var p = $"model.layers.{_c.NumHiddenLayers}.";
        var e = Embed(nextTokens);
        var x = new double[hidden.Length][];
        for (var i = 0; i < hidden.Length; i++)
        {
            var cat = RmsNorm(e[i], W(p + "enorm.weight")).Concat(RmsNorm(hidden[i], W(p + "hnorm.weight"))).ToArray();
            x[i] = Linear(p + "eh_proj.weight", cat);
        }

        x = Block(_c.NumHiddenLayers, x);
        return x.Select(r => Linear("lm_head.weight", RmsNorm(r, W(p + "shared_head.norm.weight")))).ToArray();
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
        for (var i = 0; i < t; i++)
        {
            h2[i] = Add(h1[i], _c.IsMoeLayer(l) ? Moe(p, xf[i]) : Mlp(p + "mlp.", xf[i]));
        }

        return h2;
    }

    private double[][] Attention(string p, double[][] x)
    {
        int t = x.Length, nh = _c.NumAttentionHeads, dn = _c.QkNopeHeadDim, dr = _c.QkRopeHeadDim, dv = _c.VHeadDim, rkv = _c.KvLoraRank, dqk = dn + dr;
        var q = new double[t][];
        var k = new double[t][];   // (T, H·d_qk)
        var v = new double[t][];   // (T, H·d_v)
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

    private double[] Moe(string p, double[] x)
    {
        var k = _c.NumExpertsPerTok;
        var logits = Linear(p + "mlp.gate.weight", x).Select(z => (float)z).ToArray();
        var experts = new int[k];
        var weights = new float[k];
        MoeRouter.Route(logits, W(p + "mlp.gate.e_score_correction_bias"), _c.NGroup, _c.TopkGroup, (float)_c.RoutedScalingFactor, _c.NormTopkProb, experts, weights);
        var y = _c.NSharedExperts > 0 ? Mlp(p + "mlp.shared_experts.", x) : new double[x.Length];
        for (var n = 0; n < k; n++)
        {
            var ye = Mlp($"{p}mlp.experts.{experts[n]}.", x);
            for (var j = 0; j < y.Length; j++)
            {
                y[j] += weights[n] * ye[j];
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
        // Interleaved pairs (2i, 2i+1) (§4.2), or halves (i, i + d_r/2) when rope_interleave is false (§4.3).
        var y = (double[])x.Clone();
        var half = x.Length / 2;
        for (var i = 0; i < half; i++)
        {
            var phi = position * _rope.Frequencies[i];
            double c = Math.Cos(phi), s = Math.Sin(phi);
            var (a, b) = _c.RopeInterleave ? (2 * i, 2 * i + 1) : (i, i + half);
            y[a] = x[a] * c - x[b] * s;
            y[b] = x[a] * s + x[b] * c;
        }

        return y;
    }

    private double[] Linear(string name, double[] x)
    {
        var weight = W(name);
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

    private double[] RmsNorm(double[] x, float[] w)
    {
        var r = 1 / Math.Sqrt(x.Sum(v => v * v) / x.Length + _c.RmsNormEps);
        return x.Select((v, i) => v * r * w[i]).ToArray();
    }

    private static double[] Add(double[] a, double[] b) => a.Select((v, i) => v + b[i]).ToArray();

    private float[] W(string name) => w.Get(name).ToArray();
}
