using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Warden.Core.Conditions;

/// <summary>
/// The URL, host and path helpers. Everything is normalised before comparison because attackers choose the spelling:
/// <c>http://2852039166/</c>, <c>http://0xA9.0xFE.0xA9.0xFE/</c> and <c>http://[::ffff:169.254.169.254]/</c> are all the metadata service.
/// </summary>
internal static class NetHelpers
{
    private static readonly string[] MetadataHosts =
    [
        "169.254.169.254", "fd00:ec2::254", "metadata.google.internal", "metadata.goog", "metadata",
        "169.254.170.2", "100.100.100.200", "metadata.azure.com",
    ];

    /// <summary>The lower-cased domain of an e-mail address, or the host of a URL or bare host name.</summary>
    public static string Domain(string s)
    {
        s = s.Trim();
        if (!s.Contains("://", StringComparison.Ordinal) && !s.StartsWith("//", StringComparison.Ordinal))
        {
            var at = s.LastIndexOf('@');
            if (at >= 0)
            {
                return NormalizeHost(s.AsSpan(at + 1));
            }
        }

        return UrlHost(s);
    }

    /// <summary>The normalised host of a URL (lower case, no port, no user info, no trailing dot, canonical IP form).</summary>
    public static string UrlHost(string url)
    {
        // Spans until the host is isolated: only the final host string is allocated on the common path.
        var s = url.AsSpan().Trim();
        if (s.Contains('\\'))
        {
            return UrlHost(url.Replace('\\', '/'));
        }

        var scheme = s.IndexOf("://", StringComparison.Ordinal);
        if (scheme >= 0)
        {
            s = s[(scheme + 3)..];
        }
        else if (s.StartsWith("//", StringComparison.Ordinal))
        {
            s = s[2..];
        }

        var end = s.IndexOfAny('/', '?', '#');
        var authority = end >= 0 ? s[..end] : s;
        var at = authority.LastIndexOf('@');
        if (at >= 0)
        {
            authority = authority[(at + 1)..];
        }

        ReadOnlySpan<char> host;
        if (authority.StartsWith('['))
        {
            var close = authority.IndexOf(']');
            host = close > 0 ? authority[1..close] : authority[1..];
        }
        else
        {
            var colon = authority.LastIndexOf(':');
            host = colon >= 0 && authority.IndexOf(':') == colon ? authority[..colon] : authority;
        }

        return NormalizeHost(host);
    }

    /// <summary>
    /// The host of <paramref name="input"/> as a slice when it needs no normalisation (plain lower-case DNS name, no
    /// escapes, not an IP literal); false sends the caller to <see cref="Domain"/> or <see cref="UrlHost"/>.
    /// </summary>
    public static bool TryFastHost(ReadOnlySpan<char> input, bool domainRules, out ReadOnlySpan<char> host)
    {
        host = default;
        var s = input;
        if (s.Length == 0 || char.IsWhiteSpace(s[0]) || char.IsWhiteSpace(s[^1]) || s.Contains('\\'))
        {
            return false;
        }

        var scheme = s.IndexOf("://", StringComparison.Ordinal);
        if (domainRules && scheme < 0 && !s.StartsWith("//", StringComparison.Ordinal))
        {
            var at = s.LastIndexOf('@');
            if (at >= 0)
            {
                host = s[(at + 1)..];
                return IsPlainHost(host);
            }
        }

        if (scheme >= 0)
        {
            s = s[(scheme + 3)..];
        }
        else if (s.StartsWith("//", StringComparison.Ordinal))
        {
            s = s[2..];
        }

        var end = s.IndexOfAny('/', '?', '#');
        var authority = end >= 0 ? s[..end] : s;
        if (authority.Contains('@') || authority.StartsWith('['))
        {
            return false;
        }

        var colon = authority.IndexOf(':');
        if (colon != authority.LastIndexOf(':'))
        {
            return false;
        }

        host = colon >= 0 ? authority[..colon] : authority;
        return IsPlainHost(host);
    }

    private static bool IsPlainHost(ReadOnlySpan<char> span) =>
        span.Length > 0 && span[^1] != '.' && !span.ContainsAnyExcept(PlainHostChars) && span.ContainsAny(NonIPv4Chars);

    private static readonly System.Buffers.SearchValues<char> PlainHostChars =
        System.Buffers.SearchValues.Create("abcdefghijklmnopqrstuvwxyz0123456789-._");

    private static readonly System.Buffers.SearchValues<char> NonIPv4Chars =
        System.Buffers.SearchValues.Create("ghijklmnopqrstuvwyzGHIJKLMNOPQRSTUVWYZ-_");

    private static string NormalizeHost(ReadOnlySpan<char> span)
    {
        // Common case: an already lower-case DNS name that cannot be an IP literal.
        if (IsPlainHost(span))
        {
            return new string(span);
        }

        var host = PercentDecode(span.ToString()).Trim().TrimEnd('.').ToLowerInvariant();
        if (host.StartsWith('[') && host.EndsWith(']'))
        {
            host = host[1..^1];
        }

        if (host.Contains(':', StringComparison.Ordinal))
        {
            var zone = host.IndexOf('%', StringComparison.Ordinal);
            var bare = zone >= 0 ? host[..zone] : host;
            if (IPAddress.TryParse(bare, out var v6) && v6.AddressFamily == AddressFamily.InterNetworkV6)
            {
                return v6.IsIPv4MappedToIPv6 ? v6.MapToIPv4().ToString() : v6.ToString();
            }

            return host;
        }

        return !host.AsSpan().ContainsAny(NonIPv4Chars) && TryParseIPv4(host, out var v4) ? v4.ToString() : host;
    }

    /// <summary>WHATWG IPv4 parsing: 1-4 parts, each decimal, 0x-hex or 0-octal; the last part fills the remaining bytes.</summary>
    internal static bool TryParseIPv4(string host, out IPAddress address)
    {
        address = IPAddress.None;
        if (host.Length == 0)
        {
            return false;
        }

        var parts = host.Split('.');
        if (parts.Length > 4)
        {
            return false;
        }

        var nums = new ulong[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            var p = parts[i];
            ulong v;
            bool ok;
            if (p.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            {
                ok = p.Length == 2 ? (v = 0) == 0 : ulong.TryParse(p.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out v);
            }
            else if (p.Length > 1 && p[0] == '0')
            {
                ok = p.All(c => c is >= '0' and <= '7');
                v = 0;
                if (ok)
                {
                    foreach (var c in p)
                    {
                        v = (v * 8) + (ulong)(c - '0');
                        if (v > uint.MaxValue)
                        {
                            return false;
                        }
                    }
                }
            }
            else
            {
                ok = p.Length > 0 && p.All(char.IsAsciiDigit) && ulong.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out v);
                v = ok ? ulong.Parse(p, CultureInfo.InvariantCulture) : 0;
            }

            if (!ok)
            {
                return false;
            }

            nums[i] = v;
        }

        ulong result = 0;
        for (var i = 0; i < nums.Length - 1; i++)
        {
            if (nums[i] > 255)
            {
                return false;
            }

            result |= nums[i] << (8 * (3 - i));
        }

        var last = nums[^1];
        if (last >= 1UL << (8 * (5 - nums.Length)))
        {
            return false;
        }

        result |= last;
        address = new IPAddress([(byte)(result >> 24), (byte)(result >> 16), (byte)(result >> 8), (byte)result]);
        return true;
    }

    /// <summary>True for a cloud metadata endpoint in any spelling.</summary>
    public static bool IsMetadataAddress(string urlOrHost)
    {
        var host = UrlHost(urlOrHost);
        return Array.IndexOf(MetadataHosts, host) >= 0;
    }

    /// <summary>True for loopback, private, link-local, unique-local, CGNAT, unspecified and metadata addresses and for localhost names.</summary>
    public static bool IsPrivateAddress(string urlOrHost)
    {
        var host = UrlHost(urlOrHost);
        if (host.Length == 0 || Array.IndexOf(MetadataHosts, host) >= 0 || host == "localhost" || host.EndsWith(".localhost", StringComparison.Ordinal)
            || host.EndsWith(".internal", StringComparison.Ordinal))
        {
            return true;
        }

        if (!IPAddress.TryParse(host, out var ip))
        {
            return false;
        }

        if (ip.AddressFamily == AddressFamily.InterNetworkV6)
        {
            if (ip.IsIPv4MappedToIPv6)
            {
                return IsPrivateV4(ip.MapToIPv4().GetAddressBytes());
            }

            var b = ip.GetAddressBytes();
            if (IPAddress.IPv6Loopback.Equals(ip) || IPAddress.IPv6None.Equals(ip))
            {
                return true;
            }

            // fc00::/7 unique local, fe80::/10 link local, 64:ff9b::/96 NAT64 of a private v4, ::a.b.c.d compatible.
            if ((b[0] & 0xFE) == 0xFC || (b[0] == 0xFE && (b[1] & 0xC0) == 0x80))
            {
                return true;
            }

            if (b[0] == 0 && b[1] == 0x64 && b[2] == 0xFF && b[3] == 0x9B && b.AsSpan(4, 8).IndexOfAnyExcept((byte)0) < 0)
            {
                return IsPrivateV4(b[12..]);
            }

            if (b.AsSpan(0, 12).IndexOfAnyExcept((byte)0) < 0)
            {
                return IsPrivateV4(b[12..]);
            }

            return false;
        }

        return IsPrivateV4(ip.GetAddressBytes());
    }

    private static bool IsPrivateV4(byte[] b) =>
        b[0] == 0 || b[0] == 10 || b[0] == 127 ||
        (b[0] == 100 && (b[1] & 0xC0) == 64) ||
        (b[0] == 169 && b[1] == 254) ||
        (b[0] == 172 && (b[1] & 0xF0) == 16) ||
        (b[0] == 192 && b[1] == 168) ||
        (b[0] == 192 && b[1] == 0 && b[2] == 0) ||
        (b[0] == 198 && (b[1] & 0xFE) == 18) ||
        b[0] >= 224;

    /// <summary>
    /// Canonical form of a path: backslashes become slashes, percent-encoding is decoded until stable (so <c>%252e%252e</c>
    /// cannot smuggle <c>..</c>), empty and <c>.</c> segments vanish, <c>..</c> pops a segment and never climbs above the root.
    /// </summary>
    public static string CanonicalPath(string path)
    {
        var p = path.Replace('\\', '/');
        for (var i = 0; i < 4; i++)
        {
            var d = PercentDecode(p).Replace('\\', '/');
            if (d == p)
            {
                break;
            }

            p = d;
        }

        var absolute = p.StartsWith('/');
        var stack = new List<string>();
        foreach (var seg in p.Split('/'))
        {
            if (seg.Length == 0 || seg == ".")
            {
                continue;
            }

            if (seg == "..")
            {
                if (stack.Count > 0 && stack[^1] != "..")
                {
                    stack.RemoveAt(stack.Count - 1);
                }
                else if (!absolute)
                {
                    stack.Add("..");
                }

                continue;
            }

            stack.Add(seg);
        }

        var joined = string.Join('/', stack);
        return absolute ? "/" + joined : (joined.Length == 0 ? "." : joined);
    }

    /// <summary>True when <paramref name="path"/> is <paramref name="root"/> or inside it, after canonicalisation, by whole segments.</summary>
    public static bool PathWithin(string path, string root)
    {
        if (path.Contains('\0', StringComparison.Ordinal) || PercentDecode(path).Contains('\0', StringComparison.Ordinal))
        {
            return false;
        }

        var p = CanonicalPath(path);
        var r = CanonicalPath(root);
        if (r == "/")
        {
            return p.StartsWith('/');
        }

        if (p.StartsWith("..", StringComparison.Ordinal) || p == ".")
        {
            return false;
        }

        return p == r || p.StartsWith(r + "/", StringComparison.Ordinal);
    }

    private static string PercentDecode(string s)
    {
        if (!s.Contains('%', StringComparison.Ordinal))
        {
            return s;
        }

        var bytes = new List<byte>(s.Length);
        for (var i = 0; i < s.Length; i++)
        {
            if (s[i] == '%' && i + 2 < s.Length && IsHex(s[i + 1]) && IsHex(s[i + 2]))
            {
                bytes.Add((byte)((HexVal(s[i + 1]) << 4) | HexVal(s[i + 2])));
                i += 2;
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(s[i].ToString()));
            }
        }

        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private static bool IsHex(char c) => char.IsAsciiHexDigit(c);

    private static int HexVal(char c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;

    /// <summary>Translates a glob to an anchored regex: <c>**</c> crosses '/', <c>*</c> and <c>?</c> do not, <c>[...]</c> is a class.</summary>
    public static string GlobToRegex(string glob)
    {
        var sb = new StringBuilder("^");
        for (var i = 0; i < glob.Length; i++)
        {
            var c = glob[i];
            switch (c)
            {
                case '*' when i + 1 < glob.Length && glob[i + 1] == '*':
                    i++;
                    if (i + 1 < glob.Length && glob[i + 1] == '/')
                    {
                        i++;
                        sb.Append("(?:.*/)?");
                    }
                    else
                    {
                        sb.Append(".*");
                    }

                    break;
                case '*':
                    sb.Append("[^/]*");
                    break;
                case '?':
                    sb.Append("[^/]");
                    break;
                case '[':
                    var close = glob.IndexOf(']', i + 1);
                    if (close < 0)
                    {
                        sb.Append("\\[");
                        break;
                    }

                    var cls = glob[(i + 1)..close];
                    if (cls.StartsWith('!'))
                    {
                        cls = "^" + cls[1..];
                    }

                    sb.Append('[').Append(cls.Replace("\\", "\\\\", StringComparison.Ordinal)).Append(']');
                    i = close;
                    break;
                default:
                    sb.Append(System.Text.RegularExpressions.Regex.Escape(c.ToString()));
                    break;
            }
        }

        return sb.Append('$').ToString();
    }
}
