namespace DeepSeekRL.Rewards.Countdown;

/// <summary>
/// A recursive-descent evaluator for Countdown equations: numbers, <c>+ - * /</c>, unary signs and parentheses,
/// with Python's precedence and true division. No <c>eval</c>; nothing is allocated.
/// </summary>
/// <remarks>
/// Grammar (Python's): <c>expr = term (('+'|'-') term)*</c>; <c>term = unary (('*'|'/'|'//') unary)*</c>;
/// <c>unary = ('+'|'-') unary | power</c>; <c>power = primary ['**' unary]</c>; <c>primary = number | '(' expr ')'</c>.
/// Numbers are <c>12</c>, <c>1.5</c>, <c>5.</c>, <c>.5</c>; an integer with a leading zero (<c>05</c>) is a syntax
/// error, as in Python 3. <c>**</c> and <c>//</c> parse only when enabled.
/// </remarks>
internal ref struct CountdownEquation
{
    private readonly ReadOnlySpan<char> _text;
    private readonly bool _pythonOperators;
    private int _pos;
    private bool _failed;

    private CountdownEquation(ReadOnlySpan<char> text, bool pythonOperators)
    {
        _text = text;
        _pythonOperators = pythonOperators;
    }

    /// <summary>Whether every character is a digit, <c>+ - * / ( ) .</c> or white space (TinyZero's filter).</summary>
    /// <param name="equation">The equation.</param>
    /// <returns><see langword="true"/> when only allowed characters occur (and at least one).</returns>
    public static bool HasOnlyAllowedCharacters(ReadOnlySpan<char> equation)
    {
        if (equation.IsEmpty)
        {
            return false;
        }

        foreach (var c in equation)
        {
            if (!char.IsAsciiDigit(c) && c is not ('+' or '-' or '*' or '/' or '(' or ')' or '.') && !char.IsWhiteSpace(c))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Evaluates an equation.</summary>
    /// <param name="equation">The equation.</param>
    /// <param name="pythonOperators">Whether <c>**</c> and <c>//</c> are operators.</param>
    /// <param name="value">Its value.</param>
    /// <returns>Whether it parsed and evaluated (no division by zero, finite result).</returns>
    public static bool TryEvaluate(ReadOnlySpan<char> equation, bool pythonOperators, out double value)
    {
        var parser = new CountdownEquation(equation, pythonOperators);
        value = parser.Expression(0);
        parser.SkipSpace();
        return !parser._failed && parser._pos == parser._text.Length && double.IsFinite(value);
    }

    private double Expression(int depth)
    {
        var value = Term(depth);
        while (!_failed)
        {
            SkipSpace();
            if (Peek() == '+')
            {
                _pos++;
                value += Term(depth);
            }
            else if (Peek() == '-')
            {
                _pos++;
                value -= Term(depth);
            }
            else
            {
                break;
            }
        }

        return value;
    }

    private double Term(int depth)
    {
        var value = Unary(depth);
        while (!_failed)
        {
            SkipSpace();
            if (Peek() == '*' && Peek(1) != '*')
            {
                _pos++;
                value *= Unary(depth);
            }
            else if (Peek() == '/' && Peek(1) != '/')
            {
                _pos++;
                var divisor = Unary(depth);
                value = divisor == 0 ? Fail() : value / divisor;
            }
            else if (Peek() == '/' && _pythonOperators)
            {
                _pos += 2;
                var divisor = Unary(depth);
                value = divisor == 0 ? Fail() : Math.Floor(value / divisor);
            }
            else
            {
                break; // a '**' or '//' that is not enabled is left unread and fails the whole parse
            }
        }

        return value;
    }

    private double Unary(int depth)
    {
        SkipSpace();
        if (depth > 200)
        {
            return Fail(); // Python's parser has a nesting limit too; this keeps the stack bounded
        }

        if (Peek() == '-')
        {
            _pos++;
            return -Unary(depth + 1);
        }

        if (Peek() == '+')
        {
            _pos++;
            return Unary(depth + 1);
        }

        return Power(depth);
    }

    private double Power(int depth)
    {
        var value = Primary(depth);
        SkipSpace();
        if (_pythonOperators && Peek() == '*' && Peek(1) == '*')
        {
            _pos += 2;
            var exponent = Unary(depth + 1);
            if (value == 0 && exponent < 0)
            {
                return Fail(); // ZeroDivisionError in Python
            }

            value = Math.Pow(value, exponent);
        }

        return value;
    }

    private double Primary(int depth)
    {
        SkipSpace();
        if (_failed)
        {
            return 0;
        }

        if (Peek() == '(')
        {
            _pos++;
            var value = Expression(depth + 1);
            SkipSpace();
            if (Peek() != ')')
            {
                return Fail();
            }

            _pos++;
            return value;
        }

        return Number();
    }

    private double Number()
    {
        var start = _pos;
        var integerDigits = 0;
        while (char.IsAsciiDigit(Peek()))
        {
            _pos++;
            integerDigits++;
        }

        var fractionDigits = 0;
        var hasPoint = false;
        if (Peek() == '.')
        {
            hasPoint = true;
            _pos++;
            while (char.IsAsciiDigit(Peek()))
            {
                _pos++;
                fractionDigits++;
            }
        }

        if (integerDigits + fractionDigits == 0)
        {
            return Fail();
        }

        var literal = _text[start.._pos];
        if (!hasPoint && integerDigits > 1 && literal[0] == '0' && literal.ContainsAnyExcept('0'))
        {
            return Fail(); // "05": leading zeros in decimal integer literals are not permitted (Python 3)
        }

        return double.Parse(literal, System.Globalization.NumberStyles.AllowDecimalPoint, System.Globalization.CultureInfo.InvariantCulture);
    }

    private void SkipSpace()
    {
        while (_pos < _text.Length && char.IsWhiteSpace(_text[_pos]))
        {
            _pos++;
        }
    }

    private readonly char Peek(int ahead = 0) => _pos + ahead < _text.Length ? _text[_pos + ahead] : '\0';

    private double Fail()
    {
        _failed = true;
        _pos = _text.Length;
        return double.NaN;
    }
}
