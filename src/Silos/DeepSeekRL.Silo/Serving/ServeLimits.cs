namespace DeepSeekRL.Silo.Serving;

/// <summary>The request limits of <c>serve</c>, from its command-line options.</summary>
internal sealed class ServeLimits
{
    /// <summary><c>--max-body-bytes</c>: the largest request body, in bytes; larger ones get 413 unread. Default 4 MiB; >= 1024.</summary>
    public long MaxBodyBytes { get; init; } = 4L << 20;

    /// <summary><c>--max-queue</c>: requests admitted at once (generating or waiting); more get 429. Default 16; >= 1.</summary>
    public int MaxQueue { get; init; } = 16;

    /// <summary><c>--max-sequences</c>: prompts x n of one request, at most. Default 64; >= 1.</summary>
    public int MaxSequences { get; init; } = 64;

    /// <summary><c>--max-batch</c>: sequences generated together in one slice; requests take turns slice by slice. Default 8; >= 1.</summary>
    public int MaxBatch { get; init; } = 8;

    /// <summary>Checks the values.</summary>
    /// <returns>An error naming the option and the bad value, or <see langword="null"/>.</returns>
    public string? Validate() =>
        MaxBodyBytes < 1024 ? $"--max-body-bytes: {MaxBodyBytes} is below 1024"
        : MaxQueue < 1 ? $"--max-queue: {MaxQueue} is not a positive number"
        : MaxSequences < 1 ? $"--max-sequences: {MaxSequences} is not a positive number"
        : MaxBatch < 1 ? $"--max-batch: {MaxBatch} is not a positive number"
        : null;
}
