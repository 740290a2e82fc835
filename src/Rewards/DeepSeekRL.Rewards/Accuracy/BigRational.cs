// Exact rational numbers over BigInteger for the math verifier: integers, decimals, fractions, scientific notation
// and percentages compare exactly. Not a general-purpose numeric type: only what answer comparison needs.
using System.Globalization;
using System.Numerics;

namespace DeepSeekRL.Rewards.Accuracy;

/// <summary>An exact fraction <c>Num / Den</c> in lowest terms with <c>Den &gt; 0</c>.</summary>
internal readonly struct BigRational : IEquatable<BigRational>
{
    public BigRational(BigInteger num, BigInteger den)
    {
        if (den.IsZero)
        {
            throw new DivideByZeroException();
        }

        if (den.Sign < 0)
        {
            num = -num;
            den = -den;
        }

        var g = BigInteger.GreatestCommonDivisor(num, den);
        if (!g.IsOne && !g.IsZero)
        {
            num /= g;
            den /= g;
        }

        Num = num;
        Den = den;
    }

    public BigInteger Num { get; }

    public BigInteger Den { get; }

    public bool IsZero => Num.IsZero;

    public bool IsInteger => Den.IsOne || Den.IsZero;

    public static BigRational Zero => new(BigInteger.Zero, BigInteger.One);

    public static BigRational One => new(BigInteger.One, BigInteger.One);

    public static BigRational FromInt(long v) => new(v, BigInteger.One);

    public static BigRational operator +(BigRational a, BigRational b) => new(a.Num * b.Den + b.Num * a.Den, a.Den * b.Den);

    public static BigRational operator -(BigRational a, BigRational b) => new(a.Num * b.Den - b.Num * a.Den, a.Den * b.Den);

    public static BigRational operator -(BigRational a) => new(-a.Num, a.Den);

    public static BigRational operator *(BigRational a, BigRational b) => new(a.Num * b.Num, a.Den * b.Den);

    public static BigRational operator /(BigRational a, BigRational b) => new(a.Num * b.Den, a.Den * b.Num);

    public static bool operator ==(BigRational a, BigRational b) => a.Equals(b);

    public static bool operator !=(BigRational a, BigRational b) => !a.Equals(b);

    public bool Equals(BigRational other) => Num == other.Num && (Den == other.Den || (Den.IsZero && other.Den.IsOne) || (Den.IsOne && other.Den.IsZero));

    public override bool Equals(object? obj) => obj is BigRational r && Equals(r);

    public override int GetHashCode() => HashCode.Combine(Num, Den.IsZero ? BigInteger.One : Den);

    /// <summary>Integer power; null when the result would be unreasonably large (the caller falls back to doubles).</summary>
    public BigRational? Pow(BigInteger exponent)
    {
        if (exponent.IsZero)
        {
            return One;
        }

        if (IsZero)
        {
            return exponent.Sign > 0 ? Zero : null;
        }

        var bits = Math.Max(Num.GetBitLength(), Den.GetBitLength());
        if (BigInteger.Abs(exponent) > 4096 || bits * (long)BigInteger.Abs(exponent) > 20_000)
        {
            return Num.IsOne && Den.IsOne ? One : null;
        }

        var e = (int)BigInteger.Abs(exponent);
        var n = BigInteger.Pow(Num, e);
        var d = BigInteger.Pow(Den, e);
        return exponent.Sign > 0 ? new BigRational(n, d) : new BigRational(d, n);
    }

    public double ToDouble()
    {
        var n = Num;
        var d = Den;
        var shift = Math.Max(n.GetBitLength(), d.GetBitLength()) - 1000;
        if (shift > 0)
        {
            n >>= (int)shift;
            d >>= (int)shift;
            if (d.IsZero)
            {
                return n.Sign >= 0 ? double.PositiveInfinity : double.NegativeInfinity;
            }
        }

        return (double)n / (double)d;
    }

    /// <summary>The value times 10^digits rounded half away from zero: equal results mean equal after rounding.</summary>
    public BigInteger RoundScaled(int digits)
    {
        var scaled = Num * BigInteger.Pow(10, digits);
        var q = BigInteger.DivRem(BigInteger.Abs(scaled), Den, out var r);
        if (r * 2 >= Den)
        {
            q += 1;
        }

        return scaled.Sign < 0 ? -q : q;
    }

    /// <summary>Parses <c>123</c>, <c>-1.5</c>, <c>.4</c>, <c>1e-3</c>, <c>2.5E+4</c> (ASCII, no separators).</summary>
    public static bool TryParseDecimal(ReadOnlySpan<char> s, out BigRational value, out bool isFloat)
    {
        value = Zero;
        isFloat = false;
        var neg = false;
        var i = 0;
        if (i < s.Length && (s[i] == '-' || s[i] == '+'))
        {
            neg = s[i] == '-';
            i++;
        }

        var start = i;
        while (i < s.Length && char.IsAsciiDigit(s[i]))
        {
            i++;
        }

        var intPart = s[start..i];
        ReadOnlySpan<char> frac = default;
        if (i < s.Length && s[i] == '.')
        {
            i++;
            var fs = i;
            while (i < s.Length && char.IsAsciiDigit(s[i]))
            {
                i++;
            }

            frac = s[fs..i];
            isFloat = true;
        }

        if (intPart.IsEmpty && frac.IsEmpty)
        {
            return false;
        }

        var exp = 0;
        if (i < s.Length && (s[i] == 'e' || s[i] == 'E'))
        {
            i++;
            var es = i;
            if (i < s.Length && (s[i] == '-' || s[i] == '+'))
            {
                i++;
            }

            while (i < s.Length && char.IsAsciiDigit(s[i]))
            {
                i++;
            }

            if (!int.TryParse(s[es..i], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out exp) || Math.Abs(exp) > 1000)
            {
                return false;
            }

            isFloat = true;
        }

        if (i != s.Length)
        {
            return false;
        }

        BigInteger n;
        if (intPart.Length + frac.Length <= 18)
        {
            long acc = 0;
            foreach (var c in intPart)
            {
                acc = acc * 10 + (c - '0');
            }

            foreach (var c in frac)
            {
                acc = acc * 10 + (c - '0');
            }

            n = acc;
        }
        else
        {
            n = BigInteger.Parse(string.Concat(intPart, frac), NumberStyles.None, CultureInfo.InvariantCulture);
        }

        var scale = frac.Length - exp;
        value = scale >= 0 ? new BigRational(n, BigInteger.Pow(10, scale)) : new BigRational(n * BigInteger.Pow(10, -scale), BigInteger.One);
        if (neg)
        {
            value = -value;
        }

        return true;
    }

    public override string ToString() => Den.IsOne ? Num.ToString(CultureInfo.InvariantCulture) : string.Create(CultureInfo.InvariantCulture, $"{Num}/{Den}");
}
