namespace Warden.Core.DataGuard;

/// <summary>
/// Fingerprints of the distinctive values in labelled data, to recognise them when they reappear in an outbound
/// call after case, whitespace, punctuation or encoding changes. Only 64-bit hashes are kept, never the text.
/// </summary>
/// <remarks>
/// Text is reduced to lower-case alphanumeric tokens; digit groups separated by one punctuation mark are joined
/// ("104,000" and "104 000" are both "104000"; an IBAN written in groups is one token). Two kinds of fingerprint:
/// a <em>distinctive token</em> (six or more characters with a digit, or twelve or more of anything: amounts,
/// account numbers, keys, identifiers) and a <em>shingle</em> of four consecutive tokens (phrases). One distinctive
/// token or two shingles make a match: a shared common phrase alone does not.
/// </remarks>
public static class Fingerprinter
{
    private const int ShingleSize = 4;

    /// <summary>Adds the fingerprints of a (normalized) text to a set, up to <paramref name="max"/> entries in total.</summary>
    public static void Add(ReadOnlySpan<char> text, ISet<ulong> into, int max)
    {
        Span<ulong> window = stackalloc ulong[ShingleSize];
        var count = 0;
        foreach (var (hash, distinctive) in new TokenEnumerator(text))
        {
            if (into.Count >= max)
            {
                return;
            }

            if (distinctive)
            {
                into.Add(hash | 1);
            }

            window[count++ % ShingleSize] = hash;
            if (count >= ShingleSize)
            {
                into.Add(Shingle(window, count) & ~1UL);
            }
        }
    }

    /// <summary>Counts distinctive-token and shingle matches of a text against a set.</summary>
    public static (int Tokens, int Shingles) Match(ReadOnlySpan<char> text, IReadOnlySet<ulong> set) =>
        Match(text, FingerprintSet.Create(set));

    /// <summary>Counts distinctive-token and shingle matches of a text against a set.</summary>
    public static (int Tokens, int Shingles) Match(ReadOnlySpan<char> text, FingerprintSet set)
    {
        if (set.Count == 0)
        {
            return (0, 0);
        }

        Span<ulong> window = stackalloc ulong[ShingleSize];
        var count = 0;
        int tokens = 0, shingles = 0;
        foreach (var (hash, distinctive) in new TokenEnumerator(text))
        {
            if (distinctive && set.Contains(hash | 1))
            {
                tokens++;
            }

            window[count++ % ShingleSize] = hash;
            if (count >= ShingleSize && set.Contains(Shingle(window, count) & ~1UL))
            {
                shingles++;
            }
        }

        return (tokens, shingles);
    }

    /// <summary>True when a match count is strong enough to be a finding.</summary>
    public static bool IsFinding((int Tokens, int Shingles) m) => m.Tokens >= 1 || m.Shingles >= 2;

    private static ulong Shingle(ReadOnlySpan<ulong> window, int count)
    {
        // Order matters: hash the window oldest first.
        var h = 14695981039346656037UL;
        for (var k = 0; k < ShingleSize; k++)
        {
            h = (h ^ window[(count + k) % ShingleSize]) * 1099511628211UL;
            h ^= h >> 29;
        }

        return h;
    }

    /// <summary>Enumerates (hash, distinctive) for each token.</summary>
    private ref struct TokenEnumerator(ReadOnlySpan<char> text)
    {
        private readonly ReadOnlySpan<char> _text = text;
        private int _pos;

        public (ulong Hash, bool Distinctive) Current { get; private set; }

        public readonly TokenEnumerator GetEnumerator() => this;

        public bool MoveNext()
        {
            var s = _text;
            var i = _pos;
            while (i < s.Length && !char.IsAsciiLetterOrDigit(s[i]))
            {
                i++;
            }

            if (i >= s.Length)
            {
                _pos = i;
                return false;
            }

            var h = 14695981039346656037UL;
            var length = 0;
            var digits = false;
            while (i < s.Length)
            {
                var c = s[i];
                if (char.IsAsciiLetterOrDigit(c))
                {
                    digits |= char.IsAsciiDigit(c);
                    h = (h ^ (uint)char.ToLowerInvariant(c)) * 1099511628211UL;
                    length++;
                    i++;
                    continue;
                }

                // One separator between digit groups (104,000 / +1-555-0142 / DE89 3704) keeps the token going.
                if (i + 1 < s.Length && i > 0 && char.IsAsciiDigit(s[i + 1]) && char.IsAsciiDigit(s[i - 1]) && c is ',' or '.' or ' ' or '-' or '/')
                {
                    i++;
                    continue;
                }

                break;
            }

            _pos = i;
            Current = (h, length >= 12 || (digits && length >= 6));
            return true;
        }
    }
}
