// The body of the DeepSeekRLWeakenVersionNeed MSBuild task (libtorchsharp.targets): marks one version need of an ELF64
// shared library weak (VER_FLG_WEAK = 0x2 in the vna_flags of its Elf64_Vernaux entry in .gnu.version_r), writing the
// result to a new file renamed over Library. Skipped when SystemLibrary (the system's libstdc++) defines Version.
// (It compiles against netstandard2.0, as RoslynCodeTaskFactory does.) Every offset read is bounds-checked: a file that is not a well-formed little-endian ELF64 is an error naming it.
try
{
    if (!string.IsNullOrEmpty(SystemLibrary) && File.Exists(SystemLibrary))
    {
        var system = File.ReadAllBytes(SystemLibrary);
        var needle = Encoding.ASCII.GetBytes(Version + "\0");
        var found = false;
        for (var i = 0; !found && i + needle.Length <= system.Length; i++)
        {
            var j = 0;
            while (j < needle.Length && system[i + j] == needle[j]) j++;
            found = j == needle.Length;
        }

        if (found)
        {
            Log.LogMessage(MessageImportance.Normal, $"{Library}: left as shipped ({SystemLibrary} defines {Version})");
            return true;
        }
    }

    var b = File.ReadAllBytes(Library);
    void Need(long offset, long length, string what)
    {
        if (offset < 0 || length < 0 || offset > b.Length - length)
        {
            throw new InvalidDataException($"{what} at offset {offset} lies outside the file ({b.Length} bytes)");
        }
    }

    Need(0, 64, "the ELF header");
    if (b[0] != 0x7F || b[1] != (byte)'E' || b[2] != (byte)'L' || b[3] != (byte)'F' || b[4] != 2 || b[5] != 1)
    {
        throw new InvalidDataException("not a little-endian ELF64 file");
    }

    ulong U64(long o) { Need(o, 8, "a 64-bit field"); return BitConverter.ToUInt64(b, (int)o); }
    uint U32(long o) { Need(o, 4, "a 32-bit field"); return BitConverter.ToUInt32(b, (int)o); }
    ushort U16(long o) { Need(o, 2, "a 16-bit field"); return BitConverter.ToUInt16(b, (int)o); }
    var shoff = (long)U64(0x28);
    int shentsize = U16(0x3A), shnum = U16(0x3C), shstrndx = U16(0x3E);
    if (shentsize < 0x40 || shstrndx >= shnum)
    {
        throw new InvalidDataException($"section header table: entry size {shentsize}, {shnum} sections, names in {shstrndx}");
    }

    long Section(long i) { Need(shoff + i * shentsize, shentsize, $"section header {i}"); return shoff + i * shentsize; }
    string Name(long table, uint at)
    {
        var start = table + at;
        Need(start, 1, "a string");
        var end = Array.IndexOf(b, (byte)0, (int)start);
        if (end < 0) throw new InvalidDataException($"unterminated string at offset {start}");
        return Encoding.ASCII.GetString(b, (int)start, end - (int)start);
    }

    var names = (long)U64(Section(shstrndx) + 0x18);
    int patched = 0, already = 0;
    for (var i = 0; i < shnum; i++)
    {
        if (Name(names, U32(Section(i))) != ".gnu.version_r")
        {
            continue;
        }

        var link = U32(Section(i) + 0x28);
        if (link >= shnum) throw new InvalidDataException($".gnu.version_r links to section {link} of {shnum}");
        var strings = (long)U64(Section(link) + 0x18);
        var start = (long)U64(Section(i) + 0x18);
        var size = (long)U64(Section(i) + 0x20);
        Need(start, size, ".gnu.version_r");
        var need = start;
        for (var entries = 0; entries < 10_000; entries++)
        {
            int count = U16(need + 2);
            var aux = need + U32(need + 8);
            for (var k = 0; k < count; k++)
            {
                if (aux < start || aux + 16 > start + size) throw new InvalidDataException($"a version need entry at offset {aux} lies outside .gnu.version_r");
                if (Name(strings, U32(aux + 8)) == Version)
                {
                    var flags = U16(aux + 4);
                    if ((flags & 2) != 0) { already++; }
                    else { flags |= 2; b[aux + 4] = (byte)flags; b[aux + 5] = (byte)(flags >> 8); patched++; }
                }

                var nextAux = U32(aux + 12);
                if (nextAux == 0) break;
                aux += nextAux;
            }

            var next = U32(need + 12);
            if (next == 0) break;
            need += next;
            if (need < start || need + 16 > start + size) throw new InvalidDataException($"a version need at offset {need} lies outside .gnu.version_r");
        }
    }

    if (patched > 0)
    {
        // A new file renamed over the old: the output may be a hard link into the NuGet cache, which must not change.
        var temporary = Library + ".weak-tmp";
        File.WriteAllBytes(temporary, b);
        File.Replace(temporary, Library, null);
        Log.LogMessage(MessageImportance.Normal, $"{Library}: the need for {Version} is marked weak (this system's libstdc++ does not define it)");
    }
    else if (already == 0)
    {
        Log.LogWarning($"{Library}: no need for {Version} found; left as is");
    }
}
catch (Exception e) when (e is IOException || e is InvalidDataException || e is UnauthorizedAccessException || e is ArgumentException)
{
    Log.LogError($"{Library}: cannot mark {Version} weak: {e.Message}");
    return false;
}
