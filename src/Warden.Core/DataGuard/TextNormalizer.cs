using System.Buffers;
using System.Text;

namespace Warden.Core.DataGuard;

/// <summary>
/// Folds text into the form detectors read: compatibility characters to their ASCII meaning (fullwidth forms,
/// ligatures, mathematical alphanumerics, super- and subscripts, odd spaces and dashes), look-alike letters from
/// Cyrillic and Greek to Latin, and invisible characters (zero-width, bidirectional controls, Unicode tags,
/// combining marks, soft hyphens) removed.
/// </summary>
/// <remarks>
/// Warden runs with invariant globalization, where <see cref="string.Normalize(NormalizationForm)"/> leaves
/// non-ASCII text as it is. So the NFKC mappings an evader can use to hide ASCII tokens are folded here from
/// fixed tables: deterministic, allocation-free for ASCII text, and independent of the ICU version installed.
/// Every output character remembers which input character it came from, so a finding can be redacted in the
/// original text.
/// </remarks>
public static class TextNormalizer
{
    private static readonly SearchValues<char> Ascii = SearchValues.Create(Enumerable.Range(0, 128).Select(i => (char)i).ToArray());

    // Cyrillic and Greek letters that render like Latin ones. Only shapes that are confusable in common fonts.
    private static readonly Dictionary<char, char> LookAlikes = BuildLookAlikes();

    /// <summary>True when the text needs no folding (all ASCII): the common case, checked vectorised.</summary>
    public static bool IsPlain(ReadOnlySpan<char> text) => !text.ContainsAnyExcept(Ascii);

    /// <summary>Folds text; returns the input itself when it is plain ASCII.</summary>
    public static string Normalize(string text)
    {
        if (IsPlain(text))
        {
            return text;
        }

        var sb = new StringBuilder(text.Length);
        Fold(text, sb, null);
        return sb.ToString();
    }

    /// <summary>
    /// Folds text into <paramref name="output"/>, and when <paramref name="map"/> is given, records for each output
    /// character the index of the input character it came from.
    /// </summary>
    public static void Fold(ReadOnlySpan<char> text, StringBuilder output, List<int>? map)
    {
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c < 0x80)
            {
                Emit(c, i);
                continue;
            }

            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                var cp = char.ConvertToUtf32(c, text[i + 1]);
                var start = i;
                i++;
                if (cp is >= 0xE0000 and <= 0xE007F)
                {
                    // Unicode tag characters: invisible, and a known way to smuggle ASCII past filters.
                    continue;
                }

                if (MathAlphanumeric(cp) is { } m)
                {
                    Emit(m, start);
                    continue;
                }

                Emit(c, start);
                Emit(text[i], start);
                continue;
            }

            if (IsInvisible(c))
            {
                continue;
            }

            if (c is >= '\uFF01' and <= '\uFF5E')
            {
                Emit((char)(c - 0xFEE0), i); // fullwidth ASCII
                continue;
            }

            if (LookAlikes.TryGetValue(c, out var folded))
            {
                Emit(folded, i);
                continue;
            }

            switch (c)
            {
                case '\u00A0' or '\u1680' or (>= '\u2000' and <= '\u200A') or '\u202F' or '\u205F' or '\u3000':
                    Emit(' ', i);
                    break;
                case (>= '\u2010' and <= '\u2015') or '\u2212' or '\uFE58' or '\uFE63':
                    Emit('-', i);
                    break;
                case '\u2018' or '\u2019' or '\u201A' or '\u2032':
                    Emit('\'', i);
                    break;
                case '\u201C' or '\u201D' or '\u201E' or '\u2033':
                    Emit('"', i);
                    break;
                case '\u2024' or '\uFF0E':
                    Emit('.', i);
                    break;
                case '\u00B9':
                    Emit('1', i);
                    break;
                case '\u00B2' or '\u00B3':
                    Emit((char)('2' + c - '\u00B2'), i);
                    break;
                case '\u2070':
                    Emit('0', i);
                    break;
                case >= '\u2074' and <= '\u2079':
                    Emit((char)('4' + c - '\u2074'), i);
                    break;
                case >= '\u2080' and <= '\u2089':
                    Emit((char)('0' + c - '\u2080'), i);
                    break;
                case >= '\u2460' and <= '\u2468':
                    Emit((char)('1' + c - '\u2460'), i); // circled digits
                    break;
                case >= '\u24B6' and <= '\u24CF':
                    Emit((char)('A' + c - '\u24B6'), i); // circled capitals
                    break;
                case >= '\u24D0' and <= '\u24E9':
                    Emit((char)('a' + c - '\u24D0'), i);
                    break;
                case '\uFB00':
                    Emit('f', i);
                    Emit('f', i);
                    break;
                case '\uFB01':
                    Emit('f', i);
                    Emit('i', i);
                    break;
                case '\uFB02':
                    Emit('f', i);
                    Emit('l', i);
                    break;
                case '\uFB03':
                    Emit('f', i);
                    Emit('f', i);
                    Emit('i', i);
                    break;
                case '\uFB04':
                    Emit('f', i);
                    Emit('f', i);
                    Emit('l', i);
                    break;
                case '\uFB05' or '\uFB06':
                    Emit('s', i);
                    Emit('t', i);
                    break;
                default:
                    // Latin letters with diacritics lose them (é -> e): precomposed forms in Latin-1 and Latin Extended-A.
                    Emit(StripAccent(c), i);
                    break;
            }
        }

        void Emit(char ch, int from)
        {
            output.Append(ch);
            map?.Add(from);
        }
    }

    /// <summary>Zero-width, bidirectional control, soft hyphen, variation selectors, combining marks.</summary>
    public static bool IsInvisible(char c) => c switch
    {
        '\u00AD' or '\u034F' or '\u061C' or '\u115F' or '\u1160' or '\u17B4' or '\u17B5' or '\u180E' => true,
        >= '\u200B' and <= '\u200F' => true,
        >= '\u202A' and <= '\u202E' => true,
        >= '\u2060' and <= '\u206F' => true,
        '\uFEFF' or '\u3164' or '\uFFA0' => true,
        >= '\uFE00' and <= '\uFE0F' => true,
        >= '\u0300' and <= '\u036F' => true,
        >= '\u1AB0' and <= '\u1AFF' => true,
        >= '\u20D0' and <= '\u20FF' => true,
        >= '\uFE20' and <= '\uFE2F' => true,
        _ => false,
    };

    private static char? MathAlphanumeric(int cp)
    {
        // U+1D400..1D6A3: 13 alphabets of 52 letters (A-Z, a-z), bold, italic, script, fraktur, double-struck, ...
        if (cp is >= 0x1D400 and <= 0x1D6A3)
        {
            var k = (cp - 0x1D400) % 52;
            return (char)(k < 26 ? 'A' + k : 'a' + k - 26);
        }

        // U+1D7CE..1D7FF: 5 digit styles of 10.
        if (cp is >= 0x1D7CE and <= 0x1D7FF)
        {
            return (char)('0' + (cp - 0x1D7CE) % 10);
        }

        // Squared / negative squared / parenthesised Latin capitals used as look-alikes.
        if (cp is >= 0x1F130 and <= 0x1F149)
        {
            return (char)('A' + cp - 0x1F130);
        }

        if (cp is >= 0x1F170 and <= 0x1F189)
        {
            return (char)('A' + cp - 0x1F170);
        }

        return null;
    }

    private static char StripAccent(char c)
    {
        const string from = "ÀÁÂÃÄÅàáâãäåÇçÈÉÊËèéêëÌÍÎÏìíîïÑñÒÓÔÕÖØòóôõöøÙÚÛÜùúûüÝýÿıſ";
        const string to = "AAAAAAaaaaaaCcEEEEeeeeIIIIiiiiNnOOOOOOooooooUUUUuuuuYyyis";
        var i = from.IndexOf(c, StringComparison.Ordinal);
        return i >= 0 ? to[i] : c;
    }

    private static Dictionary<char, char> BuildLookAlikes()
    {
        var pairs = new (string From, string To)[]
        {
            // Cyrillic
            ("АВЕЅІЈКМНОРСТХУаеѕіјорсхуԁһԛԝ", "ABESIJKMHOPCTXYaesijopcxydhqw"),
            ("ѵѴӏЁё", "vVlEe"),
            // Greek
            ("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧοικνρτυχαϲ", "ABEZHIKMNOPTYXoikvptuxac"),
            // Latin look-alikes and letter-like symbols
            ("ℓℐℑℒℛℜℝℤℬℰℱℳℎℯℴℊℂℍℕℙℚ", "lIILRRRZBEFMheogCHNPQ"),
            ("ɑɡɩʏ", "agiy"),
        };
        var map = new Dictionary<char, char>();
        foreach (var (f, t) in pairs)
        {
            for (var i = 0; i < f.Length; i++)
            {
                map[f[i]] = t[i];
            }
        }

        return map;
    }
}
