namespace DeepSeekRL;

/// <summary>
/// The result of an operation whose failure is expected (a server that does not answer, a broken migration):
/// either a value or a one-line message for the user. Exceptions stay for bugs and broken invariants.
/// </summary>
/// <typeparam name="T">The type of the value on success.</typeparam>
public readonly struct Outcome<T>
{
    private readonly T? _value;

    private Outcome(T? value, string? error)
    {
        _value = value;
        Error = error;
    }

    /// <summary>The one-line error message, or <see langword="null"/> on success.</summary>
    public string? Error { get; }

    /// <summary>Whether the operation succeeded.</summary>
    public bool Succeeded => Error is null;

    /// <summary>The value; throws if the operation failed.</summary>
    public T Value => Error is null ? _value! : throw new InvalidOperationException("Outcome failed: " + Error);

    /// <summary>A successful outcome.</summary>
    /// <param name="value">The value.</param>
    /// <returns>The outcome.</returns>
    public static Outcome<T> Success(T value) => new(value, null);

    /// <summary>A failed outcome.</summary>
    /// <param name="error">A one-line message naming the file, field or value and what was expected.</param>
    /// <returns>The outcome.</returns>
    public static Outcome<T> Failure(string error) => new(default, error);

    /// <summary>Converts a failure of another type into a failure of this type.</summary>
    /// <typeparam name="TOther">The other value type.</typeparam>
    /// <param name="other">A failed outcome.</param>
    /// <returns>The failure, retyped.</returns>
    public static Outcome<T> From<TOther>(Outcome<TOther> other) =>
        other.Error is null ? throw new ArgumentException("Outcome succeeded.", nameof(other)) : new(default, other.Error);

    /// <inheritdoc/>
    public override string ToString() => Error is null ? $"Success({_value})" : $"Failure({Error})";
}
