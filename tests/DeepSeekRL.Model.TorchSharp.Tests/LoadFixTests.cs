using System.Diagnostics;
using System.Text;

namespace DeepSeekRL.Model.TorchSharp.Tests;

/// <summary>
/// The Debian 12 load fix (infra/build/libtorchsharp.targets): the build output's libLibTorchSharp.so has its
/// GLIBCXX_3.4.32 need marked weak exactly when the system's libstdc++ lacks that version, the NuGet cache's copy is
/// never touched, the task leaves the file alone on a system whose libstdc++ defines the version, refuses garbage with
/// one line naming the file, and a shim that cannot load gets a one-line cause instead of TorchSharp's message.
/// </summary>
public sealed class LoadFixTests
{
    private const string Version = "GLIBCXX_3.4.32";
    private const string SystemLibStdCxx = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6";

    private static string Output => AppContext.BaseDirectory;

    private static string Shim => Path.Combine(Output, "runtimes", "linux-x64", "native", TorchRuntime.ShimFileName);

    private static bool SystemDefinesVersion =>
        File.Exists(SystemLibStdCxx) && File.ReadAllBytes(SystemLibStdCxx).AsSpan().IndexOf(Encoding.ASCII.GetBytes(Version + "\0")) >= 0;

    private static string Root
    {
        get
        {
            for (var dir = new DirectoryInfo(Output); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "DeepSeekRL.sln")))
                {
                    return dir.FullName;
                }
            }

            throw new InvalidOperationException("DeepSeekRL.sln not found above " + Output);
        }
    }

    private static string CachedShim
    {
        get
        {
            var packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p
                ? p : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
            return Path.Combine(packages, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", TorchRuntime.ShimFileName);
        }
    }

    [Fact]
    public void BuildOutput_ShimNeed_WeakExactlyWhenTheSystemLacksTheVersion_CacheCopyUntouched()
    {
        Assert.True(File.Exists(Shim), $"{Shim} is missing from the build output");
        Assert.Equal(!SystemDefinesVersion, NeedFlags(Shim) is { } flags && (flags & 2) != 0);
        Assert.True(File.Exists(CachedShim), $"{CachedShim} is missing");
        Assert.True((NeedFlags(CachedShim)!.Value & 2) == 0, "the NuGet cache's copy was modified");

        // Only non-linux-x64 natives of TorchSharp and SkiaSharp would be here: none are copied.
        var runtimes = Directory.GetDirectories(Path.Combine(Output, "runtimes")).Select(d => Path.GetFileName(d)!).ToArray();
        Assert.Equal(["linux-x64"], runtimes);
    }

    [Fact]
    public void WeakenTask_NewEnoughLibStdCxx_LeavesTheFile_OldOneMarksTheNeedWeak()
    {
        var dir = Directory.CreateTempSubdirectory("deepseekrl-weaken-").FullName;
        try
        {
            var copy = Path.Combine(dir, TorchRuntime.ShimFileName);
            File.Copy(CachedShim, copy);
            var original = File.ReadAllBytes(copy);
            var newLib = Path.Combine(dir, "libstdc++-new.so.6");
            File.WriteAllBytes(newLib, [.. "\x7FELF padding "u8.ToArray(), .. Encoding.ASCII.GetBytes(Version + "\0")]);
            var oldLib = Path.Combine(dir, "libstdc++-old.so.6");
            File.WriteAllBytes(oldLib, [.. "\x7FELF padding GLIBCXX_3.4.30\0"u8.ToArray()]);

            var (code, output) = RunTask(copy, newLib);
            Assert.True(code == 0, output);
            Assert.Equal(original, File.ReadAllBytes(copy));

            (code, output) = RunTask(copy, oldLib);
            Assert.True(code == 0, output);
            var patched = File.ReadAllBytes(copy);
            Assert.Equal(original.Length, patched.Length);
            Assert.Equal(1, original.Zip(patched).Count(p => p.First != p.Second));
            Assert.True((NeedFlags(copy)!.Value & 2) != 0);

            // Twice is the same as once.
            (code, output) = RunTask(copy, oldLib);
            Assert.True(code == 0, output);
            Assert.Equal(patched, File.ReadAllBytes(copy));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void WeakenTask_Garbage_FailsWithOneLineNamingTheFile()
    {
        var dir = Directory.CreateTempSubdirectory("deepseekrl-weaken-").FullName;
        try
        {
            var rng = new Random(5);
            foreach (var size in new[] { 0, 10, 64, 4096 })
            {
                var garbage = Path.Combine(dir, $"garbage{size}.so");
                var bytes = new byte[size];
                rng.NextBytes(bytes);
                if (size >= 64)
                {
                    // A valid ELF64 magic with lying section header fields.
                    "\x7FELF\x02\x01"u8.CopyTo(bytes);
                }

                File.WriteAllBytes(garbage, bytes);
                var (code, output) = RunTask(garbage, "/nonexistent");
                Assert.NotEqual(0, code);
                var errors = output.Split('\n').Where(l => l.Contains("error", StringComparison.Ordinal)).ToArray();
                Assert.Contains(errors, l => l.Contains(garbage, StringComparison.Ordinal) && l.Contains("cannot mark GLIBCXX_3.4.32 weak", StringComparison.Ordinal));
                Assert.Equal(bytes, File.ReadAllBytes(garbage));
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Diagnose_UnpatchedShim_OneLineNamingTheMissingVersion()
    {
        Assert.Null(TorchRuntime.TryLoad());
        var dir = Directory.CreateTempSubdirectory("deepseekrl-shim-").FullName;
        try
        {
            var copy = Path.Combine(dir, TorchRuntime.ShimFileName);
            File.Copy(CachedShim, copy);
            var cause = TorchRuntime.Diagnose(copy);
            if (SystemDefinesVersion)
            {
                Assert.Null(cause);
                return;
            }

            Assert.NotNull(cause);
            Assert.DoesNotContain('\n', cause);
            Assert.Contains(copy, cause, StringComparison.Ordinal);
            Assert.Contains(Version, cause, StringComparison.Ordinal);
            Assert.Contains("libtorchsharp.targets", cause, StringComparison.Ordinal);

            var garbage = Path.Combine(dir, "libgarbage.so");
            File.WriteAllBytes(garbage, new byte[100]);
            var other = TorchRuntime.Diagnose(garbage);
            Assert.NotNull(other);
            Assert.DoesNotContain('\n', other);
            Assert.StartsWith("libtorch did not load: ", other, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("cpu", true)]
    [InlineData("cuda", true)]
    [InlineData("cuda:0", true)]
    [InlineData("cuda:12", true)]
    [InlineData("gpu", false)]
    [InlineData("cuda:", false)]
    [InlineData("cuda:-1", false)]
    [InlineData("CPU", false)]
    [InlineData("cuda:1x", false)]
    public void IsDeviceName_AcceptsCpuAndCudaForms(string name, bool expected) =>
        Assert.Equal(expected, TorchRuntime.IsDeviceName(name));

    [Fact]
    public void ParseDevice_CudaOnThisBuild_ClearErrorNamingTheValue()
    {
        var (device, error) = TorchRuntime.ParseDevice("cuda:0");
        Assert.Null(device);
        Assert.NotNull(error);
        Assert.StartsWith("device = \"cuda:0\": ", error, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error);
        Assert.Equal("cpu", TorchRuntime.ParseDevice("cpu").Device!.type.ToString().ToLowerInvariant());
        Assert.Equal("device = \"tpu\": expected \"cpu\", \"cuda\" or \"cuda:N\"", TorchRuntime.ParseDevice("tpu").Error);
    }

    private static (int Code, string Output) RunTask(string library, string systemLibrary)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Root,
        };
        foreach (var arg in new[] { "msbuild", "infra/build/libtorchsharp.targets", "-nologo", "-t:DeepSeekRLWeakenFile", $"-p:Library={library}", $"-p:DeepSeekRLLibStdCxx={systemLibrary}" })
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["MSBUILDNOINPROCNODE"] = "1";
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result + stderr);
    }

    /// <summary>The vna_flags of the GLIBCXX_3.4.32 need in .gnu.version_r (null when the file has none).</summary>
    private static ushort? NeedFlags(string path)
    {
        var b = File.ReadAllBytes(path);
        var shoff = (long)BitConverter.ToUInt64(b, 0x28);
        int size = BitConverter.ToUInt16(b, 0x3A), count = BitConverter.ToUInt16(b, 0x3C), names = BitConverter.ToUInt16(b, 0x3E);
        long Section(long i) => shoff + (i * size);
        string Text(long table, uint at)
        {
            var start = (int)(table + at);
            return Encoding.ASCII.GetString(b, start, Array.IndexOf(b, (byte)0, start) - start);
        }

        var nameTable = (long)BitConverter.ToUInt64(b, (int)Section(names) + 0x18);
        for (var i = 0; i < count; i++)
        {
            if (Text(nameTable, BitConverter.ToUInt32(b, (int)Section(i))) != ".gnu.version_r")
            {
                continue;
            }

            var strings = (long)BitConverter.ToUInt64(b, (int)Section(BitConverter.ToUInt32(b, (int)Section(i) + 0x28)) + 0x18);
            var need = (long)BitConverter.ToUInt64(b, (int)Section(i) + 0x18);
            while (true)
            {
                var aux = need + BitConverter.ToUInt32(b, (int)need + 8);
                for (var k = 0; k < BitConverter.ToUInt16(b, (int)need + 2); k++)
                {
                    if (Text(strings, BitConverter.ToUInt32(b, (int)aux + 8)) == Version)
                    {
                        return BitConverter.ToUInt16(b, (int)aux + 4);
                    }

                    aux += BitConverter.ToUInt32(b, (int)aux + 12);
                }

                var next = BitConverter.ToUInt32(b, (int)need + 12);
                if (next == 0)
                {
                    return null;
                }

                need += next;
            }
        }

        return null;
    }
}
