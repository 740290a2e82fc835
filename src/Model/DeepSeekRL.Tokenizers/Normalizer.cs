using System.Text;

namespace DeepSeekRL.Tokenizers;

/// <summary>
/// The normalizers of the tokenizer files we support: none, an empty <c>Sequence</c> (DeepSeek-V3), and the Unicode
/// normal forms. Anything else is refused by the loader.
/// </summary>
public sealed class Normalizer
{
    private readonly NormalizationForm[] _forms;

    /// <summary>Creates a normalizer applying the given normal forms in order (none: the identity).</summary>
    /// <param name="forms">The forms.</param>
    public Normalizer(IReadOnlyList<NormalizationForm> forms) => _forms = [.. forms];

    /// <summary>The identity.</summary>
    public static Normalizer Identity { get; } = new([]);

    /// <summary>Whether this normalizer changes nothing.</summary>
    public bool IsIdentity => _forms.Length == 0;

    /// <summary>The normal forms, in order.</summary>
    public IReadOnlyList<NormalizationForm> Forms => _forms;

    /// <summary>Normalizes <paramref name="text"/>.</summary>
    /// <param name="text">The text.</param>
    /// <returns>The normalized text.</returns>
    public string Apply(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        foreach (var form in _forms)
        {
            text = text.Normalize(form);
        }

        return text;
    }
}
