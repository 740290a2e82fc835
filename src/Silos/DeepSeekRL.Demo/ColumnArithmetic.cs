using System.Globalization;

namespace DeepSeekRL.Demo;

/// <summary>The worked column steps of one addition, subtraction or one-digit multiplication.</summary>
/// <param name="Lines">
/// One line per column, ones first, no words: <c>7+4=11</c>, <c>0+4+1=5</c> (carry in), <c>13-1-7=5</c> (a borrow:
/// the top digit plus ten, minus the borrow that came in, minus the bottom digit), <c>4*6+4=28</c>, each followed by a
/// space and the running result: the digits written so far, the newest first (<c>7+4=11 1</c>, <c>0+4+1=5 51</c>). No
/// line for the final carry: the last line's value gives the answer's leading digits, and its running result is the
/// whole answer without leading zeros (<c>6+8=14 1451</c>), which the boxed answer copies.
/// </param>
/// <param name="Answer">The number the written digits make (wrong when a column was made wrong).</param>
/// <param name="Carries">How many columns carry (<c>+</c>, <c>*</c>) or borrow (<c>-</c>).</param>
/// <param name="Digits">The digit written in each column (the last digit of its value), ones first (the final carry excluded).</param>
internal sealed record ColumnWork(IReadOnlyList<string> Lines, long Answer, int Carries, IReadOnlyList<int> Digits);

/// <summary>
/// School column arithmetic as the demo traces spell it out. A column can be made wrong on purpose: its stated value
/// gets another last digit, that digit is written, and the carry stays as it was, so the error reaches the answer.
/// </summary>
internal static class ColumnArithmetic
{
    /// <summary>Works <paramref name="a"/> <paramref name="op"/> <paramref name="b"/> column by column.</summary>
    /// <param name="a">The left operand (the larger for <c>-</c>; the multi-digit one for <c>*</c>).</param>
    /// <param name="op"><c>+</c>, <c>-</c> or <c>*</c>.</param>
    /// <param name="b">The right operand (one digit for <c>*</c>).</param>
    /// <param name="wrongColumn">The column to get wrong (0 = ones), or -1 for none.</param>
    /// <param name="wrongDigit">The digit to write there instead; must differ from the right one.</param>
    public static ColumnWork Work(long a, char op, long b, int wrongColumn, int wrongDigit)
    {
        var lines = new List<string>();
        var digits = new List<int>();
        var columns = op == '*' ? Length(a) : Math.Max(Length(a), Length(b));
        long answer = 0;
        long scale = 1;
        long carry = 0;
        var carries = 0;
        var written = string.Empty;
        for (var place = 0; place < columns; place++, scale *= 10)
        {
            var da = a / scale % 10;
            var db = b / scale % 10;
            long value;
            long carryOut;
            string lhs;
            switch (op)
            {
                case '+':
                    value = da + db + carry;
                    lhs = carry > 0 ? Invariant($"{da}+{db}+{carry}") : Invariant($"{da}+{db}");
                    carryOut = value / 10;
                    break;
                case '*':
                    value = (da * b) + carry;
                    lhs = carry > 0 ? Invariant($"{da}*{b}+{carry}") : Invariant($"{da}*{b}");
                    carryOut = value / 10;
                    break;
                case '-':
                    var top = da - carry;
                    var borrow = top < db;

                    // Borrowing ten from the next column writes the top digit with a leading 1 (da + 10).
                    var shown = borrow ? da + 10 : da;
                    lhs = carry > 0 ? Invariant($"{shown}-{carry}-{db}") : Invariant($"{shown}-{db}");
                    value = shown - carry - db;
                    carryOut = borrow ? 1 : 0;
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(op), op, "expected + - *");
            }

            var digit = (int)(value % 10);
            if (place == wrongColumn)
            {
                if (wrongDigit == digit || wrongDigit is < 0 or > 9)
                {
                    throw new ArgumentOutOfRangeException(nameof(wrongDigit), wrongDigit, "expected a digit other than the right one");
                }

                value += wrongDigit - digit;
                digit = wrongDigit;
            }

            digits.Add(digit);
            answer += digit * scale;

            // The running result: the digits written so far, the newest first; the last column writes its whole value
            // (the final carry included) and the result reads as the answer, without leading zeros.
            var last = place == columns - 1;
            written = last
                ? (answer + (op != '-' && carryOut > 0 ? carryOut * scale * 10 : 0)).ToString(CultureInfo.InvariantCulture)
                : Invariant($"{digit}") + written;
            lines.Add(lhs + Invariant($"={value} {written}"));
            carries += carryOut > 0 ? 1 : 0;
            carry = carryOut;
        }

        // The final carry has no line of its own: it is the leading digit of the last line's value.
        if (carry > 0 && op != '-')
        {
            answer += carry * scale;
        }

        return new ColumnWork(lines, answer, carries, digits);
    }

    private static int Length(long n) => n.ToString(CultureInfo.InvariantCulture).Length;

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
