using System.Globalization;
using System.Text;

namespace DeepSeekRL.Demo;

/// <summary>
/// A Countdown solution as a binary expression tree over the given numbers, with the integer arithmetic the demo
/// traces show step by step. Not a general evaluator: the reward side has its own (<c>CountdownEquation</c>).
/// </summary>
/// <param name="Op"><c>+ - * /</c>, or <c>'\0'</c> for a number.</param>
/// <param name="Number">The number of a leaf.</param>
/// <param name="Left">The left operand of an operation.</param>
/// <param name="Right">The right operand of an operation.</param>
internal sealed record CountdownExpression(char Op, long Number, CountdownExpression? Left, CountdownExpression? Right)
{
    /// <summary>Whether this is a number.</summary>
    public bool IsLeaf => Op == '\0';

    /// <summary>A number.</summary>
    public static CountdownExpression Leaf(long number) => new('\0', number, null, null);

    /// <summary>An operation.</summary>
    public static CountdownExpression Binary(char op, CountdownExpression left, CountdownExpression right) => new(op, 0, left, right);

    /// <summary>
    /// The value when every step stays a positive integer (exact division, positive difference), else
    /// <see langword="null"/>.
    /// </summary>
    public long? Evaluate()
    {
        if (IsLeaf)
        {
            return Number;
        }

        if (Left!.Evaluate() is not { } a || Right!.Evaluate() is not { } b)
        {
            return null;
        }

        return Apply(Op, a, b);
    }

    /// <summary>Applies one step; <see langword="null"/> when it leaves the positive integers.</summary>
    public static long? Apply(char op, long a, long b) => op switch
    {
        '+' => a + b,
        '-' => a > b ? a - b : null,
        '*' => a * b,
        '/' => b != 0 && a % b == 0 ? a / b : null,
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, "expected + - * /"),
    };

    /// <summary>The numbers at the leaves, left to right.</summary>
    public IReadOnlyList<long> Leaves()
    {
        var list = new List<long>();
        Collect(this, list);
        return list;

        static void Collect(CountdownExpression e, List<long> list)
        {
            if (e.IsLeaf)
            {
                list.Add(e.Number);
                return;
            }

            Collect(e.Left!, list);
            Collect(e.Right!, list);
        }
    }

    /// <summary>The same tree with leaf <paramref name="index"/> (left to right) replaced by <paramref name="number"/>.</summary>
    public CountdownExpression WithLeaf(int index, long number)
    {
        var seen = 0;
        return Replace(this, index, number, ref seen);

        static CountdownExpression Replace(CountdownExpression e, int index, long number, ref int seen)
        {
            if (e.IsLeaf)
            {
                return seen++ == index ? Leaf(number) : e;
            }

            var left = Replace(e.Left!, index, number, ref seen);
            var right = Replace(e.Right!, index, number, ref seen);
            return Binary(e.Op, left, right);
        }
    }

    /// <summary>The steps in evaluation order, one per operation, without spaces: <c>25-5=20</c>. The tree must evaluate.</summary>
    public IReadOnlyList<string> Steps()
    {
        var steps = new List<string>();
        Walk(this, steps);
        return steps;

        static long Walk(CountdownExpression e, List<string> steps)
        {
            if (e.IsLeaf)
            {
                return e.Number;
            }

            var a = Walk(e.Left!, steps);
            var b = Walk(e.Right!, steps);
            var value = Apply(e.Op, a, b) ?? throw new InvalidOperationException("the expression leaves the positive integers");
            steps.Add(string.Create(CultureInfo.InvariantCulture, $"{a}{e.Op}{b}={value}"));
            return value;
        }
    }

    /// <summary>The equation with the fewest parentheses that keep its meaning: <c>(25 - 5) * 5</c>.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        Render(this, sb);
        return sb.ToString();
    }

    private static int Precedence(char op) => op is '*' or '/' ? 2 : 1;

    private static void Render(CountdownExpression e, StringBuilder sb)
    {
        if (e.IsLeaf)
        {
            sb.Append(e.Number.ToString(CultureInfo.InvariantCulture));
            return;
        }

        var p = Precedence(e.Op);
        var left = e.Left!;
        var right = e.Right!;
        RenderChild(left, sb, !left.IsLeaf && Precedence(left.Op) < p);
        sb.Append(' ').Append(e.Op).Append(' ');
        // a - (b + c) and a / (b * c) keep their parentheses: the right operand of - and / does not associate.
        RenderChild(right, sb, !right.IsLeaf && (Precedence(right.Op) < p || (Precedence(right.Op) == p && e.Op is '-' or '/')));
    }

    private static void RenderChild(CountdownExpression e, StringBuilder sb, bool parenthesize)
    {
        if (parenthesize)
        {
            sb.Append('(');
        }

        Render(e, sb);
        if (parenthesize)
        {
            sb.Append(')');
        }
    }

    /// <summary>Parses an equation written by <see cref="ToString"/> (integers, <c>+ - * /</c>, parentheses, spaces).</summary>
    /// <exception cref="FormatException">The text is not such an equation.</exception>
    public static CountdownExpression Parse(string text)
    {
        var pos = 0;
        var e = Sum(text, ref pos);
        SkipSpace(text, ref pos);
        return pos == text.Length ? e : throw new FormatException($"unexpected '{text[pos]}' at {pos} in '{text}'");
    }

    private static CountdownExpression Sum(string s, ref int pos)
    {
        var e = Product(s, ref pos);
        while (Next(s, ref pos) is '+' or '-')
        {
            var op = s[pos++];
            e = Binary(op, e, Product(s, ref pos));
        }

        return e;
    }

    private static CountdownExpression Product(string s, ref int pos)
    {
        var e = Primary(s, ref pos);
        while (Next(s, ref pos) is '*' or '/')
        {
            var op = s[pos++];
            e = Binary(op, e, Primary(s, ref pos));
        }

        return e;
    }

    private static CountdownExpression Primary(string s, ref int pos)
    {
        if (Next(s, ref pos) == '(')
        {
            pos++;
            var e = Sum(s, ref pos);
            if (Next(s, ref pos) != ')')
            {
                throw new FormatException($"expected ')' at {pos} in '{s}'");
            }

            pos++;
            return e;
        }

        var start = pos;
        while (pos < s.Length && char.IsAsciiDigit(s[pos]))
        {
            pos++;
        }

        return pos > start
            ? Leaf(long.Parse(s.AsSpan(start, pos - start), NumberStyles.None, CultureInfo.InvariantCulture))
            : throw new FormatException($"expected a number at {start} in '{s}'");
    }

    private static char Next(string s, ref int pos)
    {
        SkipSpace(s, ref pos);
        return pos < s.Length ? s[pos] : '\0';
    }

    private static void SkipSpace(string s, ref int pos)
    {
        while (pos < s.Length && s[pos] == ' ')
        {
            pos++;
        }
    }
}
