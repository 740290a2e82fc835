using System.Diagnostics;
using System.Globalization;

namespace DeepSeekRL.Silo.Demo;

/// <summary>
/// A progress bar on one terminal line (redrawn with a carriage return at most 5 times a second); when the output is
/// not a terminal, a plain line at every tenth of the way instead.
/// </summary>
/// <param name="interactive">Whether the output is a terminal.</param>
internal sealed class ProgressBar(bool interactive)
{
    private const int Width = 24;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private long _lastDraw = -1;
    private int _lastTenth = -1;
    private bool _drawn;

    /// <summary>Shows <paramref name="done"/> of <paramref name="total"/> with a note.</summary>
    /// <param name="done">Units done.</param>
    /// <param name="total">Units in all.</param>
    /// <param name="note">What to show after the bar.</param>
    public void Report(int done, int total, string note)
    {
        var fraction = total <= 0 ? 1 : Math.Clamp((double)done / total, 0, 1);
        var filled = (int)Math.Round(Width * fraction);
        var elapsed = _clock.Elapsed.TotalSeconds;
        var eta = fraction > 0 ? elapsed * (1 - fraction) / fraction : double.NaN;
        var line = string.Create(CultureInfo.InvariantCulture,
            $"      [{new string('#', filled)}{new string('.', Width - filled)}] {done}/{total}  {note}  {elapsed:0}s{(double.IsFinite(eta) && done < total ? $" (eta {eta:0}s)" : string.Empty)}");
        if (interactive)
        {
            var now = _clock.ElapsedMilliseconds;
            if (done < total && _lastDraw >= 0 && now - _lastDraw < 200)
            {
                return;
            }

            _lastDraw = now;
            Console.Write("\r" + line.PadRight(Math.Max(line.Length, Console.WindowWidth > 0 ? Math.Min(Console.WindowWidth - 1, 160) : 0)));
            _drawn = true;
            return;
        }

        var tenth = (int)(fraction * 10);
        if (tenth != _lastTenth || done == total)
        {
            if (tenth == _lastTenth && done == total && _drawn)
            {
                return;
            }

            _lastTenth = tenth;
            Console.WriteLine(line);
            _drawn = done == total;
        }
    }

    /// <summary>Ends the bar's line.</summary>
    public void Finish()
    {
        if (interactive && _drawn)
        {
            Console.WriteLine();
        }
    }
}
