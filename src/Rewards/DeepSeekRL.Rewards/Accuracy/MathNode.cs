// The verifier's expression tree: what the LaTeX/plain-math parser produces and the equivalence checker walks.
// Subtraction is Add with Neg, division is Mul with Pow(x, -1); relations keep their chain of sides.
namespace DeepSeekRL.Rewards.Accuracy;

/// <summary>Node kinds of the verifier's expression tree.</summary>
internal enum MathKind
{
    Number,
    Symbol,
    Constant,
    Add,
    Mul,
    Pow,
    Neg,
    Func,
    PlusMinus,
    Tuple,
    Set,
    Interval,
    Union,
    Ratio,
    Relation,
    Matrix,
    Text,
}

/// <summary>One node of the expression tree; immutable once built.</summary>
internal sealed class MathNode
{
    private MathNode(MathKind kind) => Kind = kind;

    public MathKind Kind { get; private init; }

    public BigRational Value { get; private init; }

    /// <summary>True for a number written with a decimal point or exponent (compared after rounding).</summary>
    public bool IsFloat { get; private init; }

    public string Name { get; private init; } = string.Empty;

    public MathNode[] Children { get; private init; } = [];

    /// <summary>Relation operators between consecutive sides: = &lt; &lt;= &gt; &gt;= != in.</summary>
    public string[] Ops { get; private init; } = [];

    public bool LeftClosed { get; private init; }

    public bool RightClosed { get; private init; }

    public int Cols { get; private init; }

    public static readonly MathNode MinusOne = Number(BigRational.FromInt(-1), false);

    public static MathNode Number(BigRational value, bool isFloat) => new(MathKind.Number) { Value = value, IsFloat = isFloat };

    public static MathNode Symbol(string name) => new(MathKind.Symbol) { Name = name };

    public static MathNode Constant(string name) => new(MathKind.Constant) { Name = name };

    public static MathNode Text(string text) => new(MathKind.Text) { Name = text };

    public static MathNode Func(string name, MathNode arg) => new(MathKind.Func) { Name = name, Children = [arg] };

    public static MathNode Func(string name, MathNode arg, MathNode arg2) => new(MathKind.Func) { Name = name, Children = [arg, arg2] };

    public static MathNode Neg(MathNode x) => new(MathKind.Neg) { Children = [x] };

    public static MathNode Pow(MathNode b, MathNode e) => new(MathKind.Pow) { Children = [b, e] };

    public static MathNode Inverse(MathNode x) => Pow(x, MinusOne);

    public static MathNode Nary(MathKind kind, List<MathNode> items) => items.Count == 1 ? items[0] : new(kind) { Children = [.. items] };

    public static MathNode PlusMinus(MathNode a, MathNode b) => new(MathKind.PlusMinus) { Children = [a, b] };

    public static MathNode Tuple(MathNode[] items) => new(MathKind.Tuple) { Children = items };

    public static MathNode Set(MathNode[] items) => new(MathKind.Set) { Children = items };

    public static MathNode Interval(MathNode lo, MathNode hi, bool leftClosed, bool rightClosed) =>
        new(MathKind.Interval) { Children = [lo, hi], LeftClosed = leftClosed, RightClosed = rightClosed };

    public static MathNode Union(List<MathNode> parts) => Nary(MathKind.Union, parts);

    public static MathNode Ratio(List<MathNode> parts) => Nary(MathKind.Ratio, parts);

    public static MathNode Relation(List<MathNode> sides, List<string> ops) => new(MathKind.Relation) { Children = [.. sides], Ops = [.. ops] };

    public static MathNode Matrix(MathNode[] cells, int cols) => new(MathKind.Matrix) { Children = cells, Cols = cols };

    public static MathNode Add(MathNode a, MathNode b) => new(MathKind.Add) { Children = [a, b] };

    public static MathNode Mul(MathNode a, MathNode b) => new(MathKind.Mul) { Children = [a, b] };
}
