using System.Globalization;
using System.Runtime.InteropServices;

namespace DeepSeekRL.Silo.CommandLine;

/// <summary>
/// The destination of a command's <c>--out</c> file. A regular file (or a new one) is written to a temporary file
/// beside it and renamed onto it at <see cref="CommitAsync"/>, so readers never see half a file. A symbolic link is
/// followed: its final target is replaced that way and the link stays a link. A FIFO or a character device
/// (<c>/dev/null</c>, a terminal) is written through, streaming, and never replaced. A block device or a socket is
/// refused. Every failure is a one-line <see cref="CliException"/> naming the option, the path and the cause.
/// </summary>
internal sealed partial class OutputFile : IAsyncDisposable
{
    private readonly string _option;
    private readonly string _path;
    private readonly string _target;
    private readonly string? _temp;
    private FileStream? _stream;
    private bool _started;

    private OutputFile(string option, string path, string target, string? temp)
    {
        _option = option;
        _path = path;
        _target = target;
        _temp = temp;
    }

    /// <summary>Whether the output is written through (a FIFO or a character device) rather than renamed into place.</summary>
    public bool WritesThrough => _temp is null;

    /// <summary>Checks the destination and, for a regular file, creates the temporary file beside it.</summary>
    /// <param name="option">The option, for messages (e.g. <c>--out</c>).</param>
    /// <param name="path">The path as given.</param>
    /// <returns>The output; a FIFO is opened later, by <see cref="StartAsync"/>, since opening it waits for a reader.</returns>
    public static OutputFile Create(string option, string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = System.IO.Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            throw new CliException($"{option}: {path} is a directory; expected a file name");
        }

        var target = full;
        try
        {
            if (new FileInfo(full).LinkTarget is not null && File.ResolveLinkTarget(full, returnFinalTarget: true) is { } linked)
            {
                target = linked.FullName;
            }
        }
        catch (IOException ex)
        {
            throw CliErrors.FileFailure(option, path, ex);
        }

        var kind = Kind(target);
        switch (kind)
        {
            case FileKind.Fifo or FileKind.CharacterDevice:
                return new OutputFile(option, path, target, temp: null);
            case FileKind.BlockDevice or FileKind.Socket or FileKind.Directory:
                throw new CliException($"{option}: {path} is {Describe(kind)}; refusing to write to it");
        }

        var directory = System.IO.Path.GetDirectoryName(target)!;
        if (!Directory.Exists(directory))
        {
            throw new CliException($"{option}: directory {directory} does not exist");
        }

        if (System.Text.Encoding.UTF8.GetByteCount(System.IO.Path.GetFileName(target)) > 255)
        {
            throw CliErrors.FileFailure(option, path, new PathTooLongException());
        }

        // A short hidden name beside the target (same file system, so the rename is atomic), whatever the target's length.
        var temp = System.IO.Path.Combine(directory, string.Create(CultureInfo.InvariantCulture, $".deepseekrl-{Environment.ProcessId}-{Guid.NewGuid():N}.tmp"));
        var output = new OutputFile(option, path, target, temp);
        try
        {
            output._stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw CliErrors.FileFailure(option, path, ex);
        }

        return output;
    }

    /// <summary>
    /// Starts (or, after a transient failure, restarts) writing and returns the stream. A temporary file starts again
    /// empty; a FIFO or device is opened once and cannot restart.
    /// </summary>
    /// <param name="cancellationToken">Cancels opening a FIFO that has no reader.</param>
    /// <returns>The stream to write.</returns>
    public async Task<Stream> StartAsync(CancellationToken cancellationToken)
    {
        if (_temp is not null)
        {
            _stream!.SetLength(0);
            _stream.Position = 0;
            return _stream;
        }

        if (_started)
        {
            throw new CliException($"{_option}: the export was interrupted after writing to {_path}, which cannot be rewound; run it again");
        }

        _started = true;
        try
        {
            // Opening a FIFO for writing waits for a reader: on the thread pool, so Ctrl-C still works.
            _stream = await Task.Run(() => new FileStream(_target, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 1 << 16, useAsync: false), cancellationToken);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw CliErrors.FileFailure(_option, _path, ex);
        }

        return _stream;
    }

    /// <summary>Flushes, and moves the temporary file onto the target (through a symbolic link, onto its target).</summary>
    /// <param name="cancellationToken">Cancels the flush.</param>
    /// <returns>The bytes written when known (a regular file), else <see langword="null"/>.</returns>
    public async Task<long?> CommitAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _stream!.FlushAsync(cancellationToken);
            if (_temp is null)
            {
                await _stream.DisposeAsync();
                return null;
            }

            var length = _stream.Length;
            await _stream.DisposeAsync();
            File.Move(_temp, _target, overwrite: true);
            return length;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw Failure(ex);
        }
    }

    /// <summary>The one-line error for a failure while writing.</summary>
    /// <param name="exception">The failure.</param>
    /// <returns>The exception to throw.</returns>
    public CliException Failure(Exception exception) => CliErrors.FileFailure(_option, _path, exception);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_stream is not null)
        {
            try
            {
                await _stream.DisposeAsync();
            }
            catch (IOException)
            {
                // The flush of an abandoned output (a full disk): the write already failed and was reported.
            }
        }

        if (_temp is not null)
        {
            File.Delete(_temp);
        }
    }

    private enum FileKind
    {
        Missing,
        Regular,
        Directory,
        CharacterDevice,
        BlockDevice,
        Fifo,
        Socket,
        Other,
    }

    private static string Describe(FileKind kind) => kind switch
    {
        FileKind.BlockDevice => "a block device",
        FileKind.Socket => "a socket",
        FileKind.Directory => "a directory",
        _ => "a special file",
    };

    private static FileKind Kind(string path)
    {
        // struct stat's st_mode: offset 24 on x86-64, 16 on arm64 (the generic layout); 256 bytes hold either.
        var offset = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => 24,
            Architecture.Arm64 => 16,
            _ => -1,
        };
        if (offset < 0 || !OperatingSystem.IsLinux())
        {
            return File.Exists(path) ? FileKind.Regular : FileKind.Missing;
        }

        Span<byte> buffer = stackalloc byte[256];
        if (stat(path, ref MemoryMarshal.GetReference(buffer)) != 0)
        {
            return FileKind.Missing;
        }

        var mode = BitConverter.ToUInt32(buffer.Slice(offset, 4));
        return (mode & 0xF000) switch
        {
            0x8000 => FileKind.Regular,
            0x4000 => FileKind.Directory,
            0x2000 => FileKind.CharacterDevice,
            0x6000 => FileKind.BlockDevice,
            0x1000 => FileKind.Fifo,
            0xC000 => FileKind.Socket,
            _ => FileKind.Other,
        };
    }

    [LibraryImport("libc", EntryPoint = "stat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int stat(string path, ref byte buffer);
}
