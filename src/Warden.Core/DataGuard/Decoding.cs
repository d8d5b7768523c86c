using System.IO.Compression;
using System.Net;
using System.Text;

namespace Warden.Core.DataGuard;

/// <summary>A segment of text that decoded to readable text.</summary>
/// <param name="Start">Where the encoded segment starts in the text it was found in.</param>
/// <param name="Length">The encoded segment's length.</param>
/// <param name="Text">The decoded text.</param>
/// <param name="Encoding">base64, base32, hex, url, html, gzip+base64, ...</param>
internal readonly record struct DecodedSegment(int Start, int Length, string Text, string Encoding);

/// <summary>Shared limits for one scan: how much inflating a scan may do in total.</summary>
internal sealed class DecodeBudget(long inflateBytes)
{
    public long InflateBytes = inflateBytes;

    public bool Exhausted;
}

/// <summary>
/// Finds the parts of a text that are encoded (base64 and base64url, base32, hex, URL percent-encoding, HTML
/// entities, gzip inside base64) and decodes them when the result is readable text. Binary results (images,
/// hashes, random identifiers) are dropped, so a git hash or a PNG never becomes a finding by accident.
/// </summary>
internal static class Decoding
{
    private const int MinRun = 16;

    // 1: base64 alphabet (incl. url-safe), 2: hex digit, 4: base32 alphabet (A-Z, 2-7).
    private static readonly byte[] Classes = BuildClasses();

    private static byte[] BuildClasses()
    {
        var t = new byte[128];
        for (var c = 0; c < 128; c++)
        {
            var ch = (char)c;
            if (char.IsAsciiLetterOrDigit(ch) || ch is '+' or '/' or '-' or '_')
            {
                t[c] |= 1;
            }

            if (char.IsAsciiHexDigit(ch))
            {
                t[c] |= 2;
            }

            if (char.IsAsciiLetterUpper(ch) || ch is >= '2' and <= '7')
            {
                t[c] |= 4;
            }
        }

        return t;
    }

    /// <summary>Adds every decodable segment of <paramref name="s"/> to <paramref name="into"/>.</summary>
    public static void Find(string s, List<DecodedSegment> into, DecodeBudget budget)
    {
        var span = s.AsSpan();
        if (span.Length >= MinRun)
        {
            FindRuns(span, into, budget);
        }

        // Percent- and entity-encoding are decoded for the whole text: they are usually sprinkled through it.
        if (span.IndexOf('%') >= 0 && HasPercentEscape(span))
        {
            var decoded = PercentDecode(span);
            if (decoded is not null && !decoded.Equals(s, StringComparison.Ordinal))
            {
                into.Add(new DecodedSegment(0, s.Length, decoded, "url"));
            }
        }

        if (span.IndexOf("\\u", StringComparison.Ordinal) >= 0 && Unescape(s) is { } unescaped)
        {
            into.Add(new DecodedSegment(0, s.Length, unescaped, "unicode-escape"));
        }

        if (span.IndexOf('&') >= 0 && span.IndexOf(';') >= 0)
        {
            var decoded = WebUtility.HtmlDecode(s);
            if (!decoded.Equals(s, StringComparison.Ordinal))
            {
                into.Add(new DecodedSegment(0, s.Length, decoded, "html"));
            }
        }
    }

    private static bool HasPercentEscape(ReadOnlySpan<char> s)
    {
        for (var i = s.IndexOf('%'); i >= 0 && i + 2 < s.Length; i = s[(i + 1)..].IndexOf('%') is var k and >= 0 ? i + 1 + k : -1)
        {
            if (char.IsAsciiHexDigit(s[i + 1]) && char.IsAsciiHexDigit(s[i + 2]))
            {
                return true;
            }
        }

        return false;
    }

    private static string? PercentDecode(ReadOnlySpan<char> s)
    {
        var bytes = new List<byte>(s.Length);
        Span<byte> utf8 = stackalloc byte[4];
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            if (c == '%' && i + 2 < s.Length && char.IsAsciiHexDigit(s[i + 1]) && char.IsAsciiHexDigit(s[i + 2]))
            {
                bytes.Add((byte)((HexValue(s[i + 1]) << 4) | HexValue(s[i + 2])));
                i += 2;
            }
            else
            {
                var n = new Rune(char.IsSurrogate(c) ? '?' : c).EncodeToUtf8(utf8);
                for (var k = 0; k < n; k++)
                {
                    bytes.Add(utf8[k]);
                }
            }
        }

        return Readable([.. bytes], out var text) ? text : null;
    }

    /// <summary>Decodes JSON and JavaScript <c>\uXXXX</c> escapes (JSON text inside a result often carries them); null when there are none.</summary>
    internal static string? Unescape(string s)
    {
        var sb = new StringBuilder(s.Length);
        var changed = false;
        for (var i = 0; i < s.Length; i++)
        {
            if (s[i] == '\\' && s[i + 1] == 'u' && IsHex4(s.AsSpan(i + 2)))
            {
                sb.Append((char)((HexValue(s[i + 2]) << 12) | (HexValue(s[i + 3]) << 8) | (HexValue(s[i + 4]) << 4) | HexValue(s[i + 5])));
                i += 5;
                changed = true;
            }
            else
            {
                sb.Append(s[i]);
            }
        }

        return changed ? sb.ToString() : null;
    }

    private static bool IsHex4(ReadOnlySpan<char> s) =>
        s.Length >= 4 && char.IsAsciiHexDigit(s[0]) && char.IsAsciiHexDigit(s[1]) && char.IsAsciiHexDigit(s[2]) && char.IsAsciiHexDigit(s[3]);

    private static int HexValue(char c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;

    private static void FindRuns(ReadOnlySpan<char> s, List<DecodedSegment> into, DecodeBudget budget)
    {
        var i = 0;
        while (i < s.Length)
        {
            var c = s[i];
            if (c >= 128 || (Classes[c] & 1) == 0)
            {
                i++;
                continue;
            }

            var start = i;
            byte all = 7;
            while (i < s.Length && s[i] < 128 && (Classes[s[i]] & 1) != 0)
            {
                all &= Classes[s[i]];
                i++;
            }

            // Padding ends a run: "key=QUtJ..." must not read "key" as part of the encoded value.
            var end = i;
            while (i < s.Length && s[i] == '=' && i - end < 6)
            {
                i++;
            }

            var padded = i;
            if (padded - start < MinRun)
            {
                continue;
            }

            TryDecodeRun(s, start, end, padded, all, into, budget);
        }
    }

    private static void TryDecodeRun(ReadOnlySpan<char> s, int start, int end, int padded, byte classes, List<DecodedSegment> into, DecodeBudget budget)
    {
        var run = s[start..end];
        if ((classes & 2) != 0 && run.Length % 2 == 0)
        {
            var bytes = Convert.FromHexString(run);
            if (Readable(bytes, out var text))
            {
                into.Add(new DecodedSegment(start, end - start, text, "hex"));
                return;
            }
        }

        if ((classes & 4) != 0 && Base32(s[start..padded]) is { } b32 && Readable(b32, out var t32))
        {
            into.Add(new DecodedSegment(start, padded - start, t32, "base32"));
            return;
        }

        if (Base64(s[start..padded]) is { } b64)
        {
            if (b64.Length > 2 && b64[0] == 0x1F && b64[1] == 0x8B)
            {
                if (Inflate(b64, budget) is { } inflated && Readable(inflated, out var tz))
                {
                    into.Add(new DecodedSegment(start, padded - start, tz, "gzip+base64"));
                }

                return;
            }

            if (Readable(b64, out var t64))
            {
                into.Add(new DecodedSegment(start, padded - start, t64, "base64"));
            }
        }
    }

    private static byte[]? Base64(ReadOnlySpan<char> run)
    {
        var trimmed = run.TrimEnd('=');
        var len = trimmed.Length;
        if (len % 4 == 1)
        {
            // A stray character in front (a prefix glued to the value) misaligns it; try without it.
            trimmed = trimmed[1..];
            len--;
        }

        var padded = (len + 3) / 4 * 4;
        var buf = padded <= 4096 ? stackalloc char[padded] : new char[padded];
        for (var k = 0; k < len; k++)
        {
            buf[k] = trimmed[k] switch { '-' => '+', '_' => '/', var c => c };
        }

        for (var k = len; k < padded; k++)
        {
            buf[k] = '=';
        }

        var bytes = new byte[padded / 4 * 3];
        return Convert.TryFromBase64Chars(buf, bytes, out var n) ? bytes.AsSpan(0, n).ToArray() : null;
    }

    private static byte[]? Base32(ReadOnlySpan<char> run)
    {
        var trimmed = run.TrimEnd('=');
        if (trimmed.Length < MinRun)
        {
            return null;
        }

        var output = new byte[trimmed.Length * 5 / 8];
        var buffer = 0;
        var bits = 0;
        var n = 0;
        foreach (var c in trimmed)
        {
            int v = c is >= 'A' and <= 'Z' ? c - 'A' : c is >= '2' and <= '7' ? c - '2' + 26 : -1;
            if (v < 0)
            {
                return null;
            }

            buffer = (buffer << 5) | v;
            bits += 5;
            if (bits >= 8)
            {
                bits -= 8;
                output[n++] = (byte)(buffer >> bits);
                buffer &= (1 << bits) - 1;
            }
        }

        return output.AsSpan(0, n).ToArray();
    }

    /// <summary>Inflates gzip data, never past the scan's remaining budget: a decompression bomb stops at the cap.</summary>
    private static byte[]? Inflate(byte[] data, DecodeBudget budget)
    {
        if (budget.InflateBytes <= 0)
        {
            budget.Exhausted = true;
            return null;
        }

        try
        {
            using var input = new MemoryStream(data, writable: false);
            using var gz = new GZipStream(input, CompressionMode.Decompress);
            using var output = new MemoryStream();
            var buffer = new byte[16384];
            int read;
            while ((read = gz.Read(buffer, 0, buffer.Length)) > 0)
            {
                if (output.Length + read > budget.InflateBytes)
                {
                    budget.Exhausted = true;
                    output.Write(buffer, 0, (int)Math.Max(0, budget.InflateBytes - output.Length));
                    budget.InflateBytes = 0;
                    return output.ToArray();
                }

                output.Write(buffer, 0, read);
            }

            budget.InflateBytes -= output.Length;
            return output.ToArray();
        }
        catch (InvalidDataException)
        {
            return null;
        }
    }

    /// <summary>True when bytes are UTF-8 text a human could read (few control characters, no invalid sequences).</summary>
    internal static bool Readable(ReadOnlySpan<byte> bytes, out string text)
    {
        text = "";
        if (bytes.Length < 4)
        {
            return false;
        }

        var bad = 0;
        foreach (var b in bytes)
        {
            if (b < 0x20 && b is not (0x09 or 0x0A or 0x0D) || b == 0x7F)
            {
                bad++;
            }
        }

        if (bad * 20 > bytes.Length)
        {
            return false;
        }

        text = Encoding.UTF8.GetString(bytes);
        var invalid = text.AsSpan().Count('\uFFFD');
        return invalid * 20 <= text.Length && invalid < 4;
    }
}
