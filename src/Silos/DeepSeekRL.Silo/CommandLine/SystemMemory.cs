using System.Globalization;

namespace DeepSeekRL.Silo.CommandLine;

/// <summary>The memory this process could still use, for messages that say what a command needs and what there is.</summary>
internal static class SystemMemory
{
    /// <summary>
    /// Linux's <c>MemAvailable</c> (free memory plus what the kernel can reclaim), capped by the GC's limit (a
    /// container's); the GC's limit alone where <c>/proc/meminfo</c> is unreadable.
    /// </summary>
    /// <returns>Bytes, or <see langword="null"/> when unknown.</returns>
    public static long? AvailableBytes()
    {
        var limit = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
            {
                // "MemAvailable:   12345678 kB"
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal)
                    && long.TryParse(line.AsSpan(13).Trim().TrimEnd("kB").Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var kb))
                {
                    return Math.Min(kb * 1024, limit > 0 ? limit : long.MaxValue);
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return limit > 0 ? limit : null;
    }
}
