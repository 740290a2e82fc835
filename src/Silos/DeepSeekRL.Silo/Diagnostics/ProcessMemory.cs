using System.Globalization;

namespace DeepSeekRL.Silo.Diagnostics;

/// <summary>This process's resident memory from <c>/proc/self/status</c> (Linux), in MB (MiB).</summary>
internal static class ProcessMemory
{
    /// <summary>The peak resident set size (VmHWM) since the process started or the last <see cref="ResetPeak"/>; NaN when unknown.</summary>
    public static double PeakRssMb() => StatusMb("VmHWM:");

    /// <summary>The resident set size now (VmRSS); NaN when unknown.</summary>
    public static double RssMb() => StatusMb("VmRSS:");

    /// <summary>Resets VmHWM to the current RSS (writing 5 to <c>/proc/self/clear_refs</c>, Linux 4.0+).</summary>
    /// <returns>Whether the kernel took it.</returns>
    public static bool ResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static double StatusMb(string key)
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith(key, StringComparison.Ordinal))
                {
                    return double.Parse(line.AsSpan(key.Length).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture) / 1024.0;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return double.NaN;
        }

        return double.NaN;
    }
}
