namespace DeepSeekRL.Tokenizers;

/// <summary>
/// GPT-2's byte-to-character table (<c>bytes_to_unicode</c>) used by byte-level BPE: every byte 0..255 maps to one
/// printable character, so that tokens are strings. Printable Latin-1 bytes map to themselves; the other 68 bytes map
/// to U+0100.. in byte order.
/// </summary>
public static class ByteLevel
{
    private static readonly char[] ByteToCharTable = BuildByteToChar();
    private static readonly short[] CharToByteTable = BuildCharToByte();

    /// <summary>The character that stands for <paramref name="b"/>.</summary>
    /// <param name="b">The byte.</param>
    /// <returns>The character.</returns>
    public static char ByteToChar(byte b) => ByteToCharTable[b];

    /// <summary>The byte a byte-level character stands for, or -1 when <paramref name="c"/> is not one.</summary>
    /// <param name="c">The character.</param>
    /// <returns>The byte, or -1.</returns>
    public static int CharToByte(char c) => c < CharToByteTable.Length ? CharToByteTable[c] : -1;

    /// <summary>Maps UTF-8 bytes to the byte-level string.</summary>
    /// <param name="bytes">The bytes.</param>
    /// <returns>The string, one character per byte.</returns>
    public static string Encode(ReadOnlySpan<byte> bytes) =>
        string.Create(bytes.Length, bytes.ToArray(), static (span, b) =>
        {
            for (var i = 0; i < b.Length; i++)
            {
                span[i] = ByteToCharTable[b[i]];
            }
        });

    /// <summary>
    /// The bytes of a token as the Hugging Face ByteLevel decoder produces them: each character through the table,
    /// or, when any character is not a byte-level character, the token's own UTF-8 bytes (added tokens such as
    /// <c>&lt;｜User｜&gt;</c>).
    /// </summary>
    /// <param name="token">The token string.</param>
    /// <returns>The bytes.</returns>
    public static byte[] DecodeToken(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        var bytes = new byte[token.Length];
        for (var i = 0; i < token.Length; i++)
        {
            var b = CharToByte(token[i]);
            if (b < 0)
            {
                return System.Text.Encoding.UTF8.GetBytes(token);
            }

            bytes[i] = (byte)b;
        }

        return bytes;
    }

    private static char[] BuildByteToChar()
    {
        var table = new char[256];
        var n = 0;
        for (var b = 0; b < 256; b++)
        {
            var printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            table[b] = printable ? (char)b : (char)(256 + n++);
        }

        return table;
    }

    private static short[] BuildCharToByte()
    {
        var table = new short[324];
        Array.Fill(table, (short)-1);
        for (var b = 0; b < 256; b++)
        {
            table[ByteToCharTable[b]] = (short)b;
        }

        return table;
    }
}
