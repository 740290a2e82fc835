// Equivalence of two parsed answers, gold first (asymmetric, as Math-Verify). Numbers compare exactly as rationals
// (after rounding to the precision when a decimal is involved); everything with radicals, pi, functions or
// variables is evaluated in double precision at fixed seeded sample points (a probabilistic identity test).
namespace DeepSeekRL.Rewards.Accuracy;

/// <summary>Compares a gold tree with a predicted tree under one set of options; single use per comparison.</summary>
internal sealed class MathEquivalence(MathVerifyOptions options, VerifyBudget budget)
{
    private const int MaxSymbols = 12;
    private const int Points = 5;

    // Sample points: fixed seed so scores are reproducible; values in [0.35, 2.85] avoid 0, 1 and integers.
    private static readonly double[,] Samples = BuildSamples();

    private static double[,] BuildSamples()
    {
        var rng = new Random(20250917);
        var t = new double[Points, MaxSymbols];
        for (var k = 0; k < Points; k++)
        {
            for (var j = 0; j < MaxSymbols; j++)
            {
                t[k, j] = 0.35 + 2.5 * rng.NextDouble();
            }
        }

        return t;
    }

    public bool Equal(MathNode g, MathNode p)
    {
        budget.Tick();
        g = ExpandPlusMinus(g);
        p = ExpandPlusMinus(p);
        if (g.Kind == MathKind.Relation && p.Kind == MathKind.Relation)
        {
            return RelationEqual(g, p);
        }

        if (g.Kind == MathKind.Relation)
        {
            if (g.Ops is ["in"])
            {
                return Equal(g.Children[1], p);
            }

            var asInterval = ChainToInterval(g);
            if (asInterval is not null && p.Kind is MathKind.Interval or MathKind.Tuple)
            {
                return Equal(asInterval, p);
            }

            var reduced = ReduceEquation(g);
            return reduced is not null && Equal(reduced, p);
        }

        if (p.Kind == MathKind.Relation)
        {
            if (p.Ops is ["in"])
            {
                return Equal(g, p.Children[1]);
            }

            if (g.Kind == MathKind.Interval && options.AllowSetRelationComparison)
            {
                var asInterval = ChainToInterval(p);
                return asInterval is not null && Equal(g, asInterval);
            }

            var reduced = ReduceEquation(p);
            return reduced is not null && Equal(g, reduced);
        }

        switch (g.Kind, p.Kind)
        {
            case (MathKind.Set, MathKind.Set):
                return Unordered(g.Children, p.Children);
            case (MathKind.Set or MathKind.Tuple, MathKind.Set or MathKind.Tuple):
                return Ordered(g.Children, p.Children);
            case (MathKind.Union, MathKind.Union):
                return Unordered(g.Children, p.Children);
            case (MathKind.Ratio, MathKind.Ratio):
                return Ordered(g.Children, p.Children);
            case (MathKind.Interval, MathKind.Interval):
                return g.LeftClosed == p.LeftClosed && g.RightClosed == p.RightClosed && Ordered(g.Children, p.Children);
            case (MathKind.Interval, MathKind.Tuple):
                return !g.LeftClosed && !g.RightClosed && Ordered(g.Children, p.Children);
            case (MathKind.Tuple, MathKind.Interval):
                return !p.LeftClosed && !p.RightClosed && Ordered(g.Children, p.Children);
            case (MathKind.Matrix, MathKind.Matrix):
                return g.Cols == p.Cols && Ordered(g.Children, p.Children);
            case (MathKind.Matrix, MathKind.Tuple):
                return g.Cols == 1 && Ordered(g.Children, p.Children);
            case (MathKind.Text, MathKind.Text):
                return string.Equals(g.Name, p.Name, StringComparison.OrdinalIgnoreCase);
            case (MathKind.Text, MathKind.Symbol):
                return string.Equals(g.Name, p.Name.TrimStart('\\'), StringComparison.OrdinalIgnoreCase);
            case (MathKind.Symbol, MathKind.Text):
                return string.Equals(g.Name.TrimStart('\\'), p.Name, StringComparison.OrdinalIgnoreCase);
        }

        return IsScalar(g) && IsScalar(p) && ScalarEqual(g, p);
    }

    private static bool IsScalar(MathNode n) => n.Kind is MathKind.Number or MathKind.Symbol or MathKind.Constant or MathKind.Add
        or MathKind.Mul or MathKind.Pow or MathKind.Neg or MathKind.Func;

    private bool Ordered(MathNode[] a, MathNode[] b)
    {
        if (a.Length != b.Length)
        {
            return false;
        }

        for (var i = 0; i < a.Length; i++)
        {
            if (!Equal(a[i], b[i]))
            {
                return false;
            }
        }

        return true;
    }

    private bool Unordered(MathNode[] a, MathNode[] b)
    {
        return Covers(a, b) && Covers(b, a);
    }

    /// <summary>Every element of <paramref name="a"/> equals some element of <paramref name="b"/> (set semantics:
    /// duplicates do not count twice).</summary>
    private bool Covers(MathNode[] a, MathNode[] b)
    {
        foreach (var x in a)
        {
            var found = false;
            foreach (var y in b)
            {
                if (Equal(x, y))
                {
                    found = true;
                    break;
                }
            }

            if (!found)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary><c>x = 5</c> → 5 (left side a plain name, tuple of names or f(x)); a chain a = b = c → c.</summary>
    private static MathNode? ReduceEquation(MathNode rel)
    {
        var (sides, ops) = TrimApprox(rel);
        foreach (var op in ops)
        {
            if (op is not ("=" or "~"))
            {
                return null;
            }
        }

        if (sides.Length >= 3)
        {
            return sides[^1];
        }

        return sides.Length == 2 && IsSimpleLhs(sides[0]) ? sides[1] : null;
    }

    /// <summary>Drops everything from the first ≈ on when an = precedes it (<c>x = 1/3 ≈ 0.33</c> → <c>x = 1/3</c>).</summary>
    private static (MathNode[] Sides, string[] Ops) TrimApprox(MathNode rel)
    {
        var cut = Array.IndexOf(rel.Ops, "~");
        if (cut > 0)
        {
            return (rel.Children[..(cut + 1)], rel.Ops[..cut]);
        }

        return (rel.Children, rel.Ops);
    }

    private static bool IsSimpleLhs(MathNode n) => n.Kind switch
    {
        MathKind.Symbol => true,
        MathKind.Mul or MathKind.Ratio or MathKind.Tuple => Array.TrueForAll(n.Children, IsSimpleLhs),
        MathKind.Func => n.Name == "abs" && IsSimpleLhs(n.Children[0]),
        MathKind.Pow => n.Children[1] == MathNode.MinusOne && IsSimpleLhs(n.Children[0]),
        _ => false,
    };

    /// <summary><c>a &lt; x &lt;= b</c> → the interval (a, b].</summary>
    private static MathNode? ChainToInterval(MathNode rel)
    {
        if (rel.Children.Length != 3)
        {
            return null;
        }

        var (o1, o2) = (rel.Ops[0], rel.Ops[1]);
        if (o1 is "<" or "<=" && o2 is "<" or "<=")
        {
            return MathNode.Interval(rel.Children[0], rel.Children[2], o1 == "<=", o2 == "<=");
        }

        if (o1 is ">" or ">=" && o2 is ">" or ">=")
        {
            return MathNode.Interval(rel.Children[2], rel.Children[0], o2 == ">=", o1 == ">=");
        }

        return null;
    }

    private bool RelationEqual(MathNode g, MathNode p)
    {
        if (p.Ops is ["in"])
        {
            return Equal(g, p.Children[1]);
        }

        if (g.Ops is ["in"])
        {
            return Equal(g.Children[1], p);
        }

        var (gs, go) = Canonical(g);
        var (ps, po) = Canonical(p);
        if (gs.Length == ps.Length && go.AsSpan().SequenceEqual(po) && Ordered(gs, ps))
        {
            return true;
        }

        if (gs.Length == 2 && ps.Length == 2 && Array.TrueForAll(gs, IsScalar) && Array.TrueForAll(ps, IsScalar))
        {
            var (gd, gKind) = Difference(gs, go[0]);
            var (pd, pKind) = Difference(ps, po[0]);
            if (gKind != pKind)
            {
                return false;
            }

            return Proportional(gd, pd, positiveOnly: gKind is "<" or "<=");
        }

        if (gs.Length == 3 && ps.Length == 3)
        {
            var gi = ChainToInterval(MathNode.Relation([.. gs], [.. go]));
            var pi = ChainToInterval(MathNode.Relation([.. ps], [.. po]));
            return gi is not null && pi is not null && Equal(gi, pi) && Equal(gs[1], ps[1]);
        }

        return false;
    }

    /// <summary>An equality chain a = b = c becomes a = c; ≈ after = is dropped.</summary>
    private static (MathNode[] Sides, string[] Ops) Canonical(MathNode rel)
    {
        var (sides, ops) = TrimApprox(rel);
        if (sides.Length >= 3 && Array.TrueForAll(ops, o => o is "=" or "~"))
        {
            return ([sides[0], sides[^1]], ["="]);
        }

        return (sides, ops);
    }

    /// <summary>Relation a op b as one expression d with "d op' 0": = and != keep a - b; &lt; and &gt; become b - a &gt; 0.</summary>
    private static (MathNode Diff, string Kind) Difference(MathNode[] s, string op) => op switch
    {
        "<" => (MathNode.Add(s[1], MathNode.Neg(s[0])), "<"),
        "<=" => (MathNode.Add(s[1], MathNode.Neg(s[0])), "<="),
        ">" => (MathNode.Add(s[0], MathNode.Neg(s[1])), "<"),
        ">=" => (MathNode.Add(s[0], MathNode.Neg(s[1])), "<="),
        "~" => (MathNode.Add(s[0], MathNode.Neg(s[1])), "="),
        _ => (MathNode.Add(s[0], MathNode.Neg(s[1])), op),
    };

    private bool Proportional(MathNode a, MathNode b, bool positiveOnly)
    {
        var symbols = Symbols(a, b);
        if (symbols is null)
        {
            return false;
        }

        double? ratio = null;
        var valid = 0;
        var points = symbols.Count == 0 ? 1 : Points;
        for (var k = 0; k < points; k++)
        {
            budget.Tick();
            var x = Evaluate(a, symbols, k);
            var y = Evaluate(b, symbols, k);
            if (!double.IsFinite(x) || !double.IsFinite(y))
            {
                if (double.IsNaN(x) && double.IsNaN(y))
                {
                    continue;
                }

                return false;
            }

            var xz = Math.Abs(x) < 1e-12;
            var yz = Math.Abs(y) < 1e-12;
            if (xz || yz)
            {
                if (xz != yz)
                {
                    return false;
                }

                continue;
            }

            valid++;
            var r = x / y;
            if (ratio is null)
            {
                if (positiveOnly && r <= 0)
                {
                    return false;
                }

                ratio = r;
            }
            else if (Math.Abs(r - ratio.Value) > 1e-8 * Math.Max(1, Math.Abs(ratio.Value)))
            {
                return false;
            }
        }

        return valid > 0 || symbols.Count == 0;
    }

    private bool ScalarEqual(MathNode g, MathNode p)
    {
        var floats = HasFloat(g) || HasFloat(p);
        var eg = Exact(g);
        var ep = eg is null ? null : Exact(p);
        if (eg is BigRational xg && ep is BigRational xp)
        {
            return xg == xp || (floats && xg.RoundScaled(options.Precision) == xp.RoundScaled(options.Precision));
        }

        var symbols = Symbols(g, p);
        if (symbols is null)
        {
            return false;
        }

        var tolerance = floats ? 0.5 * Math.Pow(10, -options.Precision) * 1.000001 : 0;
        var points = symbols.Count == 0 ? 1 : Points;
        var valid = 0;
        for (var k = 0; k < points; k++)
        {
            budget.Tick();
            var a = Evaluate(g, symbols, k);
            var b = Evaluate(p, symbols, k);
            if (double.IsNaN(a) || double.IsNaN(b))
            {
                if (double.IsNaN(a) && double.IsNaN(b))
                {
                    continue;
                }

                return false;
            }

            if (double.IsInfinity(a) || double.IsInfinity(b))
            {
                if (a != b)
                {
                    return false;
                }

                valid++;
                continue;
            }

            var diff = Math.Abs(a - b);
            if (diff > tolerance && diff > 1e-9 * Math.Max(1, Math.Max(Math.Abs(a), Math.Abs(b))))
            {
                if (!floats || Math.Round(a, options.Precision) != Math.Round(b, options.Precision))
                {
                    return false;
                }
            }

            valid++;
        }

        return valid > 0;
    }

    /// <summary>Sorted union of the symbols of both trees (renamed for non-strict comparison), or null if too many.</summary>
    private Dictionary<string, int>? Symbols(MathNode g, MathNode p)
    {
        var sg = new SortedSet<string>(StringComparer.Ordinal);
        var sp = new SortedSet<string>(StringComparer.Ordinal);
        Collect(g, sg);
        Collect(p, sp);
        var map = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var s in sg)
        {
            map[s] = map.Count;
        }

        if (!options.Strict && sg.Count == sp.Count && !sg.SetEquals(sp))
        {
            // Non-strict: variables are matched by sorted position, so f(x) and f(y) compare equal.
            var i = 0;
            foreach (var s in sp)
            {
                map.TryAdd(s, i++);
            }
        }
        else
        {
            foreach (var s in sp)
            {
                map.TryAdd(s, map.Count);
            }
        }

        return map.Count > MaxSymbols ? null : map;
    }

    private static void Collect(MathNode n, SortedSet<string> into)
    {
        if (n.Kind == MathKind.Symbol)
        {
            into.Add(n.Name);
            return;
        }

        foreach (var c in n.Children)
        {
            Collect(c, into);
        }
    }

    private static bool HasFloat(MathNode n)
    {
        if (n.Kind == MathKind.Number)
        {
            return n.IsFloat;
        }

        foreach (var c in n.Children)
        {
            if (HasFloat(c))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Exact rational value, or null when the tree is not a rational constant (or too large to compute).</summary>
    private BigRational? Exact(MathNode n)
    {
        budget.Tick();
        switch (n.Kind)
        {
            case MathKind.Number:
                return n.Value;
            case MathKind.Neg:
                return Exact(n.Children[0]) is BigRational negated ? -negated : null;
            case MathKind.Add:
                {
                    var acc = BigRational.Zero;
                    foreach (var c in n.Children)
                    {
                        if (Exact(c) is not BigRational v)
                        {
                            return null;
                        }

                        acc += v;
                    }

                    return acc;
                }

            case MathKind.Mul:
                {
                    var acc = BigRational.One;
                    foreach (var c in n.Children)
                    {
                        if (Exact(c) is not BigRational v)
                        {
                            return null;
                        }

                        acc *= v;
                    }

                    return acc;
                }

            case MathKind.Pow:
                {
                    if (Exact(n.Children[1]) is not BigRational e || !e.IsInteger || Exact(n.Children[0]) is not BigRational b)
                    {
                        return null;
                    }

                    if (b.IsZero && e.Num.Sign < 0)
                    {
                        return null;
                    }

                    return b.Pow(e.Num);
                }

            default:
                return null;
        }
    }

    private double Evaluate(MathNode n, Dictionary<string, int> symbols, int point)
    {
        budget.Tick();
        switch (n.Kind)
        {
            case MathKind.Number:
                return n.Value.ToDouble();
            case MathKind.Symbol:
                return Samples[point, symbols[n.Name]];
            case MathKind.Constant:
                return n.Name == "pi" ? Math.PI : double.PositiveInfinity;
            case MathKind.Neg:
                return -Evaluate(n.Children[0], symbols, point);
            case MathKind.Add:
                {
                    var acc = 0.0;
                    foreach (var c in n.Children)
                    {
                        acc += Evaluate(c, symbols, point);
                    }

                    return acc;
                }

            case MathKind.Mul:
                {
                    var acc = 1.0;
                    foreach (var c in n.Children)
                    {
                        acc *= Evaluate(c, symbols, point);
                    }

                    return acc;
                }

            case MathKind.Pow:
                {
                    var b = Evaluate(n.Children[0], symbols, point);
                    var e = Evaluate(n.Children[1], symbols, point);
                    if (b < 0 && Exact(n.Children[1]) is BigRational r && !r.IsInteger && !r.Den.IsEven)
                    {
                        // Odd roots of negatives are real: (-8)^(1/3) = -2.
                        return -Math.Pow(-b, e);
                    }

                    return Math.Pow(b, e);
                }

            case MathKind.Func:
                {
                    var x = Evaluate(n.Children[0], symbols, point);
                    return n.Name switch
                    {
                        "sin" => Math.Sin(x),
                        "cos" => Math.Cos(x),
                        "tan" => Math.Tan(x),
                        "sec" => 1 / Math.Cos(x),
                        "csc" => 1 / Math.Sin(x),
                        "cot" => 1 / Math.Tan(x),
                        "ln" => Math.Log(x),
                        "log" when n.Children.Length == 2 => Math.Log(x) / Math.Log(Evaluate(n.Children[1], symbols, point)),
                        "log" => Math.Log(x),
                        "lg" => Math.Log10(x),
                        "exp" => Math.Exp(x),
                        "arcsin" => Math.Asin(x),
                        "arccos" => Math.Acos(x),
                        "arctan" => Math.Atan(x),
                        "sinh" => Math.Sinh(x),
                        "cosh" => Math.Cosh(x),
                        "tanh" => Math.Tanh(x),
                        "abs" => Math.Abs(x),
                        "fact" => Factorial(x),
                        "binom" => Factorial(x) / (Factorial(Evaluate(n.Children[1], symbols, point)) * Factorial(x - Evaluate(n.Children[1], symbols, point))),
                        _ => double.NaN,
                    };
                }

            default:
                return double.NaN;
        }
    }

    private static double Factorial(double x)
    {
        if (x < 0 || x != Math.Floor(x) || x > 170)
        {
            return double.NaN;
        }

        var r = 1.0;
        for (var i = 2; i <= (int)x; i++)
        {
            r *= i;
        }

        return r;
    }

    /// <summary>Expands ± into a set of alternatives (1 ± √5 → {1 + √5, 1 - √5}); sets are flattened.</summary>
    private MathNode ExpandPlusMinus(MathNode n)
    {
        if (!HasPlusMinus(n))
        {
            return n;
        }

        if (n.Kind is MathKind.Set)
        {
            var items = new List<MathNode>();
            foreach (var c in n.Children)
            {
                var e = ExpandPlusMinus(c);
                if (e.Kind == MathKind.Set)
                {
                    items.AddRange(e.Children);
                }
                else
                {
                    items.Add(e);
                }
            }

            return MathNode.Set([.. items]);
        }

        if (!IsScalar(n) && n.Kind != MathKind.PlusMinus)
        {
            return n;
        }

        var variants = Variants(n);
        return variants.Count == 1 ? variants[0] : MathNode.Set([.. variants]);
    }

    private static bool HasPlusMinus(MathNode n)
    {
        if (n.Kind == MathKind.PlusMinus)
        {
            return true;
        }

        foreach (var c in n.Children)
        {
            if (HasPlusMinus(c))
            {
                return true;
            }
        }

        return false;
    }

    private List<MathNode> Variants(MathNode n)
    {
        budget.Tick();
        if (n.Kind == MathKind.PlusMinus)
        {
            var result = new List<MathNode>();
            foreach (var a in Variants(n.Children[0]))
            {
                foreach (var b in Variants(n.Children[1]))
                {
                    result.Add(MathNode.Add(a, b));
                    result.Add(MathNode.Add(a, MathNode.Neg(b)));
                }
            }

            return result.Count > 16 ? result[..16] : result;
        }

        if (!HasPlusMinus(n))
        {
            return [n];
        }

        // Only the first child holding a ± is expanded at this level; recursion covers the rest.
        for (var i = 0; i < n.Children.Length; i++)
        {
            if (!HasPlusMinus(n.Children[i]))
            {
                continue;
            }

            var result = new List<MathNode>();
            foreach (var v in Variants(n.Children[i]))
            {
                var children = (MathNode[])n.Children.Clone();
                children[i] = v;
                result.AddRange(Variants(Rebuild(n, children)));
            }

            return result.Count > 16 ? result[..16] : result;
        }

        return [n];
    }

    private static MathNode Rebuild(MathNode n, MathNode[] children) => n.Kind switch
    {
        MathKind.Add => MathNode.Nary(MathKind.Add, [.. children]),
        MathKind.Mul => MathNode.Nary(MathKind.Mul, [.. children]),
        MathKind.Pow => MathNode.Pow(children[0], children[1]),
        MathKind.Neg => MathNode.Neg(children[0]),
        MathKind.Func => children.Length == 1 ? MathNode.Func(n.Name, children[0]) : MathNode.Func(n.Name, children[0], children[1]),
        _ => n,
    };
}
