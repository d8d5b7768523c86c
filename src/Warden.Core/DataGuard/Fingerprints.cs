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
        ulong w0 = 0, w1 = 0, w2 = 0;
        var count = 0;
        var tokens = new TokenEnumerator(text);
        while (tokens.MoveNext())
        {
            if (into.Count >= max)
            {
                return;
            }

            var hash = tokens.Hash;
            if (tokens.Distinctive)
            {
                into.Add(hash | 1);
            }

            if (++count >= ShingleSize)
            {
                into.Add(Shingle(w0, w1, w2, hash) & ~1UL);
            }

            (w0, w1, w2) = (w1, w2, hash);
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

        ulong w0 = 0, w1 = 0, w2 = 0;
        var count = 0;
        int tokens = 0, shingles = 0;
        var e = new TokenEnumerator(text);
        while (e.MoveNext())
        {
            var hash = e.Hash;
            if (e.Distinctive && set.Contains(hash | 1))
            {
                tokens++;
            }

            if (++count >= ShingleSize && set.Contains(Shingle(w0, w1, w2, hash) & ~1UL))
            {
                shingles++;
            }

            (w0, w1, w2) = (w1, w2, hash);
        }

        return (tokens, shingles);
    }

    /// <summary>True when a match count is strong enough to be a finding.</summary>
    public static bool IsFinding((int Tokens, int Shingles) m) => m.Tokens >= 1 || m.Shingles >= 2;

    /// <summary>The hash of four consecutive tokens, oldest first (order matters). Stored hashes depend on it: never change it.</summary>
    private static ulong Shingle(ulong oldest, ulong second, ulong third, ulong newest)
    {
        var h = Mix(14695981039346656037UL, oldest);
        h = Mix(h, second);
        h = Mix(h, third);
        return Mix(h, newest);

        static ulong Mix(ulong h, ulong token)
        {
            h = (h ^ token) * 1099511628211UL;
            return h ^ (h >> 29);
        }
    }

    /// <summary>
    /// Walks the tokens of a text: a token's hash is FNV-1a over its lower-case ASCII letters and digits (stored hashes
    /// depend on it: never change it). One table lookup per character classifies it.
    /// </summary>
    private ref struct TokenEnumerator(ReadOnlySpan<char> text)
    {
        private const byte Other = 0, Letter = 1, Digit = 2;
        private readonly ReadOnlySpan<char> _text = text;
        private int _pos;

        public ulong Hash { get; private set; }

        public bool Distinctive { get; private set; }

        // ASCII classes: letters and digits make tokens; everything else (non-ASCII too) separates them.
        private static ReadOnlySpan<byte> Classes =>
        [
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0,
            0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,
            0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,
        ];

        private static byte Class(char c) => c < 128 ? Classes[c] : Other;

        public bool MoveNext()
        {
            var s = _text;
            var i = _pos;
            while ((uint)i < (uint)s.Length && Class(s[i]) == Other)
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
            while ((uint)i < (uint)s.Length)
            {
                var c = s[i];
                var k = Class(c);
                if (k != Other)
                {
                    digits |= k == Digit;

                    // | 0x20 lower-cases an ASCII letter and leaves a digit as it is.
                    h = (h ^ (uint)(c | 0x20)) * 1099511628211UL;
                    length++;
                    i++;
                    continue;
                }

                // One separator between digit groups (104,000 / +1-555-0142 / DE89 3704) keeps the token going.
                if (i + 1 < s.Length && i > 0 && c is ',' or '.' or ' ' or '-' or '/' && Class(s[i + 1]) == Digit && Class(s[i - 1]) == Digit)
                {
                    i++;
                    continue;
                }

                break;
            }

            _pos = i;
            Hash = h;
            Distinctive = length >= 12 || (digits && length >= 6);
            return true;
        }
    }
}
