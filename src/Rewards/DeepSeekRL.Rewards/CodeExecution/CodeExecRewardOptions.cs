namespace DeepSeekRL.Rewards.CodeExecution;

/// <summary>Options of the <c>code_exec</c> rule.</summary>
public sealed class CodeExecRewardOptions : IValidatableOptions
{
    /// <summary>Wall-clock limit of one test case, in milliseconds. Default 5,000; range 10 .. 600,000. A test that runs
    /// over fails; the others still run.</summary>
    public int TimeoutMsPerTest { get; set; } = 5_000;

    /// <summary>CPU-time limit of one test case, in seconds. Default 5; range 1 .. 600.</summary>
    public int CpuSecondsPerTest { get; set; } = 5;

    /// <summary>Address-space limit of the program, in MiB. Default 512; range 32 .. 65,536.</summary>
    public int MemoryMb { get; set; } = 512;

    /// <summary>Largest standard output kept per test, in bytes (beyond it the test fails). Default 1 MiB.</summary>
    public int MaxOutputBytes { get; set; } = 1 << 20;

    /// <summary>Whether the score is 1 when more than 99% of tests pass and 0 otherwise (open-r1's binary variant). Default false: the fraction passed.</summary>
    public bool Binary { get; set; }

    /// <summary>The Python interpreter inside the sandbox. Default <c>/usr/bin/python3</c>.</summary>
    public string Python { get; set; } = "/usr/bin/python3";

    /// <summary>The bubblewrap executable. Default <c>bwrap</c> (Debian package <c>bubblewrap</c>).</summary>
    public string Bwrap { get; set; } = "bwrap";

    /// <inheritdoc/>
    public string? Validate()
    {
        if (TimeoutMsPerTest is < 10 or > 600_000)
        {
            return $"timeout_ms_per_test = {TimeoutMsPerTest}: expected 10 .. 600000";
        }

        if (CpuSecondsPerTest is < 1 or > 600)
        {
            return $"cpu_seconds_per_test = {CpuSecondsPerTest}: expected 1 .. 600";
        }

        if (MemoryMb is < 32 or > 65_536)
        {
            return $"memory_mb = {MemoryMb}: expected 32 .. 65536";
        }

        return MaxOutputBytes < 1 ? $"max_output_bytes = {MaxOutputBytes}: expected a positive number" : null;
    }
}
