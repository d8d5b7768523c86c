using System.Buffers;

namespace Warden.Core.DataGuard;

/// <summary>A detector's hit in one (normalized) text: kind, position, confidence.</summary>
internal readonly record struct RawMatch(string Kind, int Start, int Length, double Confidence);

/// <summary>
/// The built-in detectors. Each family finds its candidates with one vectorised search (a set of literal
/// prefixes, digits, '@') and then checks the formats' own rules (lengths, character sets, Luhn, mod-97, SSN
/// area rules, entropy), so plain prose costs a few vector passes and no regular expression runs.
/// </summary>
internal static class Detectors
{
    private static readonly string[] TokenPrefixes =
    [
        "AKIA", "ASIA", "ABIA", "ACCA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-",
        "xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xoxe-", "xapp-", "hooks.slack.com/services/",
        "sk_live_", "rk_live_", "sk_test_", "rk_test_", "AIza", "-----BEGIN ", "eyJ", "://",
    ];

    private static readonly SearchValues<string> Prefixes = SearchValues.Create(TokenPrefixes, StringComparison.Ordinal);

    private static readonly string[] AssignmentKeys =
    [
        "password", "passwd", "pwd", "secret", "token", "api_key", "apikey", "api-key", "access_key", "accesskey",
        "auth", "credential", "private_key", "client_secret", "passphrase",
    ];

    private static readonly SearchValues<string> Keys = SearchValues.Create(AssignmentKeys, StringComparison.OrdinalIgnoreCase);

    private static readonly SearchValues<char> DigitsAtPlus = SearchValues.Create("0123456789@+(");

    private static readonly string[] Schemes =
    [
        "postgres", "postgresql", "mysql", "mariadb", "mongodb", "mongodb+srv", "redis", "rediss", "amqp", "amqps",
        "mssql", "sqlserver", "jdbc:postgresql", "jdbc:mysql", "jdbc:sqlserver", "oracle", "ftp", "sftp", "smtp", "smtps",
        "http", "https", "ldap", "ldaps", "mqtt", "nats", "kafka", "clickhouse", "cockroachdb", "snowflake",
    ];

    private static readonly HashSet<string> Placeholders = new(StringComparer.OrdinalIgnoreCase)
    {
        "null", "none", "nil", "true", "false", "undefined", "redacted", "changeme", "example", "placeholder", "secret",
        "password", "required", "optional", "string", "your_password", "your-token", "your_api_key", "todo", "tbd", "empty",
    };

    private static readonly HashSet<string> FileExtensions = new(StringComparer.OrdinalIgnoreCase)
    {
        "png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp", "js", "mjs", "ts", "css", "json", "txt", "html", "htm",
        "xml", "yaml", "yml", "pdf", "zip", "gz", "tar", "exe", "dll", "so", "lock", "log", "csv",
    };

    /// <summary>IBAN lengths by country (ISO 13616 registry).</summary>
    private static readonly Dictionary<string, int> IbanLengths = new(StringComparer.Ordinal)
    {
        ["AD"] = 24, ["AE"] = 23, ["AL"] = 28, ["AT"] = 20, ["AZ"] = 28, ["BA"] = 20, ["BE"] = 16, ["BG"] = 22, ["BH"] = 22,
        ["BR"] = 29, ["BY"] = 28, ["CH"] = 21, ["CR"] = 22, ["CY"] = 28, ["CZ"] = 24, ["DE"] = 22, ["DK"] = 18, ["DO"] = 28,
        ["EE"] = 20, ["EG"] = 29, ["ES"] = 24, ["FI"] = 18, ["FO"] = 18, ["FR"] = 27, ["GB"] = 22, ["GE"] = 22, ["GI"] = 23,
        ["GL"] = 18, ["GR"] = 27, ["GT"] = 28, ["HR"] = 21, ["HU"] = 28, ["IE"] = 22, ["IL"] = 23, ["IQ"] = 23, ["IS"] = 26,
        ["IT"] = 27, ["JO"] = 30, ["KW"] = 30, ["KZ"] = 20, ["LB"] = 28, ["LC"] = 32, ["LI"] = 21, ["LT"] = 20, ["LU"] = 20,
        ["LV"] = 21, ["MC"] = 27, ["MD"] = 24, ["ME"] = 22, ["MK"] = 19, ["MR"] = 27, ["MT"] = 31, ["MU"] = 30, ["NL"] = 18,
        ["NO"] = 15, ["PK"] = 24, ["PL"] = 28, ["PS"] = 29, ["PT"] = 25, ["QA"] = 29, ["RO"] = 24, ["RS"] = 22, ["SA"] = 24,
        ["SC"] = 31, ["SE"] = 24, ["SI"] = 19, ["SK"] = 24, ["SM"] = 27, ["ST"] = 25, ["SV"] = 28, ["TL"] = 23, ["TN"] = 24,
        ["TR"] = 26, ["UA"] = 29, ["VA"] = 22, ["VG"] = 24, ["XK"] = 20,
    };

    /// <summary>The country codes the IBAN detector knows, for the corpus generator.</summary>
    internal static IReadOnlyDictionary<string, int> IbanCountries => IbanLengths;

    /// <summary>Runs every built-in detector over a normalized text.</summary>
    public static void Scan(ReadOnlySpan<char> s, List<RawMatch> into)
    {
        ScanPrefixed(s, into);
        ScanAssignments(s, into);
        ScanDigitsAndAt(s, into);
    }

    private static bool IsAlnum(char c) => char.IsAsciiLetterOrDigit(c);

    private static bool BoundaryBefore(ReadOnlySpan<char> s, int i) => i == 0 || !IsAlnum(s[i - 1]);

    private static bool BoundaryAfter(ReadOnlySpan<char> s, int end) => end >= s.Length || !IsAlnum(s[end]);

    private static int Run(ReadOnlySpan<char> s, int from, Func<char, bool> ok, int max = int.MaxValue)
    {
        var i = from;
        while (i < s.Length && i - from < max && ok(s[i]))
        {
            i++;
        }

        return i - from;
    }

    private static bool UpperAlnum(char c) => char.IsAsciiLetterUpper(c) || char.IsAsciiDigit(c);

    private static bool B64Url(char c) => IsAlnum(c) || c is '_' or '-';

    private static bool TokenChar(char c) => IsAlnum(c) || c is '_' or '-';

    // ---- Prefixed tokens ---------------------------------------------------------------------------

    private static void ScanPrefixed(ReadOnlySpan<char> s, List<RawMatch> into)
    {
        var offset = 0;
        while (offset < s.Length)
        {
            var k = s[offset..].IndexOfAny(Prefixes);
            if (k < 0)
            {
                return;
            }

            var i = offset + k;
            var consumed = TryPrefixed(s, i, into);
            offset = i + Math.Max(1, consumed);
        }
    }

    private static int TryPrefixed(ReadOnlySpan<char> s, int i, List<RawMatch> into)
    {
        var rest = s[i..];
        if (rest.StartsWith("://"))
        {
            return ConnectionString(s, i, into);
        }

        if (rest.StartsWith("-----BEGIN "))
        {
            return PrivateKey(s, i, into);
        }

        if (rest.StartsWith("hooks.slack.com/services/"))
        {
            var p = i + "hooks.slack.com/services/".Length;
            var t = Run(s, p, IsAlnum);
            if (t >= 8 && p + t < s.Length && s[p + t] == '/')
            {
                var b = Run(s, p + t + 1, IsAlnum);
                var q = p + t + 1 + b;
                if (b >= 8 && q < s.Length && s[q] == '/')
                {
                    var x = Run(s, q + 1, IsAlnum);
                    if (x >= 20)
                    {
                        into.Add(new RawMatch("slack_webhook", i, q + 1 + x - i, 0.95));
                        return q + 1 + x - i;
                    }
                }
            }

            return 1;
        }

        if (!BoundaryBefore(s, i))
        {
            return 1;
        }

        if (rest.Length >= 20 && (rest.StartsWith("AKIA") || rest.StartsWith("ASIA") || rest.StartsWith("ABIA") || rest.StartsWith("ACCA")))
        {
            var n = Run(s, i + 4, UpperAlnum, 17);
            if (n == 16 && BoundaryAfter(s, i + 20))
            {
                into.Add(new RawMatch("aws_access_key", i, 20, 0.95));
                return 20;
            }

            return 1;
        }

        if (rest.StartsWith("github_pat_"))
        {
            var n = Run(s, i + 11, t => IsAlnum(t) || t == '_');
            if (n >= 60 && BoundaryAfter(s, i + 11 + n))
            {
                into.Add(new RawMatch("github_token", i, 11 + n, 0.97));
                return 11 + n;
            }

            return 1;
        }

        if (rest.Length > 4 && rest[0] == 'g' && rest[1] == 'h' && rest[3] == '_')
        {
            var n = Run(s, i + 4, IsAlnum, 256);
            if (n >= 36 && n <= 255 && BoundaryAfter(s, i + 4 + n))
            {
                into.Add(new RawMatch("github_token", i, 4 + n, 0.97));
                return 4 + n;
            }

            return 1;
        }

        if (rest.StartsWith("glpat-"))
        {
            var n = Run(s, i + 6, TokenChar, 256);
            if (n >= 20 && BoundaryAfter(s, i + 6 + n))
            {
                into.Add(new RawMatch("gitlab_token", i, 6 + n, 0.95));
                return 6 + n;
            }

            return 1;
        }

        if (rest.StartsWith("xox") || rest.StartsWith("xapp-"))
        {
            var n = Run(s, i + 5, t => IsAlnum(t) || t == '-', 256);
            var token = s.Slice(i + 5, n);
            if (n >= 20 && token.ContainsAnyInRange('0', '9') && BoundaryAfter(s, i + 5 + n))
            {
                into.Add(new RawMatch("slack_token", i, 5 + n, 0.93));
                return 5 + n;
            }

            return 1;
        }

        if (rest.Length > 8 && (rest[0] is 's' or 'r') && rest[1] == 'k' && rest[2] == '_')
        {
            const int p = 8; // sk_live_, rk_live_, sk_test_, rk_test_
            var n = Run(s, i + p, IsAlnum, 256);
            if (n >= 24 && BoundaryAfter(s, i + p + n))
            {
                into.Add(new RawMatch("stripe_key", i, p + n, rest[3] == 'l' ? 0.95 : 0.8));
                return p + n;
            }

            return 1;
        }

        if (rest.StartsWith("AIza"))
        {
            var n = Run(s, i + 4, B64Url, 36);
            if (n == 35 && BoundaryAfter(s, i + 39))
            {
                into.Add(new RawMatch("google_api_key", i, 39, 0.93));
                return 39;
            }

            return 1;
        }

        if (rest.StartsWith("eyJ"))
        {
            return Jwt(s, i, into);
        }

        return 1;
    }

    private static int Jwt(ReadOnlySpan<char> s, int i, List<RawMatch> into)
    {
        if (i > 0 && (IsAlnum(s[i - 1]) || s[i - 1] is '_' or '-'))
        {
            return 1;
        }

        var h = Run(s, i, B64Url, 4096);
        if (h < 10 || i + h >= s.Length || s[i + h] != '.')
        {
            return 1;
        }

        var p = i + h + 1;
        var b = Run(s, p, B64Url, 65536);
        if (b < 2 || p + b >= s.Length || s[p + b] != '.')
        {
            return 1;
        }

        var q = p + b + 1;
        var sig = Run(s, q, B64Url, 4096);
        if (sig < 16 || !BoundaryAfter(s, q + sig))
        {
            return 1;
        }

        // The header must be JSON naming an algorithm: a random "eyJ..." string is not a token.
        var header = Base64Url(s.Slice(i, h));
        if (header is null || !header.Contains("\"alg\"", StringComparison.Ordinal))
        {
            return 1;
        }

        into.Add(new RawMatch("jwt", i, q + sig - i, 0.95));
        return q + sig - i;
    }

    private static string? Base64Url(ReadOnlySpan<char> s)
    {
        Span<char> buf = stackalloc char[Math.Min(s.Length + 3, 4100)];
        if (s.Length > 4096)
        {
            return null;
        }

        for (var k = 0; k < s.Length; k++)
        {
            buf[k] = s[k] switch { '-' => '+', '_' => '/', var c => c };
        }

        var len = s.Length;
        while (len % 4 != 0)
        {
            buf[len++] = '=';
        }

        var bytes = new byte[len];
        return Convert.TryFromBase64Chars(buf[..len], bytes, out var n) ? System.Text.Encoding.UTF8.GetString(bytes, 0, n) : null;
    }

    private static int PrivateKey(ReadOnlySpan<char> s, int i, List<RawMatch> into)
    {
        var header = s[i..];
        var close = header[11..].IndexOf("-----", StringComparison.Ordinal);
        if (close < 0 || close > 40)
        {
            return 1;
        }

        var label = header.Slice(11, close);
        if (!label.EndsWith("PRIVATE KEY", StringComparison.Ordinal) && !label.EndsWith("PRIVATE KEY BLOCK", StringComparison.Ordinal))
        {
            return 1;
        }

        var end = header.IndexOf("-----END ", StringComparison.Ordinal);
        var length = 11 + close + 5;
        if (end > 0 && end < 65536)
        {
            var tail = header[(end + 9)..].IndexOf("-----", StringComparison.Ordinal);
            length = tail >= 0 ? end + 9 + tail + 5 : end + 9;
        }

        into.Add(new RawMatch("private_key", i, length, end > 0 ? 0.99 : 0.9));
        return length;
    }

    private static int ConnectionString(ReadOnlySpan<char> s, int i, List<RawMatch> into)
    {
        // Walk back over the scheme (letters, digits, '+', ':' for jdbc:...).
        var start = i;
        while (start > 0 && (IsAlnum(s[start - 1]) || s[start - 1] is '+' or ':' or '.' or '-'))
        {
            start--;
        }

        var scheme = s[start..i];
        var known = false;
        foreach (var k in Schemes)
        {
            if (scheme.Equals(k, StringComparison.OrdinalIgnoreCase))
            {
                known = true;
                break;
            }
        }

        if (!known)
        {
            return 3;
        }

        // user:password@host with a real password.
        var p = i + 3;
        var user = Run(s, p, c => c is not (':' or '@' or '/' or ' ' or '\n' or '\t' or '"' or '\''), 256);
        if (p + user >= s.Length || s[p + user] != ':')
        {
            return 3;
        }

        var pw = p + user + 1;
        var pass = Run(s, pw, c => c is not ('@' or '/' or ' ' or '\n' or '\t' or '"' or '\''), 512);
        if (pass < 3 || pw + pass >= s.Length || s[pw + pass] != '@')
        {
            return 3;
        }

        var password = s.Slice(pw, pass);
        if (password[0] is '$' or '<' or '{' or '%' || Placeholders.Contains(password.ToString()) || password.IndexOfAnyExcept('*') < 0)
        {
            return 3;
        }

        var host = Run(s, pw + pass + 1, c => IsAlnum(c) || c is '.' or '-' or ':' or '/' or '_' or '?' or '=' or '&' or '%', 1024);
        if (host < 1)
        {
            return 3;
        }

        var length = pw + pass + 1 + host - start;
        into.Add(new RawMatch("connection_string", start, length, 0.9));
        return length - (i - start);
    }

    // ---- Generic assignments -----------------------------------------------------------------------

    private static void ScanAssignments(ReadOnlySpan<char> s, List<RawMatch> into)
    {
        var offset = 0;
        while (offset < s.Length)
        {
            var k = s[offset..].IndexOfAny(Keys);
            if (k < 0)
            {
                return;
            }

            var i = offset + k;
            offset = i + 1 + Assignment(s, i, into);
        }
    }

    private static int Assignment(ReadOnlySpan<char> s, int i, List<RawMatch> into)
    {
        // The key is the whole identifier around the keyword (aws_secret_access_key, DB_PASSWORD, "apiToken").
        var keyEnd = i;
        while (keyEnd < s.Length && (IsAlnum(s[keyEnd]) || s[keyEnd] is '_' or '-' or '.'))
        {
            keyEnd++;
        }

        var p = keyEnd;
        if (p < s.Length && s[p] is '"' or '\'')
        {
            p++;
        }

        while (p < s.Length && s[p] is ' ' or '\t')
        {
            p++;
        }

        if (p >= s.Length || s[p] is not (':' or '='))
        {
            return keyEnd - i;
        }

        p++;
        if (p < s.Length && s[p] is '=' or '>')
        {
            p++;
        }

        while (p < s.Length && s[p] is ' ' or '\t')
        {
            p++;
        }

        if (p < s.Length && s[p] is '"' or '\'' or '`')
        {
            p++;
        }

        var n = Run(s, p, c => c > ' ' && c < 0x7F && c is not ('"' or '\'' or '`' or ',' or ';' or '}' or ')' or ']' or '<' or '>' or '(' or '['), 512);
        if (n < 8)
        {
            return p - i;
        }

        var value = s.Slice(p, n);
        if (value[0] is '$' or '{' or '%' || Placeholders.Contains(value.ToString()) || IsRepeated(value) || !LooksRandom(value))
        {
            return p - i + n;
        }

        into.Add(new RawMatch("generic_secret", p, n, Math.Min(0.9, 0.5 + Entropy(value) / 10)));
        return p - i + n;
    }

    private static bool IsRepeated(ReadOnlySpan<char> v) => v.IndexOfAnyExcept(v[0]) < 0;

    /// <summary>A credential, not a word or a number: letters and digits or symbols mixed, with high entropy.</summary>
    internal static bool LooksRandom(ReadOnlySpan<char> v)
    {
        bool lower = false, upper = false, digit = false, symbol = false;
        foreach (var c in v)
        {
            if (char.IsAsciiLetterLower(c))
            {
                lower = true;
            }
            else if (char.IsAsciiLetterUpper(c))
            {
                upper = true;
            }
            else if (char.IsAsciiDigit(c))
            {
                digit = true;
            }
            else
            {
                symbol = true;
            }
        }

        var classes = (lower ? 1 : 0) + (upper ? 1 : 0) + (digit ? 1 : 0) + (symbol ? 1 : 0);
        if (!(lower || upper) || classes < 2)
        {
            return false;
        }

        // A dotted identifier or path is code, not a secret (settings.auth.token = config.value).
        if (!digit && symbol && v.IndexOfAnyExcept("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ._/-") < 0)
        {
            return false;
        }

        var threshold = Math.Min(3.0, Math.Log2(v.Length) * 0.85);
        return Entropy(v) >= threshold;
    }

    /// <summary>Shannon entropy in bits per character.</summary>
    internal static double Entropy(ReadOnlySpan<char> v)
    {
        Span<int> counts = stackalloc int[128];
        var n = 0;
        foreach (var c in v)
        {
            if (c < 128)
            {
                counts[c]++;
                n++;
            }
        }

        var h = 0.0;
        foreach (var k in counts)
        {
            if (k > 0)
            {
                var p = (double)k / n;
                h -= p * Math.Log2(p);
            }
        }

        return h;
    }

    // ---- Digits and '@': cards, IBANs, SSNs, phones, e-mail ----------------------------------------

    private static void ScanDigitsAndAt(ReadOnlySpan<char> s, List<RawMatch> into)
    {
        var offset = 0;
        while (offset < s.Length)
        {
            var k = s[offset..].IndexOfAny(DigitsAtPlus);
            if (k < 0)
            {
                return;
            }

            var i = offset + k;
            var c = s[i];
            int consumed;
            if (c == '@')
            {
                consumed = Email(s, i, into);
            }
            else if (c is '+' or '(')
            {
                consumed = Phone(s, i, into);
            }
            else
            {
                consumed = DigitRun(s, i, into);
            }

            offset = i + Math.Max(1, consumed);
        }
    }

    private static int DigitRun(ReadOnlySpan<char> s, int i, List<RawMatch> into)
    {
        var digits = Run(s, i, char.IsAsciiDigit);
        if (!BoundaryBefore(s, i))
        {
            // Digits inside a word: an IBAN's check digits follow its country letters.
            if (i >= 2 && char.IsAsciiLetter(s[i - 1]) && char.IsAsciiLetter(s[i - 2]) && BoundaryBefore(s, i - 2) && Iban(s, i - 2, into) is > 0 and var n)
            {
                return n - 2;
            }

            return digits;
        }

        if (Card(s, i, into) is > 0 and var card)
        {
            return card;
        }

        if (Ssn(s, i, into) is > 0 and var ssn)
        {
            return ssn;
        }

        if (Phone(s, i, into) is > 0 and var phone)
        {
            return phone;
        }

        return digits;
    }

    /// <summary>Reads digit groups separated by one consistent separator (none, space, '-', '.').</summary>
    private static int Groups(ReadOnlySpan<char> s, int i, Span<int> sizes, out int groups, out int end, out char sep, int maxDigits)
    {
        groups = 0;
        sep = '\0';
        var p = i;
        var total = 0;
        end = i;
        while (groups < sizes.Length)
        {
            var n = Run(s, p, char.IsAsciiDigit, maxDigits + 1);
            if (n == 0)
            {
                break;
            }

            sizes[groups++] = n;
            total += n;
            p += n;
            end = p;
            if (total > maxDigits || p + 1 >= s.Length || !char.IsAsciiDigit(s[p + 1]))
            {
                break;
            }

            var c = s[p];
            if (c is not (' ' or '-' or '.'))
            {
                break;
            }

            if (sep == '\0')
            {
                sep = c;
            }
            else if (c != sep)
            {
                break;
            }

            p++;
        }

        return total;
    }

    private static int Card(ReadOnlySpan<char> s, int i, List<RawMatch> into)
    {
        // A group in the middle of a longer grouped number (an IBAN, an account number) is not a card.
        if (i >= 2 && s[i - 1] is ' ' or '-' && char.IsAsciiDigit(s[i - 2]))
        {
            return 0;
        }

        Span<int> sizes = stackalloc int[8];
        var total = Groups(s, i, sizes, out var groups, out var end, out var sep, 19);
        if (total is < 13 or > 19 || sep == '.' || !BoundaryAfter(s, end))
        {
            return 0;
        }

        // Grouped numbers must be grouped like cards (4s, or Amex 4-6-5), not a date or a phone number.
        if (groups > 1)
        {
            var fours = true;
            for (var g = 0; g < groups - 1; g++)
            {
                fours &= sizes[g] == 4;
            }

            var amex = groups == 3 && sizes[0] == 4 && sizes[1] == 6 && sizes[2] == 5;
            if (!(fours && sizes[groups - 1] is >= 1 and <= 7) && !amex)
            {
                return 0;
            }
        }

        Span<byte> d = stackalloc byte[19];
        var k = 0;
        for (var p = i; p < end; p++)
        {
            if (char.IsAsciiDigit(s[p]))
            {
                d[k++] = (byte)(s[p] - '0');
            }
        }

        var number = d[..k];
        if (!KnownIssuer(number) || !Luhn(number))
        {
            return 0;
        }

        into.Add(new RawMatch("card_number", i, end - i, groups > 1 ? 0.95 : 0.9));
        return end - i;
    }

    private static bool KnownIssuer(ReadOnlySpan<byte> d)
    {
        var two = d[0] * 10 + d[1];
        var four = two * 100 + d[2] * 10 + d[3];
        var n = d.Length;
        return d[0] == 4 && n is 13 or 16 or 19
            || two is >= 51 and <= 55 && n == 16
            || four is >= 2221 and <= 2720 && n == 16
            || two is 34 or 37 && n == 15
            || (four == 6011 || two == 65 || four / 10 is >= 644 and <= 649) && n is >= 16 and <= 19
            || four is >= 3528 and <= 3589 && n is >= 16 and <= 19
            || (four / 10 is >= 300 and <= 305 || two is 36 or 38 or 39) && n is >= 14 and <= 19
            || two == 62 && n is >= 16 and <= 19;
    }

    internal static bool Luhn(ReadOnlySpan<byte> d)
    {
        var sum = 0;
        var dbl = false;
        for (var k = d.Length - 1; k >= 0; k--)
        {
            var v = d[k];
            if (dbl)
            {
                v *= 2;
                if (v > 9)
                {
                    v -= 9;
                }
            }

            sum += v;
            dbl = !dbl;
        }

        return sum % 10 == 0;
    }

    private static int Ssn(ReadOnlySpan<char> s, int i, List<RawMatch> into)
    {
        if (i + 11 > s.Length)
        {
            return 0;
        }

        var sep = s[i + 3];
        if (sep is not ('-' or ' ') || s[i + 6] != sep || !BoundaryAfter(s, i + 11))
        {
            return 0;
        }

        for (var k = 0; k < 11; k++)
        {
            if (k is 3 or 6)
            {
                continue;
            }

            if (!char.IsAsciiDigit(s[i + k]))
            {
                return 0;
            }
        }

        var area = (s[i] - '0') * 100 + (s[i + 1] - '0') * 10 + (s[i + 2] - '0');
        var group = (s[i + 4] - '0') * 10 + (s[i + 5] - '0');
        var serial = int.Parse(s.Slice(i + 7, 4), System.Globalization.CultureInfo.InvariantCulture);
        if (area is 0 or 666 or >= 900 || group == 0 || serial == 0)
        {
            return 0;
        }

        // Followed by more digit groups it is something else (a longer identifier).
        if (i + 12 < s.Length && s[i + 11] == sep && char.IsAsciiDigit(s[i + 12]))
        {
            return 0;
        }

        into.Add(new RawMatch("us_ssn", i, 11, sep == '-' ? 0.85 : 0.7));
        return 11;
    }

    private static int Phone(ReadOnlySpan<char> s, int i, List<RawMatch> into)
    {
        var p = i;
        var international = s[p] == '+';
        if (international)
        {
            if (!BoundaryBefore(s, i) || p + 1 >= s.Length || !char.IsAsciiDigit(s[p + 1]) || s[p + 1] == '0')
            {
                return 0;
            }

            p++;
        }

        // Digits with separators: spaces, '-', '.', and one pair of parentheses round the area code.
        var digits = 0;
        var groups = 0;
        var parens = 0;
        var end = p;
        while (p < s.Length)
        {
            var c = s[p];
            if (char.IsAsciiDigit(c))
            {
                var n = Run(s, p, char.IsAsciiDigit, 16);
                digits += n;
                groups++;
                p += n;
                end = p;
                if (digits > 15)
                {
                    return 0;
                }

                continue;
            }

            if (c == '(' && parens == 0 && p + 1 < s.Length && char.IsAsciiDigit(s[p + 1]))
            {
                parens = 1;
                p++;
                continue;
            }

            if (c == ')' && parens == 1)
            {
                parens = 2;
                p++;
                if (p < s.Length && s[p] == ' ')
                {
                    p++;
                }

                continue;
            }

            if (c is ' ' or '-' or '.' && p + 1 < s.Length && (char.IsAsciiDigit(s[p + 1]) || s[p + 1] == '('))
            {
                p++;
                continue;
            }

            break;
        }

        if (parens == 1 || !BoundaryAfter(s, end) || (end < s.Length && s[end] is '.' && end + 1 < s.Length && char.IsAsciiDigit(s[end + 1])))
        {
            return 0;
        }

        var text = s[i..end];
        if (international)
        {
            if (digits is < 8 or > 15 || groups < 2 && digits < 10)
            {
                return 0;
            }

            into.Add(new RawMatch("phone", i, end - i, 0.85));
            return end - i;
        }

        // National (NANP) forms: (NNN) NNN-NNNN, NNN-NNN-NNNN, NNN.NNN.NNNN, NNN NNN NNNN, optionally 1- first.
        if (!NanpShape(text))
        {
            return 0;
        }

        into.Add(new RawMatch("phone", i, end - i, 0.75));
        return end - i;
    }

    private static bool NanpShape(ReadOnlySpan<char> t)
    {
        if (t.Length > 2 && t[0] == '1' && t[1] is '-' or ' ' or '.')
        {
            t = t[2..];
        }

        Span<char> d = stackalloc char[10];
        if (t.Length == 14 && t[0] == '(' && t[4] == ')' && t[5] == ' ' && t[9] == '-')
        {
            t[1..4].CopyTo(d);
            t[6..9].CopyTo(d[3..]);
            t[10..].CopyTo(d[6..]);
        }
        else if (t.Length == 13 && t[0] == '(' && t[4] == ')' && t[8] == '-')
        {
            t[1..4].CopyTo(d);
            t[5..8].CopyTo(d[3..]);
            t[9..].CopyTo(d[6..]);
        }
        else if (t.Length == 12 && t[3] is '-' or '.' or ' ' && t[7] == t[3])
        {
            t[..3].CopyTo(d);
            t[4..7].CopyTo(d[3..]);
            t[8..].CopyTo(d[6..]);
        }
        else
        {
            return false;
        }

        foreach (var c in d)
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }
        }

        // Area code and exchange start with 2-9.
        return d[0] >= '2' && d[3] >= '2';
    }

    private static int Iban(ReadOnlySpan<char> s, int i, List<RawMatch> into)
    {
        Span<char> country = stackalloc char[2];
        country[0] = char.ToUpperInvariant(s[i]);
        country[1] = char.ToUpperInvariant(s[i + 1]);
        if (!IbanLengths.TryGetValue(new string(country), out var length))
        {
            return 0;
        }

        // Collect alphanumerics, allowing single spaces between groups, up to the country's length.
        Span<char> iban = stackalloc char[34];
        var n = 0;
        var p = i;
        while (p < s.Length && n < length)
        {
            var c = s[p];
            if (IsAlnum(c))
            {
                iban[n++] = char.ToUpperInvariant(c);
                p++;
            }
            else if (c is ' ' or '-' && n >= 4 && p + 1 < s.Length && IsAlnum(s[p + 1]))
            {
                p++;
            }
            else
            {
                break;
            }
        }

        if (n != length || !BoundaryAfter(s, p) || !char.IsAsciiDigit(iban[2]) || !char.IsAsciiDigit(iban[3]) || !Mod97(iban[..n]))
        {
            return 0;
        }

        into.Add(new RawMatch("iban", i, p - i, 0.95));
        return p - i;
    }

    internal static bool Mod97(ReadOnlySpan<char> iban)
    {
        var rem = 0;
        for (var k = 0; k < iban.Length; k++)
        {
            var c = iban[(k + 4) % iban.Length];
            if (char.IsAsciiDigit(c))
            {
                rem = (rem * 10 + (c - '0')) % 97;
            }
            else if (char.IsAsciiLetterUpper(c))
            {
                rem = (rem * 100 + (c - 'A' + 10)) % 97;
            }
            else
            {
                return false;
            }
        }

        return rem == 1;
    }

    private static int Email(ReadOnlySpan<char> s, int at, List<RawMatch> into)
    {
        var start = at;
        while (start > 0 && (IsAlnum(s[start - 1]) || s[start - 1] is '.' or '_' or '%' or '+' or '-') && at - start < 64)
        {
            start--;
        }

        while (start < at && s[start] is '.' or '-')
        {
            start++;
        }

        if (start == at)
        {
            return 1;
        }

        var end = at + 1;
        var lastDot = -1;
        while (end < s.Length && (IsAlnum(s[end]) || s[end] is '.' or '-') && end - at < 255)
        {
            if (s[end] == '.')
            {
                lastDot = end;
            }

            end++;
        }

        while (end > at + 1 && s[end - 1] is '.' or '-')
        {
            end--;
            if (lastDot == end)
            {
                lastDot = s[(at + 1)..end].LastIndexOf('.') is var d and >= 0 ? at + 1 + d : -1;
            }
        }

        if (lastDot < 0 || lastDot <= at + 1)
        {
            return 1;
        }

        var tld = s[(lastDot + 1)..end];
        if (tld.Length < 2 || tld.Length > 24 || tld.ContainsAnyExcept("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") || FileExtensions.Contains(tld.ToString()))
        {
            return 1;
        }

        into.Add(new RawMatch("email", start, end - start, 0.9));
        return end - at;
    }
}
