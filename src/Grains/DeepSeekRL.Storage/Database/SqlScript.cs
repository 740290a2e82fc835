using System.Text;

namespace DeepSeekRL.Storage.Database;

/// <summary>One statement of a SQL script and the 1-based line of the script on which it starts.</summary>
/// <param name="Text">The statement text, without the terminating semicolon.</param>
/// <param name="StartLine">The 1-based line of the script where <paramref name="Text"/> starts.</param>
public readonly record struct SqlStatement(string Text, int StartLine);

/// <summary>
/// Splits a PostgreSQL script into statements so that each can be run on its own and an error can be traced to the
/// script's line. Understands quoted strings, quoted identifiers, dollar quoting, line and (nested) block comments.
/// </summary>
/// <remarks>This is a lexer, not a parser: it only decides where statements end.</remarks>
public static class SqlScript
{
    /// <summary>Splits <paramref name="script"/> at top-level semicolons; empty statements are dropped.</summary>
    /// <param name="script">The script text.</param>
    /// <returns>The statements in order.</returns>
    public static IReadOnlyList<SqlStatement> Split(string script)
    {
        ArgumentNullException.ThrowIfNull(script);
        var statements = new List<SqlStatement>();
        var start = 0;
        var i = 0;
        while (i < script.Length)
        {
            var c = script[i];
            if (c == '\'' || c == '"')
            {
                i = SkipQuoted(script, i, c);
            }
            else if (c == '-' && Peek(script, i + 1) == '-')
            {
                var end = script.IndexOf('\n', i);
                i = end < 0 ? script.Length : end;
            }
            else if (c == '/' && Peek(script, i + 1) == '*')
            {
                i = SkipBlockComment(script, i);
            }
            else if (c == '$' && TryReadDollarTag(script, i, out var tag))
            {
                var close = script.IndexOf(tag, i + tag.Length, StringComparison.Ordinal);
                i = close < 0 ? script.Length : close + tag.Length;
            }
            else if (c == ';')
            {
                Add(statements, script, start, i);
                start = i + 1;
                i++;
            }
            else
            {
                i++;
            }
        }

        Add(statements, script, start, script.Length);
        return statements;
    }

    /// <summary>The 1-based line of <paramref name="text"/> holding the 0-based character <paramref name="index"/>.</summary>
    /// <param name="text">The text.</param>
    /// <param name="index">A character index, clamped to the text.</param>
    /// <returns>The line number.</returns>
    public static int LineOf(string text, int index)
    {
        ArgumentNullException.ThrowIfNull(text);
        var line = 1;
        var end = Math.Clamp(index, 0, text.Length);
        for (var k = 0; k < end; k++)
        {
            if (text[k] == '\n')
            {
                line++;
            }
        }

        return line;
    }

    private static void Add(List<SqlStatement> statements, string script, int start, int end)
    {
        // Skip leading whitespace and comments so that StartLine points at the statement's first token.
        var s = start;
        while (s < end)
        {
            if (char.IsWhiteSpace(script[s]))
            {
                s++;
            }
            else if (script[s] == '-' && Peek(script, s + 1) == '-')
            {
                var nl = script.IndexOf('\n', s);
                s = nl < 0 || nl > end ? end : nl + 1;
            }
            else if (script[s] == '/' && Peek(script, s + 1) == '*')
            {
                s = Math.Min(end, SkipBlockComment(script, s));
            }
            else
            {
                break;
            }
        }

        if (s < end)
        {
            statements.Add(new SqlStatement(script[s..end], LineOf(script, s)));
        }
    }

    private static char Peek(string s, int i) => i < s.Length ? s[i] : '\0';

    private static int SkipQuoted(string s, int i, char quote)
    {
        // A doubled quote is an escaped quote; E'' strings also allow backslash escapes.
        var escapes = quote == '\'' && i > 0 && (s[i - 1] == 'E' || s[i - 1] == 'e');
        i++;
        while (i < s.Length)
        {
            if (escapes && s[i] == '\\')
            {
                i += 2;
                continue;
            }

            if (s[i] == quote)
            {
                if (Peek(s, i + 1) == quote)
                {
                    i += 2;
                    continue;
                }

                return i + 1;
            }

            i++;
        }

        return s.Length;
    }

    private static int SkipBlockComment(string s, int i)
    {
        var depth = 0;
        while (i < s.Length)
        {
            if (s[i] == '/' && Peek(s, i + 1) == '*')
            {
                depth++;
                i += 2;
            }
            else if (s[i] == '*' && Peek(s, i + 1) == '/')
            {
                depth--;
                i += 2;
                if (depth == 0)
                {
                    return i;
                }
            }
            else
            {
                i++;
            }
        }

        return s.Length;
    }

    private static bool TryReadDollarTag(string s, int i, out string tag)
    {
        // $tag$ where tag is empty or an identifier not starting with a digit ($1 is a parameter).
        tag = string.Empty;
        if (i > 0 && (char.IsLetterOrDigit(s[i - 1]) || s[i - 1] == '_'))
        {
            return false;
        }

        var sb = new StringBuilder("$");
        var j = i + 1;
        while (j < s.Length && (char.IsLetterOrDigit(s[j]) || s[j] == '_'))
        {
            if (j == i + 1 && char.IsDigit(s[j]))
            {
                return false;
            }

            sb.Append(s[j]);
            j++;
        }

        if (j >= s.Length || s[j] != '$')
        {
            return false;
        }

        sb.Append('$');
        tag = sb.ToString();
        return true;
    }
}
