// The time limit of one comparison: the parser and the evaluator call Tick() in their loops.
namespace DeepSeekRL.Rewards.Accuracy;

/// <summary>Thrown inside the verifier when its time limit passes; never escapes <see cref="MathVerifier"/>.</summary>
internal sealed class VerifyTimeoutException : Exception
{
    public VerifyTimeoutException()
        : base("math verification time limit reached")
    {
    }

    public VerifyTimeoutException(string message)
        : base(message)
    {
    }

    public VerifyTimeoutException(string message, Exception inner)
        : base(message, inner)
    {
    }
}

/// <summary>A deadline on a <see cref="TimeProvider"/> plus a cancellation token, checked every few operations.</summary>
internal sealed class VerifyBudget(TimeProvider timeProvider, TimeSpan limit, CancellationToken cancellationToken)
{
    private readonly long _start = timeProvider.GetTimestamp();
    private int _ticks;

    /// <summary>Counts one unit of work; every 32 units checks the clock and the token.</summary>
    public void Tick()
    {
        if ((++_ticks & 31) == 0)
        {
            Check();
        }
    }

    public void Check()
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (timeProvider.GetElapsedTime(_start) > limit)
        {
            throw new VerifyTimeoutException();
        }
    }
}
