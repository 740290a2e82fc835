using DeepSeekRL.Model.Config;

namespace DeepSeekRL.Model.Checkpoints;

// `model init`: fresh weights that are bit-identical on every machine for a given config and seed. The generator is
// our own (SplitMix64-seeded xoshiro256**), the normals come from Marsaglia's polar form of Box-Muller in double with
// our own logarithm (only +, -, *, / and sqrt, which IEEE 754 rounds exactly), so no libm difference can leak in.
// It is not a training recipe: no depth scaling, no special init for the head.

/// <summary>Options of <see cref="ModelInit.Create"/>.</summary>
public sealed class ModelInitOptions
{
    /// <summary>
    /// Standard deviation of the normal init of every weight matrix. Default <see langword="null"/>: the config's
    /// <c>initializer_range</c> (0.02). The golden tests use 0.2-0.3 so that logits span several units.
    /// </summary>
    public double? Std { get; init; }

    /// <summary>
    /// Standard deviation of <c>e_score_correction_bias</c>. Default 0 (all zeros, as for training). A non-zero value
    /// draws the bias from N(0, BiasStd²) so that tests see the bias change the expert selection.
    /// </summary>
    public double BiasStd { get; init; }
}

/// <summary>Creates deterministic initial weights (reference doc §15.1: N(0, std), norms 1, expert bias 0).</summary>
public static class ModelInit
{
    /// <summary>
    /// Creates the weights of <paramref name="config"/>: parameters are visited in <see cref="ParameterLayout"/> order
    /// and every element of a <see cref="ParameterInit.Normal"/> tensor takes the next draw of one generator seeded
    /// by <paramref name="seed"/>; norms are 1; <c>e_score_correction_bias</c> is 0, or drawn from the same stream
    /// when <see cref="ModelInitOptions.BiasStd"/> is non-zero.
    /// </summary>
    /// <param name="config">The config.</param>
    /// <param name="seed">The seed (any value).</param>
    /// <param name="options">The options (default: config std, zero bias).</param>
    /// <returns>The store.</returns>
    public static ParameterStore Create(DeepSeekV3Config config, long seed, ModelInitOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        options ??= new ModelInitOptions();
        var std = options.Std ?? config.InitializerRange;
        if (!double.IsFinite(std) || std < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"Std = {std}: expected a finite value >= 0");
        }

        if (!double.IsFinite(options.BiasStd) || options.BiasStd < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"BiasStd = {options.BiasStd}: expected a finite value >= 0");
        }

        var store = ParameterStore.Allocate(config);
        var rng = new NormalGenerator((ulong)seed);
        for (var p = 0; p < store.Specs.Count; p++)
        {
            var spec = store.Specs[p];
            var w = store[p]; // (spec.Shape), row-major
            switch (spec.Init)
            {
                case ParameterInit.Normal:
                    rng.Fill(w, std);
                    break;
                case ParameterInit.Ones:
                    w.Fill(1f);
                    break;
                case ParameterInit.Zeros when options.BiasStd > 0:
                    rng.Fill(w, options.BiasStd);
                    break;
                default:
                    w.Clear();
                    break;
            }
        }

        return store;
    }

    /// <summary>Standard normal draws from xoshiro256** (seeded by SplitMix64) through the polar Box-Muller method.</summary>
    internal sealed class NormalGenerator
    {
        private const double Ln2 = 0.6931471805599453094;
        private ulong _s0, _s1, _s2, _s3;
        private double _spare;
        private bool _hasSpare;

        /// <summary>Seeds the four state words with SplitMix64 (never all zero).</summary>
        /// <param name="seed">The seed.</param>
        public NormalGenerator(ulong seed)
        {
            var x = seed;
            _s0 = SplitMix64(ref x);
            _s1 = SplitMix64(ref x);
            _s2 = SplitMix64(ref x);
            _s3 = SplitMix64(ref x);
        }

        /// <summary>The next 64 random bits (xoshiro256**, Blackman and Vigna 2018).</summary>
        /// <returns>The bits.</returns>
        public ulong NextUInt64()
        {
            var result = ulong.RotateLeft(_s1 * 5, 7) * 9;
            var t = _s1 << 17;
            _s2 ^= _s0;
            _s3 ^= _s1;
            _s1 ^= _s2;
            _s0 ^= _s3;
            _s2 ^= t;
            _s3 = ulong.RotateLeft(_s3, 45);
            return result;
        }

        /// <summary>A uniform double in [0, 1) with 53 random bits.</summary>
        /// <returns>The value.</returns>
        public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

        /// <summary>A standard normal draw (Marsaglia polar method; the second value of each pair is kept for the next call).</summary>
        /// <returns>The value.</returns>
        public double NextNormal()
        {
            if (_hasSpare)
            {
                _hasSpare = false;
                return _spare;
            }

            double u, v, s;
            do
            {
                u = (2 * NextDouble()) - 1;
                v = (2 * NextDouble()) - 1;
                s = (u * u) + (v * v);
            }
            while (s >= 1 || s == 0);

            var factor = Math.Sqrt(-2 * Log(s) / s);
            _spare = v * factor;
            _hasSpare = true;
            return u * factor;
        }

        /// <summary>Fills <paramref name="destination"/> with N(0, std²) draws rounded to float32.</summary>
        /// <param name="destination">The values.</param>
        /// <param name="std">The standard deviation.</param>
        public void Fill(Span<float> destination, double std)
        {
            for (var i = 0; i < destination.Length; i++)
            {
                destination[i] = (float)(std * NextNormal());
            }
        }

        /// <summary>
        /// ln x for x in (0, 1], from IEEE-exact operations only: x = m·2^e with m in [√½, √2), then
        /// ln m = 2·atanh(z) = 2(z + z³/3 + z⁵/5 + …) with z = (m−1)/(m+1), |z| ≤ 0.172 (error below 1e-16 relative).
        /// </summary>
        /// <param name="x">A positive, normal double.</param>
        /// <returns>The natural logarithm.</returns>
        internal static double Log(double x)
        {
            var bits = BitConverter.DoubleToInt64Bits(x);
            var e = (int)((bits >> 52) & 0x7FF) - 1023;
            var m = BitConverter.Int64BitsToDouble((bits & 0x000F_FFFF_FFFF_FFFFL) | 0x3FF0_0000_0000_0000L); // [1, 2)
            if (m > 1.4142135623730951)
            {
                m *= 0.5;
                e++;
            }

            var z = (m - 1) / (m + 1);
            var z2 = z * z;
            var term = z;
            var sum = 0.0;
            for (var k = 1; k <= 41; k += 2)
            {
                sum += term / k;
                term *= z2;
            }

            return (2 * sum) + (e * Ln2);
        }

        private static ulong SplitMix64(ref ulong x)
        {
            x += 0x9E3779B97F4A7C15UL;
            var z = x;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }
}
