namespace DeepSeekRL.Rewards;

/// <summary>Options of a rule that can check themselves once bound; the pipeline calls <see cref="Validate"/> at build time.</summary>
public interface IValidatableOptions
{
    /// <summary>Checks the options.</summary>
    /// <returns>A one-line message naming the bad option (by its JSON name), its value and what was expected; or <see langword="null"/>.</returns>
    string? Validate();
}
