// Recursive-descent parser for normalised LaTeX / plain math answers into MathNode trees. It covers what answers
// use (numbers, fractions, radicals, powers, functions, tuples, sets, intervals, relations, matrices); it is not a
// LaTeX engine. Nesting deeper than MaxDepth fails the parse instead of overflowing the stack.
using System.Globalization;

namespace DeepSeekRL.Rewards.Accuracy;

/// <summary>Parses one normalised answer string; single use.</summary>
internal sealed class MathParser
{
    private const int MaxDepth = 200;

    private static readonly HashSet<string> Functions =
    [
        "sin", "cos", "tan", "sec", "csc", "cot", "ln", "log", "exp", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
        "lg",
    ];

    private static readonly HashSet<string> WrapCommands =
    [
        "text", "mathrm", "textbf", "mbox", "mathbf", "textnormal", "operatorname", "mathit", "boldsymbol", "vec", "overline",
        "hat", "bar", "mathsf", "textit", "emph", "mathcal", "overrightarrow", "widehat", "tilde", "dot",
    ];

    private readonly string _s;
    private readonly VerifyBudget _budget;
    private int _p;
    private int _depth;
    private int _absDepth;

    private MathParser(string s, VerifyBudget budget)
    {
        _s = s;
        _budget = budget;
    }

    /// <summary>Parses the whole string, or returns null when it is not a well-formed answer.</summary>
    public static MathNode? TryParse(string s, VerifyBudget budget)
    {
        var parser = new MathParser(s, budget);
        try
        {
            var items = parser.ParseList();
            parser.SkipWs();
            if (parser._p != s.Length)
            {
                return null;
            }

            return items.Count == 1 ? items[0] : MathNode.Set([.. items]);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private static FormatException Fail(string why) => new(why);

    private char Cur => _p < _s.Length ? _s[_p] : '\0';

    private void SkipWs()
    {
        while (_p < _s.Length && char.IsWhiteSpace(_s[_p]))
        {
            _p++;
        }
    }

    private bool At(string token)
    {
        SkipWs();
        return string.CompareOrdinal(_s, _p, token, 0, token.Length) == 0;
    }

    /// <summary>At a command <c>\name</c> with no letter following (so <c>\le</c> does not match <c>\left</c>).</summary>
    private bool AtCommand(string name)
    {
        SkipWs();
        if (Cur != '\\' || string.CompareOrdinal(_s, _p + 1, name, 0, name.Length) != 0)
        {
            return false;
        }

        var end = _p + 1 + name.Length;
        return end >= _s.Length || !char.IsAsciiLetter(_s[end]);
    }

    private bool Eat(string token)
    {
        if (At(token))
        {
            _p += token.Length;
            return true;
        }

        return false;
    }

    private bool EatCommand(string name)
    {
        if (AtCommand(name))
        {
            _p += name.Length + 1;
            return true;
        }

        return false;
    }

    private void Enter()
    {
        _budget.Tick();
        if (++_depth > MaxDepth)
        {
            throw Fail("nested too deeply");
        }
    }

    private bool AtListEnd()
    {
        SkipWs();
        return _p >= _s.Length || Cur is ')' or ']' or '}' or '&' || At("\\}") || At("\\\\") || AtCommand("end");
    }

    private List<MathNode> ParseList()
    {
        var items = new List<MathNode>();
        if (AtListEnd())
        {
            return items;
        }

        items.Add(ParseRelation());
        while (Eat(",") || Eat(";"))
        {
            if (AtListEnd())
            {
                break;
            }

            items.Add(ParseRelation());
        }

        return items;
    }

    private string? TryRelOp()
    {
        SkipWs();
        if (Eat("<=") || EatCommand("leq") || EatCommand("le") || EatCommand("leqslant"))
        {
            return "<=";
        }

        if (Eat(">=") || EatCommand("geq") || EatCommand("ge") || EatCommand("geqslant"))
        {
            return ">=";
        }

        if (Eat("!=") || EatCommand("neq") || EatCommand("ne"))
        {
            return "!=";
        }

        if (Eat("=") || EatCommand("approx") || EatCommand("equiv"))
        {
            return _s[_p - 1] == '=' ? "=" : "~";
        }

        if (Eat("<") || EatCommand("lt"))
        {
            return "<";
        }

        if (Eat(">") || EatCommand("gt"))
        {
            return ">";
        }

        return EatCommand("in") ? "in" : null;
    }

    private MathNode ParseRelation()
    {
        var first = ParseUnion();
        var op = TryRelOp();
        if (op is null)
        {
            return first;
        }

        var sides = new List<MathNode> { first };
        var ops = new List<string>();
        while (op is not null)
        {
            ops.Add(op);
            sides.Add(ParseUnion());
            op = TryRelOp();
        }

        return MathNode.Relation(sides, ops);
    }

    private MathNode ParseUnion()
    {
        var first = ParseRatio();
        if (!AtCommand("cup"))
        {
            return first;
        }

        var parts = new List<MathNode> { first };
        while (EatCommand("cup"))
        {
            parts.Add(ParseRatio());
        }

        return MathNode.Union(parts);
    }

    private MathNode ParseRatio()
    {
        var first = ParseAdditive();
        if (!At(":"))
        {
            return first;
        }

        var parts = new List<MathNode> { first };
        while (Eat(":"))
        {
            parts.Add(ParseAdditive());
        }

        return MathNode.Ratio(parts);
    }

    private MathNode ParseAdditive()
    {
        var terms = new List<MathNode> { ParseTerm() };
        while (true)
        {
            _budget.Tick();
            if (Eat("+"))
            {
                terms.Add(ParseTerm());
            }
            else if (Eat("-"))
            {
                terms.Add(MathNode.Neg(ParseTerm()));
            }
            else if (EatCommand("pm"))
            {
                var left = MathNode.Nary(MathKind.Add, terms);
                terms = [MathNode.PlusMinus(left, ParseTerm())];
            }
            else if (EatCommand("mp"))
            {
                var left = MathNode.Nary(MathKind.Add, terms);
                terms = [MathNode.PlusMinus(left, MathNode.Neg(ParseTerm()))];
            }
            else
            {
                return MathNode.Nary(MathKind.Add, terms);
            }
        }
    }

    private bool StartsPrimary()
    {
        SkipWs();
        var c = Cur;
        if (char.IsAsciiDigit(c) || char.IsAsciiLetter(c) || c is '(')
        {
            return true;
        }

        if (c == '|')
        {
            return _absDepth == 0;
        }

        if (c == '{')
        {
            return true;
        }

        if (c == '\\')
        {
            if (At("\\{") || At("\\}") || At("\\\\"))
            {
                return At("\\{");
            }

            var name = PeekCommandName();
            return name is not ("cdot" or "times" or "div" or "pm" or "mp" or "cup" or "le" or "leq" or "ge" or "geq" or "ne"
                or "neq" or "lt" or "gt" or "approx" or "in" or "end" or "equiv" or "leqslant" or "geqslant" or "and" or "or");
        }

        return false;
    }

    private string PeekCommandName()
    {
        var i = _p + 1;
        while (i < _s.Length && char.IsAsciiLetter(_s[i]))
        {
            i++;
        }

        return _s[(_p + 1)..i];
    }

    private MathNode ParseTerm()
    {
        var factors = new List<MathNode> { ParseUnary() };
        while (true)
        {
            _budget.Tick();
            if (Eat("*") || EatCommand("cdot") || EatCommand("times"))
            {
                factors.Add(ParseUnary());
            }
            else if (Eat("/") || EatCommand("div"))
            {
                factors.Add(MathNode.Inverse(ParseUnary()));
            }
            else if (StartsPrimary())
            {
                factors.Add(ParsePower());
            }
            else
            {
                return MathNode.Nary(MathKind.Mul, factors);
            }
        }
    }

    private MathNode ParseUnary()
    {
        Enter();
        try
        {
            if (Eat("-"))
            {
                return MathNode.Neg(ParseUnary());
            }

            if (Eat("+"))
            {
                return ParseUnary();
            }

            if (EatCommand("pm"))
            {
                return MathNode.PlusMinus(MathNode.Number(BigRational.Zero, false), ParseUnary());
            }

            return ParsePower();
        }
        finally
        {
            _depth--;
        }
    }

    private MathNode ParsePower()
    {
        var b = ParsePostfix();
        SkipWs();
        if (Eat("^"))
        {
            var e = ParseScriptArgument();
            return ParsePostfixOps(MathNode.Pow(b, e));
        }

        return b;
    }

    /// <summary>The argument of <c>^</c>, <c>\frac</c> or <c>\sqrt</c>: a braced group or a single character/command.</summary>
    private MathNode ParseScriptArgument()
    {
        SkipWs();
        Enter();
        try
        {
            if (Cur == '{')
            {
                return ParseBraced();
            }

            if (char.IsAsciiDigit(Cur))
            {
                var d = Cur - '0';
                _p++;
                return MathNode.Number(BigRational.FromInt(d), false);
            }

            if (Cur == '-')
            {
                _p++;
                return MathNode.Neg(ParseScriptArgument());
            }

            if (char.IsAsciiLetter(Cur))
            {
                return MathNode.Symbol(_s[_p++].ToString());
            }

            if (Cur is '(' or '\\')
            {
                return ParsePrimary();
            }

            throw Fail("bad script argument");
        }
        finally
        {
            _depth--;
        }
    }

    private MathNode ParseBraced()
    {
        if (!Eat("{"))
        {
            throw Fail("expected {");
        }

        var items = ParseList();
        if (!Eat("}"))
        {
            throw Fail("expected }");
        }

        return items.Count switch
        {
            0 => throw Fail("empty group"),
            1 => items[0],
            _ => MathNode.Set([.. items]),
        };
    }

    private string ReadRawGroup()
    {
        SkipWs();
        if (Cur != '{')
        {
            if (_p < _s.Length && !char.IsWhiteSpace(Cur))
            {
                return _s[_p++].ToString();
            }

            throw Fail("expected group");
        }

        var depth = 0;
        var start = _p;
        for (; _p < _s.Length; _p++)
        {
            if (_s[_p] == '{')
            {
                depth++;
            }
            else if (_s[_p] == '}' && --depth == 0)
            {
                _p++;
                return _s[(start + 1)..(_p - 1)].Trim();
            }
        }

        throw Fail("unbalanced braces");
    }

    private MathNode ParsePostfix() => ParsePostfixOps(ParsePrimary());

    private MathNode ParsePostfixOps(MathNode node)
    {
        while (true)
        {
            if (_p < _s.Length && _s[_p] == '!' && (_p + 1 >= _s.Length || _s[_p + 1] != '='))
            {
                _p++;
                node = MathNode.Func("fact", node);
            }
            else if (_p < _s.Length && _s[_p] == '_')
            {
                _p++;
                var sub = ReadRawGroup().Replace(" ", string.Empty, StringComparison.Ordinal);
                node = node.Kind switch
                {
                    MathKind.Symbol => MathNode.Symbol(node.Name + "_" + sub),
                    MathKind.Number => MathNode.Symbol(node.Value + "_" + sub),
                    _ => node,
                };
            }
            else if (_p < _s.Length && _s[_p] == '\'' && node.Kind == MathKind.Symbol)
            {
                _p++;
                node = MathNode.Symbol(node.Name + "'");
            }
            else
            {
                return node;
            }
        }
    }

    private MathNode ParseNumber()
    {
        var start = _p;
        while (_p < _s.Length && char.IsAsciiDigit(_s[_p]))
        {
            _p++;
        }

        // Thousands separators: 7,425,000 (groups of exactly three digits after a 1-3 digit head).
        if (_p - start <= 3 && _s[start] != '0')
        {
            var q = _p;
            var groups = 0;
            while (q < _s.Length && _s[q] == ',' && HasDigits(q + 1, 3) && (q + 4 >= _s.Length || !char.IsAsciiDigit(_s[q + 4])))
            {
                q += 4;
                groups++;
            }

            if (groups > 1)
            {
                _p = q;
            }
        }

        if (_p < _s.Length && _s[_p] == '.' && _p + 1 < _s.Length && char.IsAsciiDigit(_s[_p + 1]))
        {
            _p++;
            while (_p < _s.Length && char.IsAsciiDigit(_s[_p]))
            {
                _p++;
            }
        }

        if (_p + 1 < _s.Length && (_s[_p] is 'e' or 'E')
            && (char.IsAsciiDigit(_s[_p + 1]) || (_s[_p + 1] is '-' or '+' && _p + 2 < _s.Length && char.IsAsciiDigit(_s[_p + 2]))))
        {
            _p += 2;
            while (_p < _s.Length && char.IsAsciiDigit(_s[_p]))
            {
                _p++;
            }
        }

        var text = _s[start.._p].Replace(",", string.Empty, StringComparison.Ordinal);
        if (!BigRational.TryParseDecimal(text, out var value, out var isFloat))
        {
            throw Fail("bad number");
        }

        return MathNode.Number(value, isFloat);
    }

    private bool HasDigits(int from, int count)
    {
        if (from + count > _s.Length)
        {
            return false;
        }

        for (var i = from; i < from + count; i++)
        {
            if (!char.IsAsciiDigit(_s[i]))
            {
                return false;
            }
        }

        return true;
    }

    private MathNode ParsePrimary()
    {
        Enter();
        try
        {
            SkipWs();
            var c = Cur;
            if (char.IsAsciiDigit(c) || (c == '.' && _p + 1 < _s.Length && char.IsAsciiDigit(_s[_p + 1])))
            {
                return ParseNumber();
            }

            if (char.IsAsciiLetter(c))
            {
                _p++;
                return MathNode.Symbol(c.ToString());
            }

            switch (c)
            {
                case '(':
                case '[':
                    return ParseBracket();
                case '{':
                    return ParseBraced();
                case '|':
                    {
                        _p++;
                        _absDepth++;
                        var inner = ParseAdditive();
                        _absDepth--;
                        if (!Eat("|"))
                        {
                            throw Fail("unclosed |");
                        }

                        return MathNode.Func("abs", inner);
                    }

                case '\\':
                    return ParseCommand();
                default:
                    throw Fail("unexpected character");
            }
        }
        finally
        {
            _depth--;
        }
    }

    private MathNode ParseBracket()
    {
        var open = _s[_p++];
        var items = ParseList();
        SkipWs();
        var close = Cur;
        if (close is not (')' or ']'))
        {
            throw Fail("unclosed bracket");
        }

        _p++;
        if (items.Count == 0)
        {
            throw Fail("empty brackets");
        }

        if (items.Count == 1)
        {
            if (open == '(' && close == ')')
            {
                return items[0];
            }

            if (open == '[' && close == ']')
            {
                return items[0];
            }

            throw Fail("mismatched brackets");
        }

        if (items.Count == 2 && (open == '[' || close == ']'))
        {
            return MathNode.Interval(items[0], items[1], open == '[', close == ']');
        }

        return open == '(' && close == ')' ? MathNode.Tuple([.. items]) : throw Fail("bad bracket list");
    }

    private MathNode ParseCommand()
    {
        if (Eat("\\{"))
        {
            var items = ParseList();
            if (!Eat("\\}"))
            {
                throw Fail("unclosed \\{");
            }

            return MathNode.Set([.. items]);
        }

        _p++;
        var start = _p;
        while (_p < _s.Length && char.IsAsciiLetter(_s[_p]))
        {
            _p++;
        }

        var name = _s[start.._p];
        switch (name)
        {
            case "frac":
                {
                    var a = ParseScriptArgument();
                    var b = ParseScriptArgument();
                    return MathNode.Mul(a, MathNode.Inverse(b));
                }

            case "sqrt":
                {
                    MathNode? index = null;
                    if (Eat("["))
                    {
                        var items = ParseList();
                        if (items.Count != 1 || !Eat("]"))
                        {
                            throw Fail("bad root index");
                        }

                        index = items[0];
                    }

                    var arg = ParseScriptArgument();
                    return MathNode.Pow(arg, index is null ? MathNode.Number(new BigRational(1, 2), false) : MathNode.Inverse(index));
                }

            case "binom":
                return MathNode.Func("binom", ParseScriptArgument(), ParseScriptArgument());
            case "pi":
                return MathNode.Constant("pi");
            case "infty" or "infin":
                return MathNode.Constant("inf");
            case "begin":
                return ParseEnvironment();
            case "boxed" or "fbox":
                return ParseBraced();
            case "":
                throw Fail("stray backslash");
        }

        if (WrapCommands.Contains(name))
        {
            var raw = ReadRawGroup();
            if (raw.Length > 0 && (char.IsAsciiDigit(raw[0]) || raw[0] == '\\'))
            {
                return TryParse(raw, _budget) ?? throw Fail("bad wrapped content");
            }

            return MathNode.Symbol(raw.Replace(" ", string.Empty, StringComparison.Ordinal));
        }

        if (Functions.Contains(name))
        {
            MathNode? power = null;
            MathNode? logBase = null;
            if (name == "log" && Eat("_"))
            {
                logBase = ParseScriptArgument();
            }

            if (Eat("^"))
            {
                power = ParseScriptArgument();
            }

            SkipWs();
            var arg = Cur == '(' ? ParsePrimary() : ParsePower();
            var f = logBase is null ? MathNode.Func(name, arg) : MathNode.Func("log", arg, logBase);
            return power is null ? f : MathNode.Pow(f, power);
        }

        return MathNode.Symbol("\\" + name);
    }

    private MathNode ParseEnvironment()
    {
        var env = ReadRawGroup();
        if (env is "array")
        {
            ReadRawGroup();
        }

        var cells = new List<MathNode>();
        var cols = -1;
        var rowCount = 0;
        while (true)
        {
            _budget.Tick();
            var row = 0;
            while (true)
            {
                var items = ParseList();
                if (items.Count > 1)
                {
                    cells.Add(MathNode.Set([.. items]));
                }
                else if (items.Count == 1)
                {
                    cells.Add(items[0]);
                }
                else if (!AtCommand("end") || row > 0)
                {
                    throw Fail("empty matrix cell");
                }

                if (items.Count > 0)
                {
                    row++;
                }

                if (!Eat("&"))
                {
                    break;
                }
            }

            if (row > 0)
            {
                if (cols >= 0 && cols != row)
                {
                    throw Fail("ragged matrix");
                }

                cols = row;
                rowCount++;
            }

            if (Eat("\\\\"))
            {
                continue;
            }

            if (EatCommand("end"))
            {
                ReadRawGroup();
                break;
            }

            throw Fail("bad environment");
        }

        return cols <= 0 ? throw Fail("empty matrix") : MathNode.Matrix([.. cells], cols);
    }

    /// <summary>For diagnostics: the canonical text of a parsed number.</summary>
    public static string Describe(MathNode node) => node.Kind == MathKind.Number
        ? node.Value.ToString()
        : node.Kind.ToString().ToLower(CultureInfo.InvariantCulture);
}
