using System.IO.Compression;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Warden.Core.Tests.DataGuard;

/// <summary>One labelled sample: a call's arguments that do (positive) or do not (negative) carry a value of a kind.</summary>
internal sealed record Sample(string Kind, bool Positive, string Evasion, JsonObject Args);

/// <summary>
/// The detection corpus, generated from the formats' specifications with a fixed seed: for every kind, positives
/// and hard negatives (near-misses of the format, UUIDs, git hashes, base64 images, prose with numbers), each put
/// through one evasion class. Samples alternate between the tuning half (even index) and the held-out half (odd),
/// and the held-out half is frozen in <c>corpus/heldout.jsonl.gz</c>, committed before any tuning.
/// </summary>
internal static class Corpus
{
    public const int Seed = 20261127;
    public const int PerKind = 2200; // per kind: 1100 in each half, half of them positives

    public static readonly string[] Kinds =
    [
        "aws_access_key", "github_token", "gitlab_token", "slack_token", "stripe_key", "google_api_key", "private_key", "jwt",
        "connection_string", "generic_secret", "email", "phone", "card_number", "iban", "us_ssn",
    ];

    public static readonly string[] Evasions =
    [
        "plain", "base64", "base32", "hex", "url", "html", "nested1", "nested2", "nested3", "split", "zero_width", "look_alike", "fullwidth", "tag_chars",
    ];

    private const string Upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    private const string Lower = "abcdefghijklmnopqrstuvwxyz";
    private const string Digits = "0123456789";
    private const string Alnum = Upper + Lower + Digits;

    private static readonly string[] Templates =
    [
        "Here is the value you asked for: {0} - let me know if it works.",
        "{0}",
        "Note for the team: {0}",
        "Please update the config with {0} before Friday.",
        "Ticket 4821: customer wrote \"{0}\" in the form.",
        "From the export (row 17): {0}; checked on 2024-05-02.",
    ];

    private static readonly string[] Prose =
    [
        "Revenue grew 12.5% to 4,210,000 in Q3 2024, and 37 tickets were closed on 2024-05-02.",
        "Release 1.4.2 ships on 03/15/2025 with 18 fixes; build 20250315.3 passed 1,204 tests.",
        "The meeting moved to 14:30 in room 2.17; 8 of 12 people confirmed by 09:00.",
        "Order #48213 for 3 units at $1,299.00 each was shipped on 11 June via parcel 7731.",
        "Server 10.20.30.40 answered in 245 ms; p99 was 1.8 s over 86,400 requests.",
        "ISBN 978-3-16-148410-0 is listed at 24.90 EUR, page 312, edition 2019.",
        "We hired 4 engineers in 2023 and 7 in 2024; the team is now 31 people in 3 offices.",
    ];

    /// <summary>The whole corpus, in generation order.</summary>
    public static List<Sample> Generate()
    {
        var rng = new Random(Seed);
        var samples = new List<Sample>();
        foreach (var kind in Kinds)
        {
            for (var i = 0; i < PerKind; i++)
            {
                var positive = i % 4 < 2;
                var evasion = Evasions[(i / 4) % Evasions.Length];
                var value = positive ? Positive(kind, rng) : Negative(kind, rng);
                samples.Add(new Sample(kind, positive, evasion, Carry(value, evasion, rng)));
            }
        }

        return samples;
    }

    /// <summary>The tuning half: every even sample.</summary>
    public static List<Sample> Tuning() => [.. Generate().Where((_, i) => i % 2 == 0)];

    /// <summary>The held-out half as generated now (the committed file must equal it).</summary>
    public static List<Sample> HeldOutGenerated() => [.. Generate().Where((_, i) => i % 2 == 1)];

    public static string HeldOutPath => Path.Combine(AppContext.BaseDirectory, "DataGuard", "corpus", "heldout.jsonl.gz");

    /// <summary>Reads the committed held-out half.</summary>
    public static List<Sample> HeldOut()
    {
        using var file = File.OpenRead(HeldOutPath);
        using var gz = new GZipStream(file, CompressionMode.Decompress);
        using var reader = new StreamReader(gz, Encoding.UTF8);
        var list = new List<Sample>();
        while (reader.ReadLine() is { } line)
        {
            var o = JsonNode.Parse(line)!.AsObject();
            list.Add(new Sample((string)o["kind"]!, (bool)o["positive"]!, (string)o["evasion"]!, o["args"]!.AsObject()));
        }

        return list;
    }

    public static void Write(IEnumerable<Sample> samples, string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var file = File.Create(path);
        using var gz = new GZipStream(file, CompressionLevel.SmallestSize);
        using var writer = new StreamWriter(gz, new UTF8Encoding(false));
        foreach (var s in samples)
        {
            var o = new JsonObject { ["kind"] = s.Kind, ["positive"] = s.Positive, ["evasion"] = s.Evasion, ["args"] = s.Args.DeepClone() };
            writer.Write(o.ToJsonString());
            writer.Write('\n');
        }
    }

    // ---- Values --------------------------------------------------------------------------------------

    private static string R(Random rng, string alphabet, int n)
    {
        var sb = new StringBuilder(n);
        for (var i = 0; i < n; i++)
        {
            sb.Append(alphabet[rng.Next(alphabet.Length)]);
        }

        return sb.ToString();
    }

    private static string B64Url(byte[] b) => Convert.ToBase64String(b).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static string Positive(string kind, Random rng) => kind switch
    {
        "aws_access_key" => new[] { "AKIA", "ASIA" }[rng.Next(2)] + R(rng, Upper + "234567", 16),
        "github_token" => new[] { "ghp_", "gho_", "ghs_" }[rng.Next(3)] + R(rng, Alnum, 36),
        "gitlab_token" => "glpat-" + R(rng, Alnum + "_-", 20),
        "slack_token" => new[] { "xoxb-", "xoxp-" }[rng.Next(2)] + R(rng, Digits, 12) + "-" + R(rng, Digits, 13) + "-" + R(rng, Alnum, 24),
        "stripe_key" => new[] { "sk_live_", "rk_live_" }[rng.Next(2)] + R(rng, Alnum, 24 + rng.Next(76)),
        "google_api_key" => "AIza" + R(rng, Alnum + "_-", 35),
        "private_key" => PrivateKey(rng, new[] { "RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY" }[rng.Next(4)]),
        "jwt" => B64Url(Encoding.UTF8.GetBytes($"{{\"alg\":\"{new[] { "HS256", "RS256", "ES256" }[rng.Next(3)]}\",\"typ\":\"JWT\"}}")) + "." +
                 B64Url(Encoding.UTF8.GetBytes($"{{\"sub\":\"{rng.Next(100000)}\",\"name\":\"{R(rng, Lower, 6)}\",\"iat\":{1700000000 + rng.Next(10000000)}}}")) + "." +
                 B64Url(RandomBytes(rng, 32)),
        "connection_string" => $"{new[] { "postgres", "mysql", "mongodb+srv", "redis", "amqp" }[rng.Next(5)]}://{R(rng, Lower, 6)}:{R(rng, Alnum, 12 + rng.Next(10))}@{R(rng, Lower, 5)}.{new[] { "example.com", "internal", "corp.example" }[rng.Next(3)]}:{1000 + rng.Next(9000)}/{R(rng, Lower, 4)}",
        "generic_secret" => $"{new[] { "api_key", "client_secret", "DB_PASSWORD", "auth_token", "secret_key", "password" }[rng.Next(6)]}{new[] { "=", ": ", " = ", "=\"" }[rng.Next(4)]}{RandomSecret(rng)}",
        "email" => $"{R(rng, Lower, 3 + rng.Next(6))}{new[] { ".", "_", "+", "" }[rng.Next(4)]}{R(rng, Lower + Digits, 2 + rng.Next(5))}@{R(rng, Lower, 4 + rng.Next(6))}.{new[] { "com", "org", "io", "de", "co.uk", "example" }[rng.Next(6)]}",
        "phone" => Phone(rng),
        "card_number" => Card(rng, valid: true),
        "iban" => Iban(rng, valid: true),
        "us_ssn" => Ssn(rng, valid: true),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    private static string RandomSecret(Random rng)
    {
        while (true)
        {
            var s = R(rng, Alnum, 16 + rng.Next(24));
            if (s.Any(char.IsAsciiDigit) && s.Any(char.IsAsciiLetter))
            {
                return s;
            }
        }
    }

    private static byte[] RandomBytes(Random rng, int n)
    {
        var b = new byte[n];
        rng.NextBytes(b);
        return b;
    }

    private static string PrivateKey(Random rng, string label)
    {
        var body = string.Join("\n", Enumerable.Range(0, 3).Select(_ => Convert.ToBase64String(RandomBytes(rng, 48))));
        return $"-----BEGIN {label}-----\n{body}\n-----END {label}-----";
    }

    private static string Phone(Random rng)
    {
        string N(int n) => R(rng, Digits, n);
        string Nx() => (2 + rng.Next(8)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        return rng.Next(6) switch
        {
            0 => $"+{new[] { "44", "49", "33", "1", "61", "81" }[rng.Next(6)]} {Nx()}{N(2)} {N(3)} {N(4)}",
            1 => $"+{new[] { "44", "49", "33", "39" }[rng.Next(4)]}{Nx()}{N(9)}",
            2 => $"({Nx()}{N(2)}) {Nx()}{N(2)}-{N(4)}",
            3 => $"{Nx()}{N(2)}-{Nx()}{N(2)}-{N(4)}",
            4 => $"{Nx()}{N(2)}.{Nx()}{N(2)}.{N(4)}",
            _ => $"+1-{Nx()}{N(2)}-{Nx()}{N(2)}-{N(4)}",
        };
    }

    private static string Card(Random rng, bool valid)
    {
        var (prefix, length) = rng.Next(5) switch
        {
            0 => ("4", 16),
            1 => ("5" + (1 + rng.Next(5)), 16),
            2 => (new[] { "34", "37" }[rng.Next(2)], 15),
            3 => ("6011", 16),
            _ => ("2" + (221 + rng.Next(499)), 16),
        };
        var digits = prefix + R(rng, Digits, length - prefix.Length - 1);
        var check = LuhnCheck(digits);
        var last = valid ? check : (check + 1 + rng.Next(9)) % 10;
        var number = digits + last;
        return rng.Next(3) switch
        {
            0 => number,
            1 when length == 16 => string.Join(" ", Enumerable.Range(0, 4).Select(i => number.Substring(i * 4, 4))),
            1 => $"{number[..4]} {number[4..10]} {number[10..]}",
            _ when length == 16 => string.Join("-", Enumerable.Range(0, 4).Select(i => number.Substring(i * 4, 4))),
            _ => $"{number[..4]}-{number[4..10]}-{number[10..]}",
        };
    }

    private static int LuhnCheck(string partial)
    {
        var sum = 0;
        var dbl = true;
        for (var i = partial.Length - 1; i >= 0; i--)
        {
            var v = partial[i] - '0';
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

        return (10 - sum % 10) % 10;
    }

    private static readonly (string Country, int Length)[] IbanCountries =
        [("DE", 22), ("GB", 22), ("FR", 27), ("NL", 18), ("ES", 24), ("IT", 27), ("BE", 16), ("CH", 21), ("AT", 20), ("PL", 28), ("SE", 24), ("NO", 15)];

    private static string Iban(Random rng, bool valid)
    {
        var (country, length) = IbanCountries[rng.Next(IbanCountries.Length)];
        var bban = R(rng, Digits, length - 4);
        var numeric = new StringBuilder();
        foreach (var c in bban + country + "00")
        {
            numeric.Append(char.IsAsciiLetter(c) ? (c - 'A' + 10).ToString(System.Globalization.CultureInfo.InvariantCulture) : c.ToString());
        }

        var rem = 0;
        foreach (var c in numeric.ToString())
        {
            rem = (rem * 10 + (c - '0')) % 97;
        }

        var check = 98 - rem;
        if (!valid)
        {
            check = (check + 1 + rng.Next(90)) % 97;
            if (check < 2)
            {
                check += 2;
            }
        }

        var iban = country + check.ToString("00", System.Globalization.CultureInfo.InvariantCulture) + bban;
        return rng.Next(2) == 0 ? iban : string.Join(" ", iban.Chunk(4).Select(c => new string(c)));
    }

    private static string Ssn(Random rng, bool valid)
    {
        int area, group, serial;
        if (valid)
        {
            do
            {
                area = 1 + rng.Next(899);
            }
            while (area == 666);

            group = 1 + rng.Next(99);
            serial = 1 + rng.Next(9999);
        }
        else
        {
            (area, group, serial) = rng.Next(4) switch
            {
                0 => (0, 1 + rng.Next(99), 1 + rng.Next(9999)),
                1 => (666, 1 + rng.Next(99), 1 + rng.Next(9999)),
                2 => (900 + rng.Next(100), 1 + rng.Next(99), 1 + rng.Next(9999)),
                _ => (1 + rng.Next(665), 0, 1 + rng.Next(9999)),
            };
        }

        var sep = rng.Next(4) == 0 ? " " : "-";
        return FormattableString.Invariant($"{area:000}{sep}{group:00}{sep}{serial:0000}");
    }

    /// <summary>A hard negative: a near-miss of the kind's format half the time, a generic look-alike otherwise.</summary>
    private static string Negative(string kind, Random rng)
    {
        if (rng.Next(2) == 0)
        {
            return rng.Next(4) switch
            {
                0 => new Guid(RandomBytes(rng, 16)).ToString(),
                1 => Convert.ToHexStringLower(RandomBytes(rng, 20)),
                2 => "data:image/png;base64," + Convert.ToBase64String([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, .. RandomBytes(rng, 120)]),
                _ => Prose[rng.Next(Prose.Length)],
            };
        }

        return kind switch
        {
            "aws_access_key" => rng.Next(2) == 0 ? "AKIA" + R(rng, Upper + "234567", 12) : R(rng, "BCDEFGHJ", 1) + R(rng, Upper + "234567", 19),
            "github_token" => rng.Next(2) == 0 ? "ghp_" + R(rng, Alnum, 20) : "gh_" + R(rng, Alnum, 36),
            "gitlab_token" => "glpat-" + R(rng, Alnum, 12),
            "slack_token" => rng.Next(2) == 0 ? "xoxb-" + R(rng, Digits, 6) : "xoxo-" + R(rng, Digits, 12) + "-" + R(rng, Alnum, 24),
            "stripe_key" => rng.Next(2) == 0 ? "pk_live_" + R(rng, Alnum, 24) : "sk_live_" + R(rng, Alnum, 10),
            "google_api_key" => "AIza" + R(rng, Alnum, 20),
            "private_key" => $"-----BEGIN {new[] { "PUBLIC KEY", "CERTIFICATE", "CERTIFICATE REQUEST" }[rng.Next(3)]}-----\n{Convert.ToBase64String(RandomBytes(rng, 48))}\n-----END PUBLIC KEY-----",
            "jwt" => B64Url(Encoding.UTF8.GetBytes($"{{\"kid\":\"{R(rng, Lower, 6)}\"}}")) + "." + B64Url(RandomBytes(rng, 24)) + "." + B64Url(RandomBytes(rng, 24)),
            "connection_string" => rng.Next(3) switch
            {
                0 => $"postgres://{R(rng, Lower, 5)}.internal:5432/{R(rng, Lower, 4)}",
                1 => $"https://{R(rng, Lower, 6)}.example.com/{R(rng, Lower, 5)}?page={rng.Next(100)}",
                _ => $"mysql://{R(rng, Lower, 4)}:${{DB_PASSWORD}}@db.internal/app",
            },
            "generic_secret" => rng.Next(6) switch
            {
                0 => "password: ********",
                1 => "api_key = ${API_KEY}",
                2 => "token: null",
                3 => $"password_length = {8 + rng.Next(30)}",
                4 => "secret_santa = true",
                _ => $"auth_token: {{{{ vault.{R(rng, Lower, 6)} }}}}",
            },
            "email" => rng.Next(4) switch
            {
                0 => $"{R(rng, Lower, 5)} at {R(rng, Lower, 6)} dot com",
                1 => $"@{R(rng, Lower, 7)}",
                2 => $"logo@2x.png",
                _ => $"{R(rng, Lower, 5)}@localhost",
            },
            "phone" => rng.Next(3) switch
            {
                0 => $"{2000 + rng.Next(30)}-{1 + rng.Next(12):00}-{1 + rng.Next(28):00}",
                1 => $"v{rng.Next(10)}.{rng.Next(30)}.{rng.Next(100)}",
                _ => $"{rng.Next(1000)},{rng.Next(1000):000},{rng.Next(1000):000}",
            },
            "card_number" => Card(rng, valid: false),
            "iban" => Iban(rng, valid: false),
            "us_ssn" => Ssn(rng, valid: false),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
    }

    // ---- Evasions ------------------------------------------------------------------------------------

    private static JsonObject Carry(string value, string evasion, Random rng)
    {
        var template = Templates[rng.Next(Templates.Length)];
        if (evasion == "split")
        {
            // The value split in two or three pieces across fields, inside the carrier text.
            var parts = rng.Next(2) + 2;
            var cuts = Enumerable.Range(0, parts - 1).Select(_ => 1 + rng.Next(Math.Max(1, value.Length - 1))).Distinct().Order().ToList();
            var pieces = new List<string>();
            var last = 0;
            foreach (var c in cuts)
            {
                pieces.Add(value[last..c]);
                last = c;
            }

            pieces.Add(value[last..]);
            var args = new JsonObject();
            var whole = string.Format(System.Globalization.CultureInfo.InvariantCulture, template, "\u0001");
            var at = whole.IndexOf('\u0001', StringComparison.Ordinal);
            pieces[0] = whole[..at] + pieces[0];
            pieces[^1] += whole[(at + 1)..];
            for (var i = 0; i < pieces.Count; i++)
            {
                args["part" + (i + 1)] = pieces[i];
            }

            return args;
        }

        var carried = Evade(value, evasion, rng);
        return new JsonObject { ["text"] = string.Format(System.Globalization.CultureInfo.InvariantCulture, template, carried) };
    }

    private static readonly string[] Encodings = ["base64", "base32", "hex", "url", "html"];

    private static string Evade(string v, string evasion, Random rng) => evasion switch
    {
        "plain" => v,
        "base64" or "base32" or "hex" or "url" or "html" => Encode(v, evasion),
        "nested1" => Encode(v, Encodings[rng.Next(Encodings.Length)]),
        "nested2" => Nest(v, 2, rng),
        "nested3" => Nest(v, 3, rng),
        "zero_width" => string.Concat(v.Select((c, i) => i > 0 && rng.Next(2) == 0 ? new[] { '\u200B', '\u200C', '\u200D', '\u2060', '\uFEFF' }[rng.Next(5)] + c.ToString() : c.ToString())),
        "look_alike" => string.Concat(v.Select(c => LookAlike.TryGetValue(c, out var l) && rng.Next(3) > 0 ? l : c)),
        "fullwidth" => string.Concat(v.Select(c => c is > ' ' and <= '~' ? (char)(c + 0xFEE0) : c == ' ' ? '\u3000' : c)),
        "tag_chars" => string.Concat(v.Select((c, i) => i > 0 && rng.Next(2) == 0 ? char.ConvertFromUtf32(0xE0000 + 0x20 + rng.Next(0x5F)) + c : c.ToString())),
        _ => throw new ArgumentOutOfRangeException(nameof(evasion)),
    };

    private static string Nest(string v, int depth, Random rng)
    {
        // Outer layers that would only re-encode punctuation (html of base64) are still distinct layers.
        for (var d = 0; d < depth; d++)
        {
            v = Encode(v, Encodings[rng.Next(Encodings.Length)]);
        }

        return v;
    }

    private static readonly Dictionary<char, char> LookAlike = new()
    {
        ['a'] = 'а', ['e'] = 'е', ['o'] = 'о', ['p'] = 'р', ['c'] = 'с', ['x'] = 'х', ['y'] = 'у', ['i'] = 'і', ['s'] = 'ѕ', ['j'] = 'ј',
        ['A'] = 'А', ['B'] = 'В', ['E'] = 'Е', ['K'] = 'К', ['M'] = 'М', ['H'] = 'Н', ['O'] = 'О', ['P'] = 'Р', ['C'] = 'С', ['T'] = 'Т', ['X'] = 'Х',
        ['S'] = 'Ѕ', ['I'] = 'І', ['Z'] = 'Ζ', ['N'] = 'Ν',
    };

    internal static string Encode(string v, string encoding)
    {
        var bytes = Encoding.UTF8.GetBytes(v);
        return encoding switch
        {
            "base64" => Convert.ToBase64String(bytes),
            "base32" => Base32(bytes),
            "hex" => Convert.ToHexStringLower(bytes),
            "url" => string.Concat(bytes.Select(b => "%" + b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture))),
            "html" => string.Concat(v.Select(c => "&#" + ((int)c).ToString(System.Globalization.CultureInfo.InvariantCulture) + ";")),
            _ => throw new ArgumentOutOfRangeException(nameof(encoding)),
        };
    }

    private static string Base32(byte[] data)
    {
        const string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        var sb = new StringBuilder();
        int buffer = 0, bits = 0;
        foreach (var b in data)
        {
            buffer = (buffer << 8) | b;
            bits += 8;
            while (bits >= 5)
            {
                bits -= 5;
                sb.Append(alphabet[(buffer >> bits) & 31]);
            }

            buffer &= (1 << bits) - 1;
        }

        if (bits > 0)
        {
            sb.Append(alphabet[(buffer << (5 - bits)) & 31]);
        }

        while (sb.Length % 8 != 0)
        {
            sb.Append('=');
        }

        return sb.ToString();
    }
}
