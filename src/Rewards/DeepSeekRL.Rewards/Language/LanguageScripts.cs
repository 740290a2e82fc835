using System.Collections.Frozen;

namespace DeepSeekRL.Rewards.Language;

/// <summary>Maps a language code (ISO 639-1) or a script name to the set of <see cref="Script"/>s it is written in.</summary>
internal static class LanguageScripts
{
    private const int Latin = 1 << (int)Script.Latin;

    private static readonly FrozenDictionary<string, int> Map = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase)
    {
        ["en"] = Latin, ["fr"] = Latin, ["de"] = Latin, ["es"] = Latin, ["it"] = Latin, ["pt"] = Latin,
        ["nl"] = Latin, ["sv"] = Latin, ["da"] = Latin, ["no"] = Latin, ["nb"] = Latin, ["fi"] = Latin,
        ["pl"] = Latin, ["cs"] = Latin, ["sk"] = Latin, ["ro"] = Latin, ["hu"] = Latin, ["tr"] = Latin,
        ["vi"] = Latin, ["id"] = Latin, ["ms"] = Latin, ["ca"] = Latin, ["hr"] = Latin, ["sl"] = Latin,
        ["zh"] = 1 << (int)Script.Han,
        ["ja"] = (1 << (int)Script.Han) | (1 << (int)Script.Hiragana) | (1 << (int)Script.Katakana),
        ["ko"] = 1 << (int)Script.Hangul,
        ["ru"] = 1 << (int)Script.Cyrillic, ["uk"] = 1 << (int)Script.Cyrillic, ["bg"] = 1 << (int)Script.Cyrillic,
        ["sr"] = 1 << (int)Script.Cyrillic, ["kk"] = 1 << (int)Script.Cyrillic,
        ["ar"] = 1 << (int)Script.Arabic, ["fa"] = 1 << (int)Script.Arabic, ["ur"] = 1 << (int)Script.Arabic,
        ["hi"] = 1 << (int)Script.Devanagari, ["mr"] = 1 << (int)Script.Devanagari, ["ne"] = 1 << (int)Script.Devanagari,
        ["th"] = 1 << (int)Script.Thai,
        ["el"] = 1 << (int)Script.Greek,
        ["he"] = 1 << (int)Script.Hebrew,
        ["latin"] = Latin,
        ["han"] = 1 << (int)Script.Han,
        ["hiragana"] = 1 << (int)Script.Hiragana,
        ["katakana"] = 1 << (int)Script.Katakana,
        ["hangul"] = 1 << (int)Script.Hangul,
        ["cyrillic"] = 1 << (int)Script.Cyrillic,
        ["arabic"] = 1 << (int)Script.Arabic,
        ["devanagari"] = 1 << (int)Script.Devanagari,
        ["thai"] = 1 << (int)Script.Thai,
        ["greek"] = 1 << (int)Script.Greek,
        ["hebrew"] = 1 << (int)Script.Hebrew,
    }.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);

    /// <summary>The accepted names, for messages.</summary>
    public static string Known => string.Join(", ", Map.Keys.Order(StringComparer.Ordinal));

    /// <summary>The script set of a language code or script name.</summary>
    /// <param name="language">E.g. <c>en</c>, <c>zh</c>, <c>ja</c>, <c>latin</c>, <c>han</c>.</param>
    /// <param name="mask">Bit <c>1 &lt;&lt; (int)script</c> set for each script of the language.</param>
    /// <returns>Whether the name is known.</returns>
    public static bool TryGetMask(string? language, out int mask)
    {
        mask = 0;
        return language is not null && Map.TryGetValue(language, out mask);
    }

    /// <summary>The number of words whose script is in <paramref name="mask"/>.</summary>
    /// <param name="counts">Word counts by script.</param>
    /// <param name="mask">A script set.</param>
    /// <returns>The sum.</returns>
    public static int Sum(ReadOnlySpan<int> counts, int mask)
    {
        var sum = 0;
        for (var s = 1; s < counts.Length; s++)
        {
            if ((mask & (1 << s)) != 0)
            {
                sum += counts[s];
            }
        }

        return sum;
    }
}
